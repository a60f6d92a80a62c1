"""AuditService: the append-only, hash-chained ops.audit_log (write intent and outcome,
browse with filters, verify the chain). Claims on targets live in services.claims."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from services.audit_anchor import AnchorStore, DatabaseIdentity, Head
from services.errors import ServiceError
from services.postgres import PostgresService

log = logging.getLogger(__name__)


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
class ChainReport:
    rows: int
    broken_id: int | None  # the first row whose hash does not follow, or an anchored row gone or changed
    reason: str | None
    anchors: int = 0  # anchors this machine keeps for this database, each checked
    newest_anchor: int | None = None  # the newest anchored row id
    head: Head | None = None  # the newest row, for the operator to keep (when intact)
    head_checked: bool = False  # an operator-kept head was given and checked
    database: str = ""  # the database's name, for messages

    @property
    def ok(self) -> bool:
        return self.broken_id is None

    @property
    def tail_checked(self) -> bool:
        """Whether a cut tail or a truncation could have been seen: only against a row
        remembered outside the database (an anchor, or a head the operator kept)."""
        return self.anchors > 0 or self.head_checked


def like_prefix(text: str) -> str:
    """`text` as a LIKE pattern matching itself only: its % and _ are literal."""
    return text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")


def _row(record) -> AuditRow:
    values = dict(record)
    values["detail"] = json.loads(values["detail"] or "{}")
    return AuditRow(**values)


class AuditService:
    """`anchors`: where this console remembers the rows it writes (an AnchorStore, or the
    path of its file); by default a file in the user's state dir."""

    def __init__(self, postgres: PostgresService, anchors: AnchorStore | Path | None = None):
        self.postgres = postgres
        self.anchors = anchors if isinstance(anchors, AnchorStore) else AnchorStore(anchors)
        self._database: DatabaseIdentity | None = None

    async def database(self) -> DatabaseIdentity:
        """Which database the audit log is in (asked once); raises ServiceError."""
        if self._database is None:
            row = await self.postgres.run("audit_database_identity", read=False)
            self._database = DatabaseIdentity(cluster=row["cluster"], oid=row["oid"], name=row["name"])
        return self._database

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
        """Append one row (on the primary, committed at once) and anchor it in the local
        anchor store; returns its id. `detail` must hold no secrets: callers pass only what
        they chose to show. Raises ServiceError when the row cannot be written; a row
        written but not anchored (disk full) is logged, not raised: the action stays
        audited, only this machine's check of it is weaker."""
        row = await self.postgres.run(
            "audit_insert", read=False,
            operator=operator, role=role, action=action, target=target, phase=phase,
            outcome=outcome, intent_id=intent_id, duration_ms=duration_ms,
            detail=json.dumps(detail or {}, default=str, sort_keys=True), error=error,
        )  # fmt: skip
        try:
            database = await self.database()
            await asyncio.to_thread(self.anchors.append, database, row["id"], row["hash"])
        except (OSError, ServiceError) as exc:
            log.warning("audit row %d written but not anchored in %s: %s", row["id"], self.anchors.path, exc)
        return row["id"]

    async def page(
        self, where: AuditFilter = AuditFilter(), *, before_id: int | None = None, limit: int = 200
    ) -> list[AuditRow]:
        """Newest first, filtered (the target by its prefix: `ed113faf` finds that order's
        rows); `before_id` is the keyset cursor of the previous page."""
        target = None if where.target is None else like_prefix(where.target)
        rows = await self.postgres.run(
            "audit_page", operator=where.operator, action=where.action, target=target,
            outcome=where.outcome, before_id=before_id, limit=limit,
        )  # fmt: skip
        return [_row(r) for r in rows]

    async def verify(self, batch: int = 5000, *, head: Head | None = None) -> ChainReport:
        """Recompute every row's hash in id order, and check that each row remembered
        outside the table (this machine's anchors for this database, and `head` when the
        operator kept one) is still there with the same hash. Names the first row, in id
        order, that breaks the chain or differs from what was remembered: a cut tail, a
        truncation and an edit whose chain was recomputed all show as an anchored row gone
        or changed. Raises ServiceError when the database cannot be read."""
        database = await self.database()
        anchors = await asyncio.to_thread(self.anchors.anchors, database)
        remembered = sorted(
            [_Remembered(a.row_id, a.row_hash, _anchored_by(a.at)) for a in anchors.values()]
            + ([_Remembered(head.row_id, head.row_hash, "the head you kept")] if head else []),
            key=lambda m: m.row_id,
        )

        def report(rows: int, broken: int | None = None, reason: str | None = None, last=None) -> ChainReport:
            return ChainReport(
                rows, broken, reason, anchors=len(anchors), newest_anchor=max(anchors, default=None),
                head=last, head_checked=head is not None, database=database.name,
            )  # fmt: skip

        after, previous, count, i = 0, "", 0, 0
        while True:
            rows = await self.postgres.run(
                "audit_chain", read=False, after_id=after, first_prev=previous, limit=batch
            )
            for r in rows:
                if i < len(remembered) and remembered[i].row_id < r["id"]:
                    return report(count, remembered[i].row_id, remembered[i].gone())
                count += 1
                if r["prev_hash"] != r["previous_hash"]:
                    return report(count, r["id"], "its prev_hash is not the hash of the row before it")
                if r["hash"] != r["expected"]:
                    return report(count, r["id"], "its content does not match its hash")
                while i < len(remembered) and remembered[i].row_id == r["id"]:
                    if remembered[i].row_hash != r["hash"]:
                        return report(count, r["id"], remembered[i].changed(r["hash"]))
                    i += 1
                previous = r["hash"]
                after = r["id"]
            if len(rows) < batch:
                if i < len(remembered):
                    return report(count, remembered[i].row_id, remembered[i].gone())
                return report(count, last=Head(after, previous) if count else None)


@dataclass(frozen=True)
class _Remembered:
    """A row someone remembered outside the table, and who."""

    row_id: int
    row_hash: str
    who: str

    def gone(self) -> str:
        return (
            f"it is gone, though {self.who} holds it (hash {self.row_hash[:16]}…): "
            "rows were deleted or the log truncated"
        )

    def changed(self, found: str) -> str:
        return (
            f"it is not the row {self.who} holds (hash {found[:16]}…, "
            f"not {self.row_hash[:16]}…): the log was rewritten from there on and its chain recomputed"
        )


def _anchored_by(at: str) -> str:
    return f"the anchor this machine kept{f' at {at}' if at else ''}"
