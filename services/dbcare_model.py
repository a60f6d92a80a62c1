"""What the Database area knows, as frozen dataclasses and pure functions: a session of
pg_stat_activity, the lock tree built from pg_blocking_pids(), who holds back the xmin
horizon, table and index health, connections, statements, replication; and SQL text with
its secret literals masked before anyone sees it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.text import MASK

CLIENT_BACKEND = "client backend"
IDLE_IN_TX = ("idle in transaction", "idle in transaction (aborted)")

# A literal after a word that names a secret: `PASSWORD 'x'`, `api_key = 'x'`, `secret := 'x'`,
# `"token": 'x'`; the literal may be E'' or a dollar-quoted one.
_SECRET_WORD = r"(?:\w*(?:password|passwd|secret|token|credential)\w*|\w*key)"  # api_key, not keyword
_LITERAL = r"(?:[eE]?'(?:[^']|'')*'|\$(?P<tag>\w*)\$.*?\$(?P=tag)\$)"
_SECRET_LITERAL = re.compile(
    rf"(?P<head>\b{_SECRET_WORD}\b\"?\s*(?:=>|:=|<>|!=|=|:|\s)\s*(?:\w+\s+)?){_LITERAL}",
    re.IGNORECASE | re.DOTALL,
)
# 'password' => 'x' inside JSON or hstore text, or password=x inside a DSN or a query string.
_SECRET_PAIR = re.compile(rf"(?P<head>\b{_SECRET_WORD}\b\s*=\s*)(?P<value>[^\s'&;,)]+)", re.IGNORECASE)
_JSON_PAIR = re.compile(rf"(?P<head>\"{_SECRET_WORD}\"\s*:\s*)\"(?:[^\"\\]|\\.)*\"", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<head>\w+://[^\s:/@'\"]*:)[^\s@'\"]+@")


def mask_sql(query: str | None) -> str:
    """`query` with the value of every literal that follows a password/secret/key/token word
    replaced by '***' (`ALTER ROLE x PASSWORD '***'`, `api_key = '***'`), and URL passwords
    masked; what is left is shown and audited. Best effort: a secret in a literal that no
    such word names is not found."""
    if not query:
        return ""
    text = _SECRET_LITERAL.sub(lambda m: f"{m['head']}'{MASK}'", query)
    text = _JSON_PAIR.sub(lambda m: f'{m["head"]}"{MASK}"', text)
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)
    return _SECRET_PAIR.sub(
        lambda m: m[0] if m["value"].startswith(MASK) or m["value"] == "'" else f"{m['head']}{MASK}", text
    )


def one_line(query: str, limit: int | None = None) -> str:
    """A query on one line, its runs of whitespace as one space, cut at `limit` with '…'."""
    flat = " ".join(query.split())
    return flat if limit is None or len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True)
class Session:
    """One backend of pg_stat_activity. Durations are in seconds (None when not applicable);
    `query` is masked (mask_sql) and may be cut at track_activity_query_size."""

    pid: int
    database: str | None
    user: str | None
    application: str
    client: str
    backend_type: str
    state: str | None
    wait_event_type: str | None
    wait_event: str | None
    query_seconds: float | None
    xact_seconds: float | None
    state_seconds: float | None
    xmin_age: int | None
    writing: bool
    query: str
    blocked_by: tuple[int, ...] = ()
    waiting_for: str | None = None
    superuser: bool = False
    me: bool = False

    @property
    def client_backend(self) -> bool:
        """Only client backends' queries may be cancelled here (never a background worker)."""
        return self.backend_type == CLIENT_BACKEND

    @property
    def idle_in_transaction(self) -> bool:
        return self.state in IDLE_IN_TX

    @property
    def wait(self) -> str:
        """'Lock: transactionid', or '' when it waits on nothing."""
        if not self.wait_event_type:
            return ""
        return f"{self.wait_event_type}: {self.wait_event}" if self.wait_event else self.wait_event_type

    @property
    def duration(self) -> float | None:
        """How long it has been doing what it does: the query (active), the transaction (idle
        in transaction), or being idle."""
        if self.state == "active":
            return self.query_seconds
        if self.idle_in_transaction:
            return self.xact_seconds
        return self.state_seconds

    @property
    def cancellable(self) -> bool:
        """A query to cancel: a client backend's, running or holding a transaction open."""
        return self.client_backend and not self.me and (self.state == "active" or self.idle_in_transaction)

    def as_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid, "database": self.database, "user": self.user, "application": self.application,
            "client": self.client, "state": self.state, "wait": self.wait or None,
            "query_seconds": _round(self.query_seconds), "xact_seconds": _round(self.xact_seconds),
            "state_seconds": _round(self.state_seconds), "duration_seconds": _round(self.duration),
            "xmin_age": self.xmin_age, "blocked_by": list(self.blocked_by), "waiting_for": self.waiting_for,
            "query": self.query,
        }  # fmt: skip


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def session_of(row: Mapping[str, Any]) -> Session:
    return Session(
        pid=row["pid"], database=row["database"], user=row["username"], application=row["application"] or "",
        client=row["client"] or "", backend_type=row["backend_type"] or "", state=row["state"],
        wait_event_type=row["wait_event_type"], wait_event=row["wait_event"],
        query_seconds=row["query_seconds"], xact_seconds=row["xact_seconds"],
        state_seconds=row["state_seconds"],
        xmin_age=row["xmin_age"], writing=bool(row["writing"]), query=mask_sql(row["query"]),
        blocked_by=tuple(row["blocked_by"] or ()), waiting_for=row["waiting_for"],
        superuser=bool(row["superuser"]), me=bool(row["me"]),
    )  # fmt: skip


