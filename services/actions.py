"""Every runbook action the console declares, by name: what describes another console's
claim ("bob is scaling deployment agis-bot") whichever area declared the action."""

from __future__ import annotations

from services.incident_actions import ALERT_ACTIONS, INCIDENT_ACTIONS
from services.kube_actions import KUBE_ACTIONS
from services.node_actions import NODE_ACTIONS
from services.order_actions import ORDER_ACTIONS
from services.runbook import Action

ALL_ACTIONS: dict[str, Action] = {
    a.name: a for a in (*ORDER_ACTIONS, *NODE_ACTIONS, *KUBE_ACTIONS, *ALERT_ACTIONS, *INCIDENT_ACTIONS)
}
