"""Database maintenance as the AGIS manual schedules it (VACUUM ANALYZE weekly, REINDEX
monthly), run as the maintenance login (the runtime role owns no table): what a target name
is (a table, an index or the database), the exact statement, and running it on a connection
of its own while a second one reads its progress (pg_stat_progress_vacuum / _analyze /
_create_index). Cancelled (the operator stops it, the console closes), it cancels its backend.

Utility commands take no parameters, so these statements are the one place SQL is put
together: only from the server's own quoting of a name read from the catalog
(format('%I.%I') in db_relation / db_database), never from what the operator typed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from services.dsn import describe_dsn
from services.errors import BackendFailed
from services.postgres import explain_failure, named_queries
from services.text import human_bytes

# command -> (statement for a table or index, for the database, the progress view it feeds)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "vacuum analyze": ("VACUUM (ANALYZE) {name}", "VACUUM (ANALYZE)", "vacuum"),
    "vacuum": ("VACUUM {name}", "VACUUM", "vacuum"),
    "analyze": ("ANALYZE {name}", "ANALYZE", "analyze"),
    "reindex concurrently": (
        "REINDEX {kind} CONCURRENTLY {name}",
        "REINDEX DATABASE CONCURRENTLY {name}",
        "index",
    ),
    "reindex": ("REINDEX {kind} {name}", "REINDEX DATABASE {name}", "index"),
}
BLOCKING = ("reindex",)  # locks writers out (and readers of the index) until it ends
PROGRESS_EVERY = 0.5  # seconds between two reads of the progress view
CONNECT_TIMEOUT = 10.0
RELKINDS = {"r": "table", "p": "table", "m": "table", "i": "index", "I": "index"}


def parse_command(value: str) -> str:
    """One of COMMANDS ('vacuum analyze', 'analyze', 'reindex concurrently', ...)."""
    command = " ".join(value.lower().replace("_", " ").replace("-", " ").split())
    if command not in COMMANDS:
        raise ValueError(f"choose one of {', '.join(COMMANDS)}")
    return command


class Progressed(str):
    """A progress line that also says how far along it is (0..1, None when unknown)."""

    fraction: float | None = None


def progressed(text: str, fraction: float | None = None) -> Progressed:
    line = Progressed(text)
    line.fraction = fraction
    return line


@dataclass(frozen=True)
class Target:
    """What a maintenance command acts on, as the maintenance login sees it."""

    kind: str  # table | index | database
    name: str  # schema.name, or the database's name
    quoted: str  # as the server quoted it
    oid: int | None
    bytes: int
    may: bool  # the login owns it, is a superuser, or has pg_maintain
    owner: str
    login: str

    def statement(self, command: str) -> str:
        """The exact statement `command` runs on this target."""
        one, whole, _view = COMMANDS[command]
        if self.kind == "database":
            return whole.format(name=self.quoted)
        return one.format(kind=self.kind.upper(), name=self.quoted)

    def refusal(self, command: str) -> str | None:
        """Why `command` cannot run on this target as this login, or None."""
        if self.kind == "index" and not command.startswith("reindex"):
            return (
                f"{command.upper()} takes a table or the database, not an index: reindex {self.name} instead"
            )
        if not self.may:
            return (
                f"the maintenance login {self.login} may not {command} {self.kind} {self.name} (its owner is "
                f"{self.owner}; a superuser or, from PostgreSQL 16, pg_maintain may too): set "
                "OPSCONSOLE_RESTORE_DSN to such a login"
            )
        return None


@dataclass(frozen=True)
class Done:
    statement: str
    before_bytes: int
    after_bytes: int | None
    seconds: float
    pid: int
    warnings: tuple[str, ...] = ()

    def line(self) -> str:
        after = "gone" if self.after_bytes is None else human_bytes(self.after_bytes)
        return f"{human_bytes(self.before_bytes)} → {after}"


class Maintenance:
    """Maintenance commands on the database of `dsn` (the maintenance login)."""

    def __init__(self, dsn: str | None):
        self.dsn = dsn

    @property
    def where(self) -> str:
        return describe_dsn(self.dsn) if self.dsn else "(not configured)"

    async def _connect(self, application: str) -> asyncpg.Connection:
        if not self.dsn:
            raise BackendFailed("no maintenance login: set OPSCONSOLE_RESTORE_DSN (or DATABASE_URL)")
        try:
            return await asyncpg.connect(
                self.dsn, timeout=CONNECT_TIMEOUT, server_settings={"application_name": application}
            )
        except Exception as exc:
            raise explain_failure(exc, self.where, CONNECT_TIMEOUT) from exc

    async def target(self, name: str) -> Target | None:
        """The table or index `name` names (search_path applies), else the database when
        `name` is its name; None when it is neither."""
        conn = await self._connect("opsconsole")
        try:
            q = named_queries()
            row = await q.db_relation(conn, name=name)
            if row is not None:
                return Target(RELKINDS.get(row["kind"], "table"), f"{row['schema']}.{row['name']}",
                              row["quoted"], row["oid"], row["bytes"], row["may_maintain"], row["owner"],
                              await conn.fetchval("SELECT current_user"))  # fmt: skip
            db = await q.db_database(conn)
            if name == db["name"]:
                return Target("database", db["name"], db["quoted"], None, db["bytes"], db["may_maintain"],
                              db["owner"], db["login"])  # fmt: skip
            return None
        except asyncpg.PostgresError as exc:
            raise explain_failure(exc, self.where, CONNECT_TIMEOUT) from exc
        finally:
            await conn.close()

    async def run(self, command: str, target: Target, say: Callable[[str], None]) -> Done:
        """Run `command` on `target`, saying its progress about twice a second; the sizes
        before and after and how long it took. Cancelled, it cancels its backend first.
        Raises BackendFailed with the server's words when the statement fails."""
        statement = target.statement(command)
        view = COMMANDS[command][2]
        work = await self._connect("opsconsole maintenance")
        watch = await self._connect("opsconsole maintenance watch")
        warnings: list[str] = []
        work.add_log_listener(lambda _c, message: warnings.append(str(message)))
        pid = work.get_server_pid()
        started = time.perf_counter()
        try:
            before = await self._size(watch, target)
            say(progressed(f"{statement}: started (backend {pid})", 0.0))
            job = asyncio.ensure_future(work.execute(statement, timeout=None))
            try:
                while not job.done():
                    await asyncio.wait({job}, timeout=PROGRESS_EVERY)
                    if not job.done():
                        say(await self._progress(watch, view, pid, statement, time.perf_counter() - started))
                await job
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await asyncio.shield(watch.fetchval("SELECT pg_cancel_backend($1)", pid))
                job.cancel()
                raise
            except asyncpg.PostgresError as exc:
                raise BackendFailed(f"{statement} failed: {exc}", backend="postgres") from exc
            after = await self._size(watch, target)
        finally:
            for conn in (work, watch):
                with contextlib.suppress(Exception):
                    await asyncio.shield(asyncio.wait_for(conn.close(), 5))
                if not conn.is_closed():
                    conn.terminate()
        skipped = tuple(w for w in warnings if "skipping" in w.lower())
        return Done(statement, before, after, time.perf_counter() - started, pid, skipped)

    @staticmethod
    async def _size(conn: asyncpg.Connection, target: Target) -> int | None:
        q = named_queries()
        if target.kind == "database":
            return await q.db_database_bytes(conn)
        return await q.db_relation_bytes(conn, oid=target.oid)

    @staticmethod
    async def _progress(conn, view: str, pid: int, statement: str, seconds: float) -> Progressed:
        q = named_queries()
        try:
            row = await getattr(q, f"db_{view}_progress")(conn, pid=pid)
        except asyncpg.PostgresError:
            row = None
        took = f"{seconds:.0f} s"
        if row is None:
            return progressed(f"{statement}: running, {took}")
        return progress_line(view, dict(row), statement, took)


