"""PostgresService: one asyncpg pool for the primary (actions), an optional read pool for
polls, the named queries from sql/queries, LISTEN/NOTIFY, and connection failures turned
into errors a person can act on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiosql
import asyncpg
from aiosql.types import SQLOperationType

from services.dsn import describe_dsn, dsn_problems, session_attrs
from services.errors import BackendFailed, NotConfigured, ServiceError, Unreachable
from services.health import Ping
from sql import QUERIES_DIR

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "ops_events"


@dataclass(frozen=True)
class PostgresConfig:
    """Where Postgres is. `dsn` carries the password: never print it; show `where`."""

    dsn: str | None
    read_dsn: str | None = None
    connect_timeout: float = 5.0
    command_timeout: float = 15.0
    max_size: int = 4

    @property
    def where(self) -> str:
        return describe_dsn(self.dsn) if self.dsn else "(not configured)"


@dataclass(frozen=True)
class OpsEvent:
    """One notification on ops_events: what changed, and its details."""

    kind: str
    payload: dict[str, Any]


__all__ = ["BadDsn", "PostgresConfig", "PostgresService", "describe_dsn", "explain_failure"]


class BadDsn(ServiceError):
    """The DSN (or a PG* variable it leaves a part to) is one asyncpg cannot use: a setting
    to correct, not a backend that failed."""

    invalid_setting = True


# What asyncpg raises while reading its connection arguments, before any network traffic
# (an int() of the port, an unknown sslmode, a port the socket refuses to take).
DSN_ERRORS = (asyncpg.ClientConfigurationError, ValueError, IndexError, OverflowError)


def explain_failure(
    exc: BaseException, where: str, timeout: float, *, wanted: str | None = None
) -> ServiceError:
    """The ServiceError a person can act on for a failed Postgres call; `wanted` is the
    target_session_attrs the DSN asks for, if any."""
    error = _explain(exc, where, timeout, wanted)
    error.backend = "postgres"
    return error


def _explain(exc: BaseException, where: str, timeout: float, wanted: str | None = None) -> ServiceError:
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, asyncpg.TargetServerAttributeNotMatched):
        return BackendFailed(
            f"Postgres at {where} is not {wanted or 'the kind of server asked for'}: "
            f"the DSN's target_session_attrs={wanted or '?'} refuses it"
        )
    if isinstance(exc, DSN_ERRORS):
        return BadDsn(f"Postgres at {where}: the DSN cannot be used ({exc})")
    if isinstance(exc, ConnectionRefusedError):
        return Unreachable(f"Postgres at {where} refused the connection (is the server running?)")
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return Unreachable(f"Postgres at {where} did not answer within {timeout:g} s")
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
        return Unreachable(f"Postgres at {where} cannot be reached: {reason}")
    if isinstance(exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
        return BackendFailed(f"Postgres at {where} rejected the credentials: {exc}")
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return BackendFailed(f"Postgres at {where}: {exc}")
    if isinstance(exc, asyncpg.UndefinedTableError | asyncpg.InvalidSchemaNameError):
        return BackendFailed(
            f"Postgres at {where}: {exc} (has `opsconsole migrate` been run on this database?)"
        )
    if isinstance(
        exc,
        asyncpg.ConnectionDoesNotExistError
        | asyncpg.InterfaceError
        | asyncpg.CannotConnectNowError
        | asyncpg.AdminShutdownError
        | asyncpg.PostgresConnectionError,
    ):
        return Unreachable(f"Postgres at {where}: connection lost ({exc})")
    if isinstance(exc, asyncpg.PostgresError):
        return BackendFailed(f"Postgres at {where}: {exc}")
    return BackendFailed(f"Postgres at {where}: {type(exc).__name__}: {exc}")


_queries: aiosql.queries.Queries | None = None


def named_queries() -> aiosql.queries.Queries:
    """Every named query in sql/queries, loaded once (aiosql, asyncpg flavour)."""
    global _queries
    if _queries is None:
        _queries = aiosql.from_path(QUERIES_DIR, "asyncpg")
    return _queries


def query_text(query: str, **params: Any) -> str:
    """A named query's SQL with its parameters, as action previews show it: each $n
    placeholder with the value it takes ("-- $1 = enabled: False, $2 = name: 'x'")."""
    queries = named_queries()
    text = getattr(queries, query).sql.strip()
    order = queries.driver_adapter.var_sorted.get(query) or list(params)
    bound = [f"${i} = {k}: {params[k]!r}" for i, k in enumerate(order, start=1) if k in params]
    return f"{text}\n-- " + ", ".join(bound)


class PostgresService:
    """The console's Postgres: pools are created lazily, so a server that is down at start
    costs nothing until the first call, which then fails with an Unreachable."""

    backend = "postgres"

    def __init__(self, config: PostgresConfig):
        self.config = config
        self._pool: asyncpg.Pool | None = None
        self._read_pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    @property
    def configured(self) -> bool:
        return self.config.dsn is not None

    @property
    def where(self) -> str:
        return self.config.where

    async def open(self) -> None:
        """Create the pools; connects only when first used."""
        if not self.configured:
            return
        async with self._lock:
            if self._pool is None:
                self._pool = await self._create_pool(self.config.dsn)
            if self.config.read_dsn and self._read_pool is None:
                self._read_pool = await self._create_pool(self.config.read_dsn)

    async def _create_pool(self, dsn: str | None) -> asyncpg.Pool:
        return await asyncpg.create_pool(
            dsn,
            min_size=0,
            max_size=self.config.max_size,
            timeout=self.config.connect_timeout,
            command_timeout=self.config.command_timeout,
            max_inactive_connection_lifetime=60,
            server_settings={"application_name": "opsconsole"},
        )

    async def close(self) -> None:
        for pool in (self._pool, self._read_pool):
            if pool is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pool.close(), 3)
        self._pool = self._read_pool = None

    async def _pools(self) -> tuple[asyncpg.Pool, asyncpg.Pool]:
        if not self.configured:
            raise NotConfigured(
                "Postgres is not configured (set DATABASE_URL or DB_HOST)", backend="postgres"
            )
        if self._pool is None:
            self._check_dsns()
            await self.open()
        assert self._pool is not None
        return self._pool, self._read_pool or self._pool

    def _fail(self, exc: BaseException) -> ServiceError:
        wanted = session_attrs(self.config.dsn) if self.config.dsn else None
        return explain_failure(exc, self.where, self.config.connect_timeout, wanted=wanted)

    def _check_dsns(self) -> None:
        """Raise BadDsn naming the first problem asyncpg would trip on in a DSN."""
        for dsn, which in ((self.config.dsn, ""), (self.config.read_dsn, " (read replica)")):
            problems = dsn_problems(dsn) if dsn else []
            if problems:
                where = describe_dsn(dsn) if dsn else "?"
                raise BadDsn(f"Postgres at {where}{which}: the DSN cannot be used: {problems[0]}",
                             backend="postgres")  # fmt: skip

    @contextlib.asynccontextmanager
    async def connection(self, *, read: bool = False) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection: the read replica's for polls when `read`, else the primary's.

        Raises Unreachable / BackendFailed with a message naming the server.
        """
        primary, replica = await self._pools()
        pool = replica if read else primary
        connected = False
        try:
            async with pool.acquire(timeout=self.config.connect_timeout) as conn:
                connected = True
                yield conn
        except ServiceError:
            raise
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError,
                asyncpg.InternalClientError) as exc:  # fmt: skip
            raise self._fail(exc) from exc
        except DSN_ERRORS as exc:
            if connected:  # the caller's own ValueError, not the DSN's
                raise
            raise self._fail(exc) from exc

    async def run(
        self, query: str, *, read: bool = True, conn: asyncpg.Connection | None = None, **params: Any
    ) -> Any:
        """Run the named query `query` (from sql/queries) with its :named parameters.

        Returns what its aiosql operation returns: a list of rows for a plain select, one
        row for `^`, one value for `$`, the status string for `!`. Polls pass read=True
        (the replica when there is one); actions pass read=False (always the primary).
        With `conn`, the query runs on that connection, inside whatever it has open.
        """
        queries = named_queries()
        if query not in queries.available_queries:
            raise KeyError(f"no named query {query!r} in sql/queries")
        fn = getattr(queries, query)

        async def on(connection: asyncpg.Connection) -> Any:
            try:
                if fn.operation is SQLOperationType.SELECT:
                    return [row async for row in fn(connection, **params)]
                return await fn(connection, **params)
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                raise self._fail(exc) from exc

        if conn is not None:  # the caller's connection (and transaction, or snapshot)
            return await on(conn)
        async with self.connection(read=read) as pooled:
            return await on(pooled)

    async def ping(self) -> Ping:
        """Server version and round-trip time of SELECT version(); raises ServiceError."""
        started = time.perf_counter()
        async with self.connection() as conn:
            try:
                version = await conn.fetchval("SHOW server_version")
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                raise self._fail(exc) from exc
        rtt = (time.perf_counter() - started) * 1000
        return Ping(backend=self.backend, version=f"PostgreSQL {version}", rtt_ms=rtt, where=self.where)

    async def notify(self, kind: str, payload: dict[str, Any] | None = None) -> None:
        """Tell every open console that `kind` changed."""
        async with self.connection() as conn:
            await conn.execute(
                "SELECT pg_notify($1, $2)",
                EVENTS_CHANNEL,
                json.dumps({"kind": kind, "payload": payload or {}}),
            )

    async def listen(
        self,
        on_event: Callable[[OpsEvent], None],
        *,
        on_state: Callable[[bool], None] | None = None,
        retry: float = 2.0,
    ) -> None:
        """Run forever: LISTEN on ops_events on a dedicated connection and call `on_event`
        for each notification; reconnect after `retry` s when the connection is lost.
        `on_state(True/False)` reports whether the listener is connected."""
        if not self.configured:
            return
        while True:
            conn: asyncpg.Connection | None = None
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(self.config.dsn, timeout=self.config.connect_timeout)
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(
                    EVENTS_CHANNEL, lambda _c, _pid, _ch, payload: on_event(_parse_event(payload))
                )
                if on_state:
                    on_state(True)
                # A termination listener does not fire on a silent network drop: poke it.
                while not lost.is_set():
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(lost.wait(), 10)
                    if not lost.is_set():
                        await conn.execute("SELECT 1", timeout=self.config.connect_timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("ops_events listener: %s", self._fail(exc))
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.terminate()
            if on_state:
                on_state(False)
            await asyncio.sleep(retry)


def _parse_event(payload: str) -> OpsEvent:
    try:
        data = json.loads(payload)
        return OpsEvent(kind=str(data.get("kind", "unknown")), payload=data.get("payload") or {})
    except (ValueError, AttributeError):
        return OpsEvent(kind="unknown", payload={"raw": payload})
