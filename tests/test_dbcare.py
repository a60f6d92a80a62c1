"""The Database area's reads against a real server: client sessions (a real pg_sleep, an
idle transaction), a lock chain of three sessions as a tree with the xmin horizon's holder,
the table sizes against the AGIS manual's own query, unused indexes, the bloat estimate,
connections, and pg_stat_statements (loaded, or not installed: how to enable it)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from console.settings import Settings
from console.wiring import build_services
from services.dbcare_model import Filters
from tests.conftest import as_runtime
from tests.db_sessions import Sessions, bot_dsn


@pytest.fixture
async def care(seeded_db):
    services = build_services(Settings.isolated(DATABASE_URL=as_runtime(seeded_db)).resolved())
    yield services.dbcare
    await services.close()


@pytest.fixture
def sessions(seeded_db):
    with Sessions(seeded_db) as made:
        yield made


async def test_a_long_query_and_an_idle_transaction_are_listed_and_nothing_but_client_backends(
    care, sessions, seeded_db
):
    bot = bot_dsn(seeded_db)
    sleeper = sessions.start("SELECT pg_sleep(60) /* nightly report */", bot)
    idle = sessions.open(bot, "BEGIN", "SELECT count(*) FROM pg_class")
    sessions.wait_for(idle, "idle in transaction")

    listed = await care.activity()
    by_pid = {s.pid: s for s in listed}
    s = by_pid[sleeper]
    assert (s.user, s.state, s.wait, s.application) == ("agis_bot", "active", "Timeout: PgSleep", "agis-bot")
    assert s.query == "SELECT pg_sleep(60) /* nightly report */" and s.client.startswith("127.0.0.1:")
    assert s.query_seconds >= 0 and s.xact_seconds >= s.query_seconds - 0.01 and s.cancellable
    assert by_pid[idle].idle_in_transaction and by_pid[idle].duration == by_pid[idle].xact_seconds
    assert all(x.backend_type == "client backend" for x in listed)  # no autovacuum launcher, no walwriter
    assert not any(x.me for x in listed)  # the console's own query is not in the list

    assert [x.pid for x in await care.activity(filters=Filters(state="idle in transaction"))] == [idle]
    assert [x.pid for x in await care.activity(filters=Filters(text="nightly"))] == [sleeper]
    assert sleeper not in {x.pid for x in await care.activity(filters=Filters(min_seconds=3600))}
    assert await care.activity(filters=Filters(database="no_such_db")) == []


async def test_a_lock_chain_of_three_sessions_is_a_tree_and_the_horizon_holder_is_named(
    care, sessions, seeded_db
):
    node = "SELECT name FROM ptero_nodes ORDER BY name LIMIT 1"
    holder = sessions.open(None, "BEGIN ISOLATION LEVEL REPEATABLE READ", "SELECT count(*) FROM orders",
                           f"UPDATE ptero_nodes SET enabled = enabled WHERE name = ({node})")  # fmt: skip
    waiter = sessions.start(f"UPDATE ptero_nodes SET enabled = enabled WHERE name = ({node})", None,
                            wait_state="Lock")  # fmt: skip
    locker = sessions.start(
        "LOCK TABLE ptero_nodes IN ACCESS EXCLUSIVE MODE", None, "BEGIN", wait_state="Lock"
    )

    locks = await care.locks()
    assert len(locks.forest) == 1
    shape = [(depth, n.session.pid, n.also) for depth, n in locks.forest[0].walk()]
    # The holder blocks both; the LOCK TABLE waits for both (several blockers): it shows
    # under each, naming the other.
    assert shape == [(0, holder, ()), (1, waiter, ()), (2, locker, (holder,)), (1, locker, (waiter,))]
    nodes = {n.session.pid: n.session for _, n in locks.forest[0].walk()}
    assert nodes[holder].idle_in_transaction and "ShareLock on transactionid" in (
        nodes[waiter].waiting_for or ""
    )
    assert "AccessExclusiveLock on ptero_nodes" == nodes[locker].waiting_for
    assert set(nodes[locker].blocked_by) == {holder, waiter}
    assert locks.horizon is not None and locks.horizon.pid == holder
    assert f"xmin horizon held by pid {holder}" in locks.horizon.line()


async def test_table_sizes_are_the_manuals_query_for_every_schema(care, seeded_db):
    health = await care.health()
    conn = await asyncpg.connect(seeded_db)
    try:
        for schema in ("public", "ops"):
            # The manual's query as printed in the AGIS operations manual (its schema as a parameter).
            manual = await conn.fetch(
                "SELECT schemaname, tablename,"
                " pg_size_pretty(pg_total_relation_size(schemaname||'.'||tablename)) AS size,"
                " pg_total_relation_size(schemaname||'.'||tablename) AS bytes FROM pg_tables"
                " WHERE schemaname = $1 ORDER BY pg_total_relation_size(schemaname||'.'||tablename) DESC",
                schema,
            )
            ours = {t.name: t.total_bytes for t in health.tables if t.schema == schema}
            assert ours == {r["tablename"]: r["bytes"] for r in manual}
            # in the same order, largest first (the pretty sizes too, as the manual prints them)
            assert list(ours.values()) == [r["bytes"] for r in manual]
            pretty = {r["tablename"]: r["size"] for r in manual}
            assert all(pretty[name] for name in ours)
    finally:
        await conn.close()
    orders = next(t for t in health.tables if t.qualified == "public.orders")
    assert orders.heap_bytes + orders.index_bytes <= orders.total_bytes and orders.rows and orders.rows > 1000
    c = health.connections
    assert c.max_connections >= 10 and 1 <= c.used < c.max_connections and c.database_bytes > 0


async def test_unused_indexes_and_the_bloat_estimate(care, seeded_db):
    conn = await asyncpg.connect(seeded_db)
    try:
        await conn.execute("CREATE TABLE scratch (id int PRIMARY KEY, note text)")
        await conn.execute("CREATE INDEX scratch_note_idx ON scratch (note)")
        await conn.execute("INSERT INTO scratch SELECT g, repeat('x', 80) FROM generate_series(1, 20000) g")
        await conn.execute("ANALYZE scratch")
        await conn.execute("GRANT SELECT ON scratch TO ops_runtime")  # pg_stats shows what one may read
        fresh = next(t for t in (await care.health()).tables if t.name == "scratch")
        await conn.execute("DELETE FROM scratch WHERE id % 10 <> 0")
        await conn.execute("ANALYZE scratch")
    finally:
        await conn.close()
    health = await care.health()
    bloated = next(t for t in health.tables if t.name == "scratch")
    assert fresh.bloat_bytes is not None and fresh.bloat_bytes < 0.15 * fresh.heap_bytes
    assert bloated.bloat_bytes > 0.7 * bloated.heap_bytes  # nine rows in ten are dead space
    unused = {i.name for i in health.unused_indexes}
    assert "scratch_note_idx" in unused and "scratch_pkey" not in unused  # a constraint stays
    # Measured by pgstattuple_approx (the migrations install it where they may)...
    assert bloated.bloat_measured and fresh.bloat_measured
    conn = await asyncpg.connect(seeded_db)
    try:
        await conn.execute("DROP EXTENSION pgstattuple")
    finally:
        await conn.close()
    # ...and estimated from the statistics where it is not installed.
    estimated = next(t for t in (await care.health()).tables if t.name == "scratch")
    assert not estimated.bloat_measured and estimated.bloat_bytes > 0.7 * estimated.heap_bytes


async def test_slow_queries_from_pg_stat_statements_or_how_to_enable_it(care, sessions, seeded_db):
    conn = await asyncpg.connect(seeded_db)
    try:
        await conn.execute("SELECT pg_sleep(0.2)")
        slow = await care.slow()
        assert slow.available and not slow.problem
        top = next(s for s in slow.statements if "pg_sleep" in s.query)
        assert top.calls >= 1 and top.mean_ms >= 150 and top.total_ms >= top.mean_ms

        await conn.execute("DROP EXTENSION pg_stat_statements")
        sleeper = sessions.start("SELECT pg_sleep(60)", bot_dsn(seeded_db))
        import services.dbcare as dbcare

        old, dbcare.LONG_RUNNING_SECONDS = dbcare.LONG_RUNNING_SECONDS, 0.0
        try:
            missing = await care.slow()
        finally:
            dbcare.LONG_RUNNING_SECONDS = old
        assert (
            not missing.available
            and missing.problem == "pg_stat_statements is not installed in this database"
        )
        assert any("shared_preload_libraries" in line for line in missing.how_to_enable)
        assert sleeper in [s.pid for s in missing.long_running]
    finally:
        await conn.close()


async def test_replication_without_and_with_a_read_host_that_is_no_replica(seeded_db):
    dsn = as_runtime(seeded_db)
    services = build_services(Settings.isolated(DATABASE_URL=dsn).resolved())
    try:
        alone = await services.dbcare.replication()
        assert alone.replicas == [] and alone.read_host is None
    finally:
        await services.close()
    host = dsn.split("@")[1].split(":")[0]
    services = build_services(Settings.isolated(DATABASE_URL=dsn, DB_READ_HOST=host).resolved())
    try:
        assert services.dbcare.has_replica
        said = await services.dbcare.replication()
        assert said.read_host_problem == "the read host is not a replica (pg_is_in_recovery() is false)"
        assert isinstance(await services.dbcare.activity(replica=True), list)
    finally:
        await services.close()


async def test_a_table_locked_exclusively_is_shown_as_locked_not_waited_for(care, sessions):
    sessions.open(None, "BEGIN", "LOCK TABLE plans IN ACCESS EXCLUSIVE MODE")
    health = await asyncio.wait_for(care.health(), 5)  # it would wait behind the lock for good
    plans = next(t for t in health.tables if t.qualified == "public.plans")
    assert plans.total_bytes is None and plans.index_bytes is None and plans.rows is not None
    assert all(i.bytes is None for i in health.indexes if i.table == "plans")
    assert next(t for t in health.tables if t.qualified == "public.orders").total_bytes > 0
