"""AuditService: the append-only, hash-chained ops.audit_log (write intent and outcome,
browse with filters, verify the chain) and the ops.claims that stop two operators
running the same action on the same target at once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.postgres import PostgresService

CLAIM_SECONDS = 300  # a console that dies mid-action frees its claim after this long


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    operator: str
    role: str
    action: str
    target: str
    phase: str
    outcome: str | None
    intent_id: int | None
    duration_ms: int | None
    detail: dict[str, Any]
    error: str | None


@dataclass(frozen=True)
class AuditFilter:
    operator: str | None = None
    action: str | None = None
    target: str | None = None
    outcome: str | None = None

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in vars(self).items() if v]
        return ", ".join(parts) or "everything"


@dataclass(frozen=True)
class Claim:
    action: str
    target: str
    operator: str
    console_id: str
    started_at: datetime
    seconds: float


@dataclass(frozen=True)
class ChainReport:
    rows: int
    broken_id: int | None  # the first row whose hash does not follow
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.broken_id is None


def _row(record) -> AuditRow:
    values = dict(record)
    values["detail"] = json.loads(values["detail"] or "{}")
    return AuditRow(**values)


class AuditService:
    def __init__(self, postgres: PostgresService):
        self.postgres = postgres

    async def record(
        self,
        *,
        operator: str,
        role: str,
        action: str,
        target: str,
        phase: str,
        outcome: str | None = None,
        intent_id: int | None = None,
        duration_ms: int | None = None,
        detail: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> int:
        """Append one row (on the primary, committed at once); returns its id.
        `detail` must hold no secrets: callers pass only what they chose to show."""
        row = await self.postgres.run(
            "audit_insert", read=False,
            operator=operator, role=role, action=action, target=target, phase=phase,
            outcome=outcome, intent_id=intent_id, duration_ms=duration_ms,
            detail=json.dumps(detail or {}, default=str, sort_keys=True), error=error,
        )  # fmt: skip
        return row["id"]

    async def page(
        self, where: AuditFilter = AuditFilter(), *, before_id: int | None = None, limit: int = 200
    ) -> list[AuditRow]:
        """Newest first, filtered; `before_id` is the keyset cursor of the previous page."""
        rows = await self.postgres.run(
            "audit_page", operator=where.operator, action=where.action, target=where.target,
            outcome=where.outcome, before_id=before_id, limit=limit,
        )  # fmt: skip
        return [_row(r) for r in rows]

    async def verify(self, batch: int = 5000) -> ChainReport:
        """Recompute every row's hash in id order; names the first row that breaks the chain."""
        after, previous, count = 0, "", 0
        while True:
            rows = await self.postgres.run(
                "audit_chain", read=False, after_id=after, first_prev=previous, limit=batch
            )
            for r in rows:
                count += 1
                if r["prev_hash"] != r["previous_hash"]:
                    return ChainReport(count, r["id"], "its prev_hash is not the hash of the row before it")
                if r["hash"] != r["expected"]:
                    return ChainReport(count, r["id"], "its content does not match its hash")
                previous = r["hash"]
                after = r["id"]
            if len(rows) < batch:
                return ChainReport(count, None, None)

    # -- claims -------------------------------------------------------------------

    async def claim(
        self, action: str, target: str, operator: str, console_id: str, seconds: int = CLAIM_SECONDS
    ) -> Claim | None:
        """Take the claim on (action, target); None when another console holds it."""
        row = await self.postgres.run(
            "claim_take", read=False, action=action, target=target,
            operator=operator, console_id=console_id, seconds=seconds,
        )  # fmt: skip
        if row is None:
            return None
        return Claim(**dict(row), seconds=0.0)

    async def holder(self, action: str, target: str) -> Claim | None:
        row = await self.postgres.run("claim_holder", read=False, action=action, target=target)
        if row is None:
            return None
        return Claim(action=action, target=target, **{**dict(row), "seconds": float(row["seconds"])})

    async def release(self, action: str, target: str, console_id: str) -> None:
        await self.postgres.run(
            "claim_release", read=False, action=action, target=target, console_id=console_id
        )

    async def live_claims(self) -> list[Claim]:
        rows = await self.postgres.run("live_claims", read=False)
        return [Claim(**{**dict(r), "seconds": float(r["seconds"])}) for r in rows]