def progress_line(view: str, row: dict, statement: str, took: str) -> Progressed:
    """A progress view's row as one line and a fraction (None when the phase has no count)."""
    what = row.get("relation") or statement
    phase = row.get("phase") or "running"
    done = total = None
    if view == "vacuum":
        total = row.get("heap_blks_total")
        done = {"scanning heap": row.get("heap_blks_scanned"),
                "vacuuming heap": row.get("heap_blks_vacuumed")}.get(phase)  # fmt: skip
        unit = "blocks"
    elif view == "analyze":
        total, done, unit = row.get("sample_blks_total"), row.get("sample_blks_scanned"), "blocks"
        if phase != "acquiring sample rows":
            done = None
    else:
        if row.get("blocks_total"):
            total, done, unit = row.get("blocks_total"), row.get("blocks_done"), "blocks"
        else:
            total, done, unit = row.get("tuples_total"), row.get("tuples_done"), "tuples"
        if row.get("partitions_total"):
            phase += f", partition {row.get('partitions_done', 0) + 1} of {row['partitions_total']}"
    if done is not None and total:
        fraction = min(done / total, 1.0)
        return progressed(f"{what}: {phase} {done:,}/{total:,} {unit} ({fraction:.0%}), {took}", fraction)
    return progressed(f"{what}: {phase}, {took}")
