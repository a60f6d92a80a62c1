"""OverviewService: the headline figures the overview area shows, from sql/queries/overview.sql."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.postgres import PostgresService


@dataclass(frozen=True)
class StatusCount:
    status: str
    orders: int


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    operator: str
    action: str
    target: str
    phase: str
    outcome: str | None
    error: str | None


@dataclass(frozen=True)
class Overview:
    stuck: int
    oldest_stuck_at: datetime | None
    errors: int
    created_24h: int
    nodes_enabled: int
    nodes_total: int
    as_of: datetime
    by_status_24h: tuple[StatusCount, ...]
    recent_actions: tuple[AuditEntry, ...]

    @property
    def oldest_stuck_minutes(self) -> int | None:
        if self.oldest_stuck_at is None:
            return None
        return int((self.as_of - self.oldest_stuck_at).total_seconds() // 60)


class OverviewService:
    def __init__(self, postgres: PostgresService):
        self.postgres = postgres

    async def overview(self, recent: int = 8) -> Overview:
        """Figures, today's orders per status and the latest actions; raises ServiceError."""
        # One pooled connection for the three: fewer connection set-ups on a cold start.
        async with self.postgres.connection(read=True) as conn:
            figures = await self.postgres.run("overview_figures", conn=conn)
            by_status = await self.postgres.run("orders_by_status_24h", conn=conn)
            audit = await self.postgres.run("recent_audit", conn=conn, limit=recent)
        return Overview(
            **dict(figures),
            by_status_24h=tuple(StatusCount(r["status"], r["orders"]) for r in by_status),
            recent_actions=tuple(AuditEntry(**dict(r)) for r in audit),
        )
