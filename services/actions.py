"""Every runbook action the console declares, by name and by area: what `opsconsole actions`
lists and `opsconsole act` runs, and what describes another console's claim ("bob is
scaling deployment agis-bot") whichever area declared the action."""

from __future__ import annotations

from services.backup_actions import BACKUP_ACTIONS
from services.checklist_actions import CHECKLIST_ACTIONS
from services.db_actions import DB_ACTIONS
from services.incident_actions import ALERT_ACTIONS, INCIDENT_ACTIONS
from services.kube_actions import KUBE_ACTIONS
from services.node_actions import NODE_ACTIONS
from services.order_actions import ORDER_ACTIONS
from services.payment_actions import PAYMENT_ACTIONS
from services.pricing_actions import PRICING_ACTIONS
from services.runbook import Action

BY_AREA: dict[str, tuple[Action, ...]] = {
    "orders": ORDER_ACTIONS,
    "nodes": (*NODE_ACTIONS, *KUBE_ACTIONS),
    "incidents": (*ALERT_ACTIONS, *INCIDENT_ACTIONS),
    "backups": BACKUP_ACTIONS,
    "database": DB_ACTIONS,
    "pricing": PRICING_ACTIONS,
    "payments": PAYMENT_ACTIONS,
    "checklists": CHECKLIST_ACTIONS,
}
ALL_ACTIONS: dict[str, Action] = {a.name: a for actions in BY_AREA.values() for a in actions}
AREA_OF: dict[str, str] = {a.name: area for area, actions in BY_AREA.items() for a in actions}