@dataclass(frozen=True)
class Filters:
    """The activity tab's filters; empty ones let everything through."""

    state: str = ""  # active | idle | idle in transaction | waiting | '' (all)
    min_seconds: float = 0.0
    database: str = ""
    text: str = ""  # in the query, user, application or client (case ignored)

    def keep(self, s: Session) -> bool:
        if self.state == "waiting":
            if not s.wait_event_type or s.wait_event_type == "Client":
                return False
        elif self.state == "idle in transaction":
            if not s.idle_in_transaction:
                return False
        elif self.state and s.state != self.state:
            return False
        if self.min_seconds and (s.duration or 0.0) < self.min_seconds:
            return False
        if self.database and (s.database or "") != self.database:
            return False
        if self.text:
            needle = self.text.lower()
            hay = f"{s.query}\n{s.user or ''}\n{s.application}\n{s.client}\n{s.pid}".lower()
            if needle not in hay:
                return False
        return True

    @property
    def any(self) -> bool:
        return bool(self.state or self.min_seconds or self.database or self.text)

    def describe(self) -> str:
        parts = [f"state {self.state}"] if self.state else []
        if self.min_seconds:
            parts.append(f"≥ {self.min_seconds:g} s")
        if self.database:
            parts.append(f"database {self.database}")
        if self.text:
            parts.append(f"text {self.text!r}")
        return ", ".join(parts) or "none"


STATES = ("", "active", "idle in transaction", "waiting", "idle")


# -- the lock tree ----------------------------------------------------------------------


@dataclass(frozen=True)
class LockNode:
    """A session in the lock tree: the sessions it blocks are its children. A session with
    several blockers sits under each of them (`also` names the others)."""

    session: Session
    children: tuple[LockNode, ...] = ()
    also: tuple[int, ...] = ()  # its other blockers, when it has several
    depth_cut: bool = False  # a cycle (a deadlock not yet detected) stopped here

    def walk(self, depth: int = 0) -> Iterable[tuple[int, LockNode]]:
        yield depth, self
        for child in self.children:
            yield from child.walk(depth + 1)


def lock_forest(sessions: Iterable[Session]) -> list[LockNode]:
    """Who blocks whom, as trees: each root blocks others and waits on nobody (a blocker
    that is not a client backend, or gone, is still a root, by its pid). Largest trees
    first."""
    by_pid = {s.pid: s for s in sessions}
    blocks: dict[int, list[int]] = {}
    for s in by_pid.values():
        for blocker in s.blocked_by:
            blocks.setdefault(blocker, []).append(s.pid)
    if not blocks:
        return []

    def node(pid: int, parent: int | None, seen: frozenset[int]) -> LockNode:
        session = by_pid.get(pid) or _unknown(pid)
        others = tuple(b for b in session.blocked_by if b != parent)
        if pid in seen:
            return LockNode(session, (), others, depth_cut=True)
        kids = tuple(node(c, pid, seen | {pid}) for c in sorted(blocks.get(pid, ())))
        return LockNode(session, kids, others)

    blocked = {s.pid for s in by_pid.values() if s.blocked_by}
    roots = [pid for pid in blocks if pid not in blocked]
    if not roots:  # every blocker is itself blocked: a cycle; start from the oldest pid
        roots = [min(blocks)]
    trees = [node(pid, None, frozenset()) for pid in roots]
    return sorted(trees, key=lambda t: (-sum(1 for _ in t.walk()), t.session.pid))


def _unknown(pid: int) -> Session:
    return Session(pid, None, None, "", "", "(not a client backend)", None, None, None, None, None, None,
                   None, False, "")  # fmt: skip


@dataclass(frozen=True)
class Horizon:
    """What holds back the xmin horizon (VACUUM cannot remove rows newer than it): a session
    (`pid`), a replication slot or a prepared transaction; its age in transactions."""

    kind: str
    name: str
    xid_age: int
    pid: int | None = None
    seconds: float | None = None  # how long that session's transaction has been open

    def line(self) -> str:
        age = f"{self.xid_age:,} transactions behind"
        if self.pid is not None:
            held = f", transaction open {human_seconds(self.seconds)}" if self.seconds is not None else ""
            return f"xmin horizon held by pid {self.pid} ({self.name}{held}; {age})"
        return f"xmin horizon held by {self.kind} {self.name} ({age})"


