"""What the nodes area draws, as pure functions: one row per node, plan, pod, deployment,
autoscaler, fleet and gameserver, and which table each watched kind goes to."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from rich.text import Text

from screens.shown import fill, plain
from screens.widgets import short_age
from services import kube_model as km
from services.health import BotEndpoint
from services.nodes import Capacity, NodeCapacity
from services.text import inert

LEVEL_STYLE = {"ok": "green", "warning": "yellow", "critical": "bold red", "disabled": "dim"}
CAPACITY_COLUMNS = ("node", "state", "usage", "free", "used", "max", "headroom", "servers", "location")
FORECAST_COLUMNS = ("game", "plan", "RAM", "more that fit", "most on one node")
CLUSTER_COLUMNS = ("node", "ready", "pressure", "cpu req", "mem req", "pods")
DEPLOYMENT_COLUMNS = ("deployment", "ready", "updated", "available", "restarted")
HPA_COLUMNS = ("hpa", "target", "min", "max", "replicas", "cpu now / target")
POD_COLUMNS = ("pod", "status", "ready", "restarts", "age", "node")
FLEET_COLUMNS = ("fleet", "desired", "Ready", "Allocated", "Shutdown", "total")
AUTOSCALER_COLUMNS = ("autoscaler", "fleet", "policy", "buffer", "min", "max", "current → desired")
GAMESERVER_COLUMNS = ("gameserver", "fleet", "state", "node", "address")
PANEL_KINDS = {
    "cluster-panel": ("nodes", "pods"),
    "workloads-panel": ("deployments", "hpas"),
    "pods-panel": ("pods",),
    "fleets-panel": ("fleets", "gameservers", "fleetautoscalers"),
}


def usage_bar(pct: float, level: str, width: int = 10) -> Text:
    """'███████░░░░░ 62%' coloured by the node's level."""
    filled = max(0, min(width, round(pct / 100 * width)))
    text = Text("█" * filled, style=LEVEL_STYLE.get(level, ""))
    text.append("░" * (width - filled), style="dim")
    text.append(f" {pct:3.0f}%")
    return text


def capacity_row(node: NodeCapacity, level: str) -> tuple:
    style = LEVEL_STYLE[level]
    state = "disabled" if not node.enabled else {"critical": "FULL", "warning": "> 80%"}.get(level, "enabled")
    return (
        plain(node.name, "dim" if not node.enabled else ""),
        Text(state, style=style),
        usage_bar(node.usage_pct, level),
        Text(f"{node.available_ram_gb} GB", style=style if level != "ok" else ""),
        f"{node.used_ram_gb} GB",
        f"{node.max_ram_gb} GB",
        f"{node.reserved_headroom_gb} GB",
        str(node.live_servers),
        inert(node.location or ""),
    )


def forecast_rows(capacity: Capacity, game: str = "") -> dict[str, tuple]:
    """plan id -> (game, plan, RAM, servers that fit in total, best node and its count),
    for the plans whose game or id contains `game` (all when empty)."""
    rows = {}
    enabled = [n for n in capacity.nodes if n.enabled]
    wanted = game.strip().lower()
    for plan in capacity.plans:
        if wanted and wanted not in plan.game.lower() and wanted not in plan.id.lower():
            continue
        total = capacity.total_fits(plan.id)
        best = max(enabled, key=lambda n: n.fits.get(plan.id, 0), default=None)
        most = f"{inert(best.name)}: {best.fits[plan.id]}" if best and best.fits.get(plan.id) else "—"
        rows[plan.id] = (
            inert(plan.game),
            inert(plan.id),
            f"{plan.ram_gb} GB",
            Text(str(total), style="bold red" if total == 0 else ("yellow" if total < 5 else "")),
            most,
        )
    return rows


def pod_row(pod: km.Pod, now: datetime | None = None) -> tuple:
    status = pod.reason or pod.phase
    style = "bold red" if pod.reason else ("green" if pod.phase == "Running" else "yellow")
    return (
        inert(pod.name),
        plain(status, style),
        inert(pod.ready),
        Text(str(pod.restarts), style="red" if pod.restarts >= 3 else ""),
        short_age(pod.created, now),
        inert(pod.node),
    )


