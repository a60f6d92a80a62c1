"""DbCareService: the Database area's reads, on the primary (and the read replica when
DB_READ_HOST is set): client sessions, the lock tree and the xmin horizon, table and index
health with connections used, the slowest statements (pg_stat_statements, or why not and
the live long-running queries), replication lag. Every query is named in sql/queries/db.sql."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from services.dbcare_model import (
    Connections,
    Filters,
    Health,
    IndexHealth,
    Locks,
    Replica,
    Replication,
    Session,
    Slow,
    Statement,
    TableHealth,
    horizon_of,
    lock_forest,
    mask_sql,
    session_of,
)
from services.dbmaint import Maintenance
from services.dsn import describe_dsn
from services.errors import BackendFailed, ServiceError
from services.postgres import PostgresService

LONG_RUNNING_SECONDS = 5.0  # what the slow tab shows live when pg_stat_statements cannot be read
ENABLE_STATEMENTS = (
    "in postgresql.conf: shared_preload_libraries = 'pg_stat_statements' (then restart the server)",
    "in the database, as its owner or a superuser: CREATE EXTENSION pg_stat_statements;",
    "for other roles' statements, the console's role needs: GRANT pg_read_all_stats TO ops_runtime;",
)

MEASURED_TABLES = 20  # the largest tables get pgstattuple_approx; it reads what is not all-visible


class DbCareService:
    """Reads what the Database area shows; never changes anything (db_actions does)."""

    def __init__(self, postgres: PostgresService, *, maintenance_dsn: str | None = None):
        self.postgres = postgres
        self.maintenance_dsn = maintenance_dsn or postgres.config.dsn
        self.maintenance = Maintenance(self.maintenance_dsn)

    @property
    def has_replica(self) -> bool:
        return bool(self.postgres.config.read_dsn)

    @property
    def replica_where(self) -> str | None:
        read = self.postgres.config.read_dsn
        return describe_dsn(read) if read else None

    @property
    def maintenance_where(self) -> str:
        return describe_dsn(self.maintenance_dsn) if self.maintenance_dsn else "(not configured)"

    # -- activity and locks -------------------------------------------------------------

    async def activity(self, *, replica: bool = False, filters: Filters | None = None) -> list[Session]:
        """Every client backend on the primary (or, with `replica`, on the read host), the
        console's own query left out: the busy ones (active, idle in transaction, waiting)
        longest-running first, then the idle ones, idle longest first; filtered by `filters`."""
        rows = await self.postgres.run("db_activity", read=replica)
        sessions = [s for s in map(session_of, rows) if not s.me]
        if filters is not None:
            sessions = [s for s in sessions if filters.keep(s)]
        return sorted(sessions, key=lambda s: (s.state == "idle", -(s.duration or 0.0), s.pid))

    async def locks(self) -> Locks:
        """Who blocks whom on the primary as trees, and what holds back the xmin horizon."""
        async with self.postgres.connection() as conn:
            rows = await self.postgres.run("db_activity", conn=conn)
            others = await self.postgres.run("db_horizon_others", conn=conn)
        sessions = [session_of(r) for r in rows]
        return Locks(lock_forest(sessions), horizon_of(sessions, others), len(sessions), datetime.now(UTC))

    async def session(self, pid: int) -> Session | None:
        """One client backend of the primary, or None when there is none with that pid."""
        return next((s for s in await self.activity() if s.pid == pid), None)

    # -- table health -------------------------------------------------------------------

    async def health(self) -> Health:
        """Every table (the manual's size query, for every schema) with its rows, dead rows,
        last (auto)vacuum/analyze and estimated bloat; every index with its scans; the
        connections used against max_connections."""
        async with self.postgres.connection(read=True) as conn, conn.transaction(readonly=True):
            await self.postgres.run("db_lock_timeout", conn=conn)
            tables = await self.postgres.run("db_tables", conn=conn)
            indexes = await self.postgres.run("db_indexes", conn=conn)
            conns = await self.postgres.run("db_connections", conn=conn)
            measured = await self._measured_bloat(conn)
        return Health(
            [TableHealth(r["schema"], r["table_name"], r["total_bytes"], r["heap_bytes"], r["index_bytes"],
                         r["estimated_rows"], r["dead_rows"], r["last_vacuum"], r["last_autovacuum"],
                         r["last_analyze"], r["last_autoanalyze"],
                         measured.get((r["schema"], r["table_name"]), r["bloat_bytes"]),
                         (r["schema"], r["table_name"]) in measured) for r in tables],
            [IndexHealth(r["schema"], r["table_name"], r["index_name"], r["bytes"], r["idx_scan"],
                         r["is_unique"], r["is_primary"], r["is_valid"]) for r in indexes],
            Connections(**dict(conns)),
        )  # fmt: skip

    async def _measured_bloat(self, conn) -> dict[tuple[str, str], int]:
        """pgstattuple_approx's bloat of the largest tables, where the extension is installed
        and the role may run it (pg_stat_scan_tables); {} otherwise, or when a table is locked
        (the statistics-based estimate stays). Last in the transaction: an error ends it."""
        try:
            rows = await self.postgres.run("db_bloat_measured", conn=conn, limit=MEASURED_TABLES)
        except ServiceError:
            return {}
        return {
            (r["schema"], r["table_name"]): r["bloat_bytes"] for r in rows if r["bloat_bytes"] is not None
        }

    async def connections(self) -> Connections:
        """Connections used against max_connections on the primary, and the database's size."""
        return Connections(**dict(await self.postgres.run("db_connections", read=False)))

    # -- slow queries -------------------------------------------------------------------

    async def slow(self, limit: int = 50) -> Slow:
        """The statements that took the most time (pg_stat_statements); when it cannot be read,
        why and how to enable it, with the queries running longer than 5 s instead."""
        problem = ""
        if not await self.postgres.run("db_statements_installed", read=True):
            problem = "pg_stat_statements is not installed in this database"
        else:
            try:
                rows = await self.postgres.run("db_statements", read=True, limit=limit)
            except BackendFailed as exc:
                problem = (
                    "pg_stat_statements is installed but the server does not load it"
                    if "shared_preload_libraries" in str(exc)
                    else f"pg_stat_statements cannot be read: {exc}"
                )
            else:
                return Slow([Statement(r["queryid"], mask_sql(r["query"]), r["username"], r["calls"],
                                       r["total_ms"], r["mean_ms"], r["max_ms"], r["rows"]) for r in rows],
                            True)  # fmt: skip
        live = await self.activity(filters=Filters(state="active", min_seconds=LONG_RUNNING_SECONDS))
        return Slow([], False, problem, ENABLE_STATEMENTS, live)

    # -- replication --------------------------------------------------------------------

    async def replication(self) -> Replication:
        """The primary's replicas with their lag; and the read host's own view of its lag
        when DB_READ_HOST is set (or why it cannot tell)."""
        rows = await self.postgres.run("db_replication", read=False)
        replicas = [Replica(r["name"] or r["client"], r["state"], r["replay_lag_seconds"], r["behind_bytes"])
                    for r in rows]  # fmt: skip
        if not self.has_replica:
            return Replication(replicas)
        where = self.replica_where
        try:
            state = await asyncio.wait_for(self.postgres.run("db_replica_state", read=True), 10)
        except (ServiceError, TimeoutError) as exc:
            return Replication(replicas, where, f"the read host cannot be read: {exc}")
        if not state["in_recovery"]:
            return Replication(
                replicas, where, "the read host is not a replica (pg_is_in_recovery() is false)"
            )
        mine = Replica(f"read host {where}", "replaying", state["lag_seconds"], state["unreplayed_bytes"])
        return Replication([*replicas, mine], where)