def horizon_of(sessions: Iterable[Session], others: Iterable[Mapping[str, Any]] = ()) -> Horizon | None:
    """The oldest xmin among sessions (not the console's own query), replication slots and
    prepared transactions; between sessions of the same age, the longest transaction."""
    found: list[tuple[int, float, Horizon]] = []
    for s in sessions:
        if s.xmin_age is None or s.me:
            continue
        who = f"{s.user or '?'}@{s.database or '?'}, {s.state or '?'}"
        found.append((s.xmin_age, s.xact_seconds or 0.0,
                      Horizon("session", who, s.xmin_age, s.pid, s.xact_seconds)))  # fmt: skip
    for row in others:
        if row["xid_age"] is not None:
            found.append((row["xid_age"], 0.0, Horizon(row["kind"], row["name"], row["xid_age"])))
    if not found:
        return None
    return max(found, key=lambda f: (f[0], f[1]))[2]


@dataclass(frozen=True)
class Locks:
    forest: list[LockNode]
    horizon: Horizon | None
    sessions: int  # client backends looked at
    at: datetime | None = None


# -- table health -----------------------------------------------------------------------


@dataclass(frozen=True)
class TableHealth:
    schema: str
    name: str
    total_bytes: int | None  # None while the table is locked exclusively (sizing it would wait)
    heap_bytes: int | None
    index_bytes: int | None
    rows: int | None
    dead_rows: int | None
    last_vacuum: datetime | None
    last_autovacuum: datetime | None
    last_analyze: datetime | None
    last_autoanalyze: datetime | None
    bloat_bytes: int | None
    bloat_measured: bool = False  # by pgstattuple_approx; otherwise estimated from the statistics

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def dead_pct(self) -> float | None:
        if self.dead_rows is None or not (self.rows or self.dead_rows):
            return None
        return 100.0 * self.dead_rows / ((self.rows or 0) + self.dead_rows)

    @property
    def vacuumed(self) -> datetime | None:
        return _latest(self.last_vacuum, self.last_autovacuum)

    @property
    def analyzed(self) -> datetime | None:
        return _latest(self.last_analyze, self.last_autoanalyze)


def _latest(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


@dataclass(frozen=True)
class IndexHealth:
    schema: str
    table: str
    name: str
    bytes: int | None  # None while it or its table is locked exclusively
    scans: int | None
    unique: bool
    primary: bool
    valid: bool

    @property
    def unused(self) -> bool:
        """Never scanned since the statistics were reset, and enforcing no constraint."""
        return self.scans == 0 and not self.unique and not self.primary


@dataclass(frozen=True)
class Connections:
    used: int
    max_connections: int
    reserved: int
    database: str
    database_bytes: int
    version: str
    in_recovery: bool

    @property
    def available(self) -> int:
        """What ordinary logins may still open (superuser_reserved_connections kept back)."""
        return max(self.max_connections - self.reserved - self.used, 0)

    @property
    def used_pct(self) -> float:
        usable = max(self.max_connections - self.reserved, 1)
        return 100.0 * self.used / usable


@dataclass(frozen=True)
class Health:
    tables: list[TableHealth]
    indexes: list[IndexHealth]
    connections: Connections

    @property
    def unused_indexes(self) -> list[IndexHealth]:
        return [i for i in self.indexes if i.unused]

    def indexes_of(self, table: TableHealth) -> list[IndexHealth]:
        return [i for i in self.indexes if i.schema == table.schema and i.table == table.name]


# -- slow queries and replication -------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    queryid: int | None
    query: str
    user: str | None
    calls: int
    total_ms: float
    mean_ms: float
    max_ms: float
    rows: int


@dataclass(frozen=True)
class Slow:
    """pg_stat_statements' heaviest statements, or (when it cannot be read) why, how to
    enable it, and the live long-running queries instead."""

    statements: list[Statement]
    available: bool
    problem: str = ""
    how_to_enable: tuple[str, ...] = ()
    long_running: list[Session] = field(default_factory=list)


@dataclass(frozen=True)
class Replica:
    """One replica's lag: as the primary sees it (pg_stat_replication) or as the read host
    itself reports it."""

    name: str
    state: str
    lag_seconds: float | None
    behind_bytes: int | None


@dataclass(frozen=True)
class Replication:
    replicas: list[Replica]
    read_host: str | None = None  # where DB_READ_HOST points, when set
    read_host_problem: str = ""  # it cannot be read, or it is not a replica


def human_seconds(seconds: float | None) -> str:
    """'0.4 s', '12 s', '3m05s', '2h04m', '3d02h'."""
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.1f} s"
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s // 60 % 60:02d}m"
    return f"{s // 86400}d{s // 3600 % 24:02d}h"