def _pct(value: float, warn: float = 80) -> Text:
    return Text(f"{value:.0f}%", style="bold red" if value >= 100 else ("yellow" if value >= warn else ""))


def node_load_row(load: km.NodeLoad) -> tuple:
    node = load.node
    pressure = ", ".join(node.pressures) + (" cordoned" if node.unschedulable else "")
    return (
        inert(node.name),
        Text("Ready" if node.ready else "NotReady", style="green" if node.ready else "bold red"),
        plain(pressure or "—", "bold yellow" if pressure else "dim"),
        _pct(load.cpu_pct),
        _pct(load.memory_pct),
        str(load.pods),
    )


def deployment_row(d: km.Deployment) -> tuple:
    healthy = d.ready >= d.desired
    style = "green" if healthy and d.desired else ("dim" if d.desired == 0 else "bold red")
    return (inert(d.name), Text(f"{d.ready}/{d.desired}", style=style), str(d.updated), str(d.available),
            inert(d.restarted_at or "—"))  # fmt: skip


def hpa_row(h: km.Hpa) -> tuple:
    cpu = f"{'?' if h.cpu_now_pct is None else h.cpu_now_pct}% / {h.cpu_target_pct or '?'}%"
    return (inert(h.name), inert(h.target), str(h.min_replicas), str(h.max_replicas),
            f"{h.current} → {h.desired}", inert(cpu))  # fmt: skip


def fleet_row(f: km.Fleet, states: dict[str, int]) -> tuple:
    """The fleet with gameserver counts from the gameservers themselves (Ready, Allocated,
    Shutdown), which is what players get, whatever the fleet's status says."""
    return (
        inert(f.name),
        str(f.replicas),
        Text(str(states.get("Ready", 0)), style="green" if states.get("Ready") else "bold red"),
        str(states.get("Allocated", 0)),
        str(states.get("Shutdown", 0)),
        str(sum(states.values())),
    )


def autoscaler_row(a: km.FleetAutoscaler) -> tuple:
    able = "" if a.able_to_scale else " (cannot scale)"
    style = "" if a.able_to_scale else "bold red"
    return (inert(a.name), inert(a.fleet), inert(a.policy), inert(a.buffer), str(a.min_replicas),
            str(a.max_replicas), Text(f"{a.current} → {a.desired}{able}", style=style))  # fmt: skip


def gameserver_row(g: km.GameServer) -> tuple:
    style = {"Ready": "green", "Allocated": "cyan", "Shutdown": "dim", "Unhealthy": "bold red"}.get(
        g.state, ""
    )
    return (inert(g.name), inert(g.fleet), plain(g.state, style), inert(g.node), inert(g.address))


def bot_line(endpoints: list[BotEndpoint]) -> Text:
    parts = []
    for e in endpoints:
        colour = "green" if e.ok else "red"
        status = e.status if e.status is not None else "no answer"
        parts.append(fill(f"[{colour}]{{}} {status}[/] {{}}", e.path, e.said, limit=120))
    return Text("bot  ") + Text("  ·  ").join(parts)


def _by_key(item: tuple[str, Any]) -> str:
    return item[0]


# The kinds that are one table each: (table, row function, order after a list). Pods with a
# problem come first; cluster nodes and fleets combine kinds and are drawn apart.
KIND_ROWS: dict[str, tuple[str, Callable[[Any], tuple], Callable[[tuple[str, Any]], Any]]] = {
    "pods": ("#pods-table", pod_row, lambda kv: (not kv[1].problem, kv[0])),
    "deployments": ("#deployments-table", deployment_row, _by_key),
    "hpas": ("#hpa-table", hpa_row, _by_key),
    "fleetautoscalers": ("#autoscalers-table", autoscaler_row, _by_key),
    "gameservers": ("#gameservers-table", gameserver_row, _by_key),
}
