"""NodesService: game-node capacity from Postgres (the runbook's capacity query without its
LEFT JOIN bug) and the headroom forecast: how many more servers of each plan still fit."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.postgres import PostgresService, named_queries

WARN_USAGE = 80.0  # the runbooks' "Node capacity > 80%" warning


@dataclass(frozen=True)
class PlanSize:
    id: str
    game: str
    name: str
    ram_gb: int


@dataclass(frozen=True)
class NodeCapacity:
    """One node's RAM: max, reserved headroom, used by live orders, and what is left."""

    name: str
    location: str | None
    enabled: bool
    max_ram_gb: int
    reserved_headroom_gb: int
    used_ram_gb: int
    available_ram_gb: int
    live_servers: int
    fits: dict[str, int] = field(default_factory=dict)  # plan id -> servers that still fit

    @property
    def usage_pct(self) -> float:
        """Used RAM as a share of the node's RAM (what the runbooks' 80% warning means)."""
        return 100.0 * self.used_ram_gb / self.max_ram_gb if self.max_ram_gb else 100.0


@dataclass(frozen=True)
class Capacity:
    """Every node, the plans on sale, and the totals the forecast adds up to."""

    nodes: list[NodeCapacity]
    plans: list[PlanSize]

    @property
    def smallest_plan_gb(self) -> int | None:
        return min((p.ram_gb for p in self.plans), default=None)

    def level(self, node: NodeCapacity) -> str:
        """disabled | critical (not even the smallest plan fits) | warning (> 80%) | ok."""
        if not node.enabled:
            return "disabled"
        smallest = self.smallest_plan_gb
        if smallest is not None and node.available_ram_gb < smallest:
            return "critical"
        if node.usage_pct > WARN_USAGE:
            return "warning"
        return "ok"

    def total_fits(self, plan_id: str) -> int:
        """More servers of `plan_id` the enabled nodes can take, each placed whole on one node."""
        return sum(n.fits.get(plan_id, 0) for n in self.nodes if n.enabled)

    @property
    def available_ram_gb(self) -> int:
        return sum(max(n.available_ram_gb, 0) for n in self.nodes if n.enabled)


def servers_that_fit(available_ram_gb: int, plan_ram_gb: int) -> int:
    """Whole servers of `plan_ram_gb` in `available_ram_gb` (0 when the node is over)."""
    return max(available_ram_gb, 0) // plan_ram_gb if plan_ram_gb > 0 else 0


class NodesService:
    def __init__(self, postgres: PostgresService):
        self.postgres = postgres

    async def capacity(self) -> Capacity:
        """Every node (empty and disabled ones too) with its forecast; raises ServiceError."""
        rows = await self.postgres.run("node_capacity")
        plans = [PlanSize(**dict(r)) for r in await self.postgres.run("active_plans")]
        nodes = []
        for r in rows:
            values = {k: v for k, v in dict(r).items() if k != "id"}
            fits = {p.id: servers_that_fit(values["available_ram_gb"], p.ram_gb) for p in plans}
            nodes.append(NodeCapacity(**values, fits=fits if values["enabled"] else {}))
        return Capacity(nodes, plans)


def capacity_json(capacity: Capacity) -> list[dict]:
    """What `opsconsole nodes --json` prints: one object per node, with its level and
    the forecast (plan id -> more servers of that plan that fit; empty when disabled)."""
    return [
        {
            "name": n.name,
            "location": n.location,
            "enabled": n.enabled,
            "level": capacity.level(n),
            "max_ram_gb": n.max_ram_gb,
            "reserved_headroom_gb": n.reserved_headroom_gb,
            "used_ram_gb": n.used_ram_gb,
            "available_ram_gb": n.available_ram_gb,
            "usage_pct": round(n.usage_pct, 1),
            "live_servers": n.live_servers,
            "forecast": dict(n.fits),
        }
        for n in capacity.nodes
    ]


@dataclass(frozen=True)
class LockedNode:
    """A game node as its enable/disable precondition sees it, locked for the change."""

    id: int
    name: str
    enabled: bool
    live_servers: int


async def lock_node(conn, name: str) -> LockedNode | None:
    """The node, locked FOR UPDATE in `conn`'s transaction, with its live servers; or None."""
    row = await named_queries().node_for_update(conn, name=name)
    return None if row is None else LockedNode(**dict(row))
