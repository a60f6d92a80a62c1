"""ChecklistService: walking the checklists as stored runs. `walk` opens the checklist's run
(one open run per checklist, shared by every console) or refreshes it: every automatic item
re-run and its evidence stored as seen; unresolved items of the last signed-off run carry
over. Manual answers and the sign-off are runbook actions (services.checklist_actions). A
signed-off run is frozen by the database. `handover` is the Markdown for the team channel."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from services.checklist_items import CHECKLISTS, ITEMS, PERIOD, Item, Seen, evaluate
from services.text import human_age

if TYPE_CHECKING:
    from services.bundle import Services

UNRESOLVED = ("fail", "warn", "open", "not available")


@dataclass(frozen=True)
class RunItem:
    item: str
    position: int
    title: str
    kind: str
    state: str
    figure: str | None
    threshold: str | None
    evidence: dict[str, Any]
    checked_at: datetime
    answered_by: str | None = None
    answered_at: datetime | None = None
    note: str | None = None
    carried_from: int | None = None

    @property
    def unresolved(self) -> bool:
        return self.state in UNRESOLVED

    @property
    def shown_state(self) -> str:
        """What the run reports: manual items not answered are `manual`."""
        if self.kind == "manual" and self.state == "open":
            return "manual"
        return self.state

    def as_json(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "title": self.title,
            "kind": self.kind,
            "state": self.shown_state,
            "figure": self.figure,
            "threshold": self.threshold,
            "evidence": self.evidence,
            "checked_at": self.checked_at.isoformat(),
            "answered_by": self.answered_by,
            "answered_at": self.answered_at.isoformat() if self.answered_at else None,
            "note": self.note,
            "carried_from": self.carried_from,
        }


@dataclass(frozen=True)
class Run:
    id: int
    checklist: str
    started_at: datetime
    started_by: str
    signed_off_at: datetime | None
    signed_off_by: str | None
    sign_off_note: str | None
    items: tuple[RunItem, ...] = ()
    stored: bool = True  # False: a read-only walk, seen but not recorded

    @property
    def signed(self) -> bool:
        return self.signed_off_at is not None

    @property
    def failed(self) -> list[RunItem]:
        """Automatic items that failed: what makes `check --json` exit 1 (manual never do)."""
        return [i for i in self.items if i.kind == "auto" and i.state == "fail"]

    @property
    def unresolved(self) -> list[RunItem]:
        return [i for i in self.items if i.unresolved]

    def item(self, item_id: str) -> RunItem | None:
        return next((i for i in self.items if i.item == item_id), None)

    def as_json(self) -> dict[str, Any]:
        return {
            "run": self.id if self.stored else None,
            "checklist": self.checklist,
            "started_at": self.started_at.isoformat(),
            "started_by": self.started_by,
            "signed_off_at": self.signed_off_at.isoformat() if self.signed_off_at else None,
            "signed_off_by": self.signed_off_by,
            "note": self.sign_off_note,
            "failed": [i.item for i in self.failed],
            "items": [i.as_json() for i in self.items],
        }


@dataclass(frozen=True)
class Due:
    """When a checklist is next due, from its last sign-off."""

    checklist: str
    last_signed: datetime | None
    open_run: int | None
    now: datetime

    @property
    def due_at(self) -> datetime | None:
        return None if self.last_signed is None else self.last_signed + PERIOD[self.checklist]

    @property
    def state(self) -> str:
        """ok | due | overdue (half a period past due, or never signed off)."""
        if self.last_signed is None:
            return "overdue"
        if self.now < self.due_at:
            return "ok"
        return "due" if self.now < self.due_at + PERIOD[self.checklist] / 2 else "overdue"

    def line(self) -> str:
        if self.last_signed is None:
            return f"{self.checklist}: never signed off" + (" (a run is open)" if self.open_run else "")
        age = human_age(self.now - self.last_signed)
        if self.state == "ok":
            return f"{self.checklist}: signed off {age} ago, next due in {human_age(self.due_at - self.now)}"
        return f"{self.checklist}: {self.state.upper()} (signed off {age} ago)"

    def as_json(self) -> dict[str, Any]:
        return {
            "checklist": self.checklist,
            "state": self.state,
            "open_run": self.open_run,
            "last_signed_off": self.last_signed.isoformat() if self.last_signed else None,
            "due_at": self.due_at.isoformat() if self.due_at else None,
        }


def _run(row: Any, items: list[RunItem] | None = None, stored: bool = True) -> Run:
    return Run(
        row["id"],
        row["checklist"],
        row["started_at"],
        row["started_by"],
        row["signed_off_at"],
        row["signed_off_by"],
        row["sign_off_note"],
        tuple(items or ()),
        stored,
    )


def run_item(row: Any) -> RunItem:
    """A stored item row as a RunItem."""
    values = dict(row)
    values.pop("run_id")
    evidence = values.pop("evidence")
    return RunItem(
        **values, evidence=json.loads(evidence) if isinstance(evidence, str) else dict(evidence or {})
    )


@dataclass
class ChecklistService:
    services: Services
    timeout: float = 20.0
    _evaluating: dict[str, asyncio.Lock] = field(default_factory=dict)

    @property
    def postgres(self):
        return self.services.postgres

    async def _seen(self, item: Item) -> Seen:
        """The item now: its check (bounded in time), or for a manual one done once a period,
        its last recorded answer while the period lasts."""
        if item.every is not None:
            last = await self.postgres.run("checklist_last_done", item=item.id)
            if last is not None and datetime.now(UTC) - last["at"] <= item.every:
                said = f"done {human_age(datetime.now(UTC) - last['at'])} ago by {last['by']}"
                return Seen(
                    "pass",
                    said + (f": {last['note']}" if last["note"] else ""),
                    f"every {item.every.days} days",
                    {"recorded_in_run": last["run_id"]},
                )
            when = f"last done {human_age(datetime.now(UTC) - last['at'])} ago" if last else "never recorded"
            return Seen("open", f"due: {when}", f"every {item.every.days} days")
        try:
            return await asyncio.wait_for(evaluate(item, self.services), self.timeout)
        except TimeoutError:
            return Seen("not available", f"not available: no answer within {self.timeout:g} s")

    async def see(self, checklist: str) -> list[tuple[Item, Seen]]:
        items = ITEMS[checklist]
        seen = await asyncio.gather(*(self._seen(i) for i in items))
        return list(zip(items, seen, strict=True))

    async def walk(self, checklist: str, operator: str, *, store: bool = True) -> Run:
        """The checklist's open run with every item seen now (started if none is open, with
        the last signed-off run's unresolved items carried over). With `store=False` (a
        read-only console) nothing is written: the run is seen, not recorded."""
        if checklist not in CHECKLISTS:
            raise ValueError(f"no checklist {checklist!r}: {', '.join(CHECKLISTS)}")
        seen = await self.see(checklist)
        previous = await self.postgres.run("checklist_last_signed", checklist=checklist)
        carried: dict[str, int] = {}
        if previous is not None:
            for i in map(run_item, await self.postgres.run("checklist_items", run_id=previous["id"])):
                if i.unresolved:
                    carried[i.item] = i.carried_from or previous["id"]
        now = datetime.now(UTC)
        if not store:
            items = [
                RunItem(
                    item.id,
                    n,
                    item.title,
                    item.kind,
                    s.state,
                    s.figure,
                    s.threshold,
                    s.evidence,
                    now,
                    carried_from=carried.get(item.id),
                )
                for n, (item, s) in enumerate(seen)
            ]
            fake = {
                "id": 0,
                "checklist": checklist,
                "started_at": now,
                "started_by": operator,
                "signed_off_at": None,
                "signed_off_by": None,
                "sign_off_note": None,
            }
            return _run(fake, items, stored=False)
        async with self.postgres.connection() as conn, conn.transaction():
            run = await self.postgres.run("checklist_open_run", conn=conn, checklist=checklist)
            if run is None:
                run = await self.postgres.run(
                    "checklist_start_run", conn=conn, checklist=checklist, started_by=operator
                )
                if run is None:  # another console opened it a moment ago
                    run = await self.postgres.run("checklist_open_run", conn=conn, checklist=checklist)
            existing = {
                r["item"]: r for r in await self.postgres.run("checklist_items", conn=conn, run_id=run["id"])
            }
            for n, (item, s) in enumerate(seen):
                if item.id not in existing:
                    await self.postgres.run(
                        "checklist_item_insert",
                        conn=conn,
                        run_id=run["id"],
                        item=item.id,
                        position=n,
                        title=item.title,
                        kind=item.kind,
                        state=s.state,
                        figure=s.figure,
                        threshold=s.threshold,
                        evidence=json.dumps(s.evidence, default=str),
                        carried_from=carried.get(item.id),
                    )
                elif item.kind == "auto" or existing[item.id]["answered_at"] is None:
                    await self.postgres.run(
                        "checklist_item_seen",
                        conn=conn,
                        run_id=run["id"],
                        item=item.id,
                        state=s.state,
                        figure=s.figure,
                        threshold=s.threshold,
                        evidence=json.dumps(s.evidence, default=str),
                    )
        return await self.run(run["id"])

    async def run(self, run_id: int) -> Run:
        row = await self.postgres.run("checklist_run", id=run_id)
        if row is None:
            raise ValueError(f"no checklist run {run_id}")
        return _run(row, [run_item(r) for r in await self.postgres.run("checklist_items", run_id=run_id)])

    async def open_run(self, checklist: str) -> Run | None:
        row = await self.postgres.run("checklist_open_run", checklist=checklist)
        return None if row is None else await self.run(row["id"])

    async def latest(self, checklist: str) -> Run | None:
        """The open run, else the last signed-off one."""
        rows = await self.postgres.run("checklist_runs", checklist=checklist, limit=1)
        return await self.run(rows[0]["id"]) if rows else None

    async def due(self, now: datetime | None = None) -> list[Due]:
        now = now or datetime.now(UTC)
        out = []
        for checklist in CHECKLISTS:
            last = await self.postgres.run("checklist_last_signed", checklist=checklist)
            open_ = await self.postgres.run("checklist_open_run", checklist=checklist)
            out.append(
                Due(checklist, last["signed_off_at"] if last else None, open_["id"] if open_ else None, now)
            )
        return out

    async def handover(self, now: datetime | None = None) -> str:
        """Markdown for the team channel: when each checklist is due, and every unresolved item
        of each checklist's latest run with its evidence, who answered, since when it carries over."""
        now = now or datetime.now(UTC)
        lines = [f"## Ops handover, {now:%Y-%m-%d %H:%M} UTC", ""]
        for due in await self.due(now):
            lines.append(f"- **{due.checklist}**: {due.line().partition(': ')[2]}")
        for checklist in CHECKLISTS:
            run = await self.latest(checklist)
            if run is None:
                continue
            state = (
                f"signed off by {run.signed_off_by} {human_age(now - run.signed_off_at)} ago"
                if run.signed
                else f"open, started by {run.started_by} {human_age(now - run.started_at)} ago"
            )
            lines += ["", f"### {checklist.capitalize()} (run {run.id}, {state})"]
            if run.sign_off_note:
                lines.append(f"> {run.sign_off_note}")
            todo = run.unresolved
            if not todo:
                lines.append("- everything passed")
            for i in todo:
                said = f"- **{i.shown_state.upper()}** {i.title}: {i.figure or 'not answered yet'}"
                if i.note:
                    said += f" ({i.answered_by}: {i.note})"
                if i.carried_from:
                    said += f" · carried over since run {i.carried_from}"
                lines.append(said)
        return "\n".join(lines) + "\n"


def overdue_lines(dues: list[Due]) -> list[str]:
    """The overview's lines: the checklists due or overdue."""
    return [d.line() for d in dues if d.state != "ok"]
