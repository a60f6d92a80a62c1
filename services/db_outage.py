"""The AGIS manual's "Database Outage" runbook as a guided one: scale the bot to 0 (stop new
writes), investigate (disk? connection limit?), fix the root cause, verify the database's
health, scale the bot back up, watch for errors. Each step is an action the runbook engine
runs (scaling) or a note on the open incident's timeline (what was found, done, verified);
this module gathers the figures each step shows and judges health."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.dbcare_model import Connections, Locks, Replication, human_seconds
from services.errors import ServiceError
from services.text import human_bytes

if TYPE_CHECKING:
    from services.bundle import Services

STEPS = (
    ("scale", "Scale the bot to 0 replicas (stop new writes)"),
    ("investigate", "Investigate the database: disk? connection limit?"),
    ("fix", "Fix the root cause (expand the disk, raise max_connections, end runaway sessions)"),
    ("verify", "Verify the database's health"),
    ("scale_up", "Scale the bot back up"),
    ("watch", "Watch for errors"),
)
HEALTHY_CONNECTIONS_PCT = 80.0
SMOKE = "SELECT COUNT(*) FROM users"  # the manual's own smoke query (as its backup check runs it)


@dataclass(frozen=True)
class Figures:
    """What the investigate step shows: connections against the limit, the database's size
    and its WAL (disk), the sessions piling up, lock trees, the horizon, replicas."""

    connections: Connections
    wal_bytes: int | None  # None: pg_ls_waldir() is not readable by the console's role
    active: int
    idle_in_transaction: int
    waiting: int
    longest: float | None
    locks: Locks
    replication: Replication
    largest: tuple[tuple[str, int | None], ...]

    def lines(self) -> list[str]:
        c = self.connections
        wal = (
            "not readable (the console's role needs pg_monitor)"
            if self.wal_bytes is None
            else human_bytes(self.wal_bytes)
        )
        lines = [
            f"connections: {c.used} of {c.max_connections} ({c.reserved} reserved for superusers), "
            f"{c.used_pct:.0f}% of those open to the bot" + (" — AT THE LIMIT" if c.available == 0 else ""),
            f"sessions: {self.active} active, {self.idle_in_transaction} idle in transaction, {self.waiting} "
            f"waiting on a lock; longest running {human_seconds(self.longest)}",
            f"disk: database {c.database} {human_bytes(c.database_bytes)}, WAL {wal}",
            "largest tables: "
            + ", ".join(f"{n} {human_bytes(b) if b is not None else 'locked'}" for n, b in self.largest),
        ]
        trees = len(self.locks.forest)
        lines.append(f"locks: {trees} lock trees" if trees else "locks: no session waits on another")
        if self.locks.horizon:
            lines.append(self.locks.horizon.line())
        for r in self.replication.replicas:
            lines.append(f"replica {r.name}: {r.state}, lag {human_seconds(r.lag_seconds)}")
        return lines


async def investigate(services: Services) -> Figures:
    """The figures of the investigate step, read now; raises ServiceError when the database
    does not answer at all (that is the finding, then)."""
    care = services.dbcare
    sessions = await care.activity()
    locks = await care.locks()
    connections = await care.connections()
    health = await care.health()
    replication = await care.replication()
    try:
        wal = await services.postgres.run("db_wal_bytes", read=False)
    except ServiceError:
        wal = None
    active = [s for s in sessions if s.state == "active"]
    return Figures(
        connections,
        wal,
        len(active),
        sum(1 for s in sessions if s.idle_in_transaction),
        sum(1 for s in sessions if s.wait_event_type == "Lock"),
        max((s.duration or 0.0 for s in active), default=None),
        locks,
        replication,
        tuple((t.qualified, t.total_bytes) for t in health.tables[:3]),
    )


@dataclass(frozen=True)
class Verdict:
    """The verify step: healthy or not, and each check's line."""

    ok: bool
    lines: tuple[str, ...]


async def verify(services: Services) -> Verdict:
    """The database answers and takes a write's worth of work: a ping, the manual's smoke
    query, connections under 80% of the limit, no lock tree, no replica far behind."""
    lines: list[str] = []
    ok = True
    try:
        ping = await services.postgres.ping()
        lines.append(f"ok: {ping.version} answers in {ping.rtt_ms:.0f} ms")
        users = await services.postgres.run("db_smoke", read=False)
        lines.append(f"ok: {SMOKE} = {users:,}")
    except ServiceError as exc:
        return Verdict(False, (f"FAILED: {exc}",))
    c = await services.dbcare.connections()
    good = c.used_pct < HEALTHY_CONNECTIONS_PCT
    ok &= good
    usable = c.max_connections - c.reserved
    lines.append(f"{'ok' if good else 'FAILED'}: connections {c.used} of {usable} usable "
                 f"({c.used_pct:.0f}%, under {HEALTHY_CONNECTIONS_PCT:.0f}% wanted)")  # fmt: skip
    locks = await services.dbcare.locks()
    ok &= not locks.forest
    lines.append("ok: no session waits on another's lock" if not locks.forest else
                 f"FAILED: {len(locks.forest)} lock trees (see the Locks tab)")  # fmt: skip
    for r in (await services.dbcare.replication()).replicas:
        late = (r.lag_seconds or 0) > 60 and bool(r.behind_bytes)
        ok &= not late
        lines.append(f"{'FAILED' if late else 'ok'}: replica {r.name} lag {human_seconds(r.lag_seconds)}")
    return Verdict(ok, tuple(lines))


@dataclass(frozen=True)
class Watched:
    ok: bool
    lines: tuple[str, ...]


async def watch(services: Services, seconds: float, *, every: float = 5.0, say=None) -> Watched:
    """Watch the database for `seconds`: rolled-back transactions, deadlocks and the
    connections used, sampled every `every` seconds; bad when deadlocks appear or rollbacks
    outnumber commits, or connections reach the limit."""
    say = say or (lambda _line: None)
    first = await services.postgres.run("db_counters", read=False)
    started = time.monotonic()
    peak = 0.0
    while True:
        c = await services.dbcare.connections()
        peak = max(peak, c.used_pct)
        left = seconds - (time.monotonic() - started)
        say(f"watching: connections {c.used} ({c.used_pct:.0f}%), {max(left, 0):.0f} s left")
        if left <= 0:
            break
        await asyncio.sleep(min(every, left))
    last = await services.postgres.run("db_counters", read=False)
    commits = last["xact_commit"] - first["xact_commit"]
    rollbacks = last["xact_rollback"] - first["xact_rollback"]
    deadlocks = last["deadlocks"] - first["deadlocks"]
    ok = deadlocks == 0 and rollbacks <= max(commits, 10) and peak < 100
    lines = (
        f"{'ok' if ok else 'ERRORS'}: over {seconds:.0f} s, {commits:,} commits, {rollbacks:,} rollbacks, "
        f"{deadlocks} deadlocks; connections peaked at {peak:.0f}% of the usable",
    )
    return Watched(ok, lines)
