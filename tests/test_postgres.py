"""PostgresService: named queries, the read pool for polls, LISTEN/NOTIFY, and failures
turned into messages a person can act on."""

from __future__ import annotations

import asyncio
import socket

import asyncpg
import pytest

from services.errors import BackendFailed, NotConfigured, Unreachable
from services.overview import OverviewService
from services.postgres import OpsEvent, PostgresConfig, PostgresService, describe_dsn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_polls_read_from_the_replica_and_actions_go_to_the_primary(seeded_db, empty_db):
    # The "replica" here is another database, so we can tell which one answered.
    pg = PostgresService(PostgresConfig(dsn=empty_db, read_dsn=seeded_db))
    try:
        on_replica = await pg.run("overview_figures")  # read=True is the default for polls
        on_primary = await pg.run("overview_figures", read=False)
    finally:
        await pg.close()
    assert on_replica["stuck"] > 0
    assert on_primary["stuck"] == 0


async def test_overview_figures_match_the_runbooks_sql(seeded_db):
    conn = await asyncpg.connect(seeded_db)
    stuck = await conn.fetchval(
        "SELECT count(*) FROM orders WHERE status = 'paid' AND created_at < NOW() - INTERVAL '10 minutes'"
        " AND (pterodactyl_server_id IS NULL OR pterodactyl_server_id = '')"
    )
    errors = await conn.fetchval("SELECT count(*) FROM (SELECT id FROM orders WHERE status = 'error') e")
    await conn.close()
    pg = PostgresService(PostgresConfig(dsn=seeded_db))
    try:
        overview = await OverviewService(pg).overview()
    finally:
        await pg.close()
    assert (overview.stuck, overview.errors) == (stuck, errors)
    assert overview.nodes_total >= 6 and overview.nodes_enabled == overview.nodes_total - 1
    assert sum(c.orders for c in overview.by_status_24h) == overview.created_24h


async def test_a_refused_connection_names_the_server():
    port = free_port()
    pg = PostgresService(
        PostgresConfig(dsn=f"postgresql://ops:secret@127.0.0.1:{port}/agis", connect_timeout=2)
    )
    with pytest.raises(Unreachable) as caught:
        await pg.run("overview_figures")
    assert (
        str(caught.value)
        == f"Postgres at 127.0.0.1:{port}/agis refused the connection (is the server running?)"
    )
    assert caught.value.backend == "postgres"
    await pg.close()


async def test_a_database_without_the_schema_says_to_migrate(pg_cluster):
    pg = PostgresService(PostgresConfig(dsn=pg_cluster.dsn("postgres")))
    try:
        with pytest.raises(BackendFailed, match="opsconsole migrate"):
            await pg.run("recent_audit", limit=1)
    finally:
        await pg.close()


async def test_not_configured_is_its_own_error():
    with pytest.raises(NotConfigured, match="DATABASE_URL"):
        await PostgresService(PostgresConfig(dsn=None)).run("overview_figures")


def test_where_never_shows_the_password():
    assert describe_dsn("postgresql://agis:hunter2@db.internal:6432/agis") == "db.internal:6432/agis"


async def test_listen_delivers_notifications_and_reconnects(empty_db, pg_cluster):
    pg = PostgresService(PostgresConfig(dsn=empty_db))
    events: asyncio.Queue[OpsEvent] = asyncio.Queue()
    states: list[bool] = []
    changed = asyncio.Event()

    def on_state(state: bool) -> None:
        states.append(state)
        changed.set()

    async def until(predicate) -> None:
        async with asyncio.timeout(10):
            while not predicate():
                changed.clear()
                await changed.wait()

    task = asyncio.create_task(pg.listen(events.put_nowait, on_state=on_state, retry=0.2))
    try:
        await until(lambda: states == [True])
        await pg.notify("claims", {"target": "order-1"})
        event = await asyncio.wait_for(events.get(), 5)
        assert event == OpsEvent("claims", {"target": "order-1"})
        # Kill the listener's connection from the server side: it must come back.
        admin = await asyncpg.connect(empty_db)
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'LISTEN%'"
        )
        await admin.close()
        await until(lambda: states == [True, False, True])
        await pg.notify("audit", {"id": 7})
        assert (await asyncio.wait_for(events.get(), 5)).kind == "audit"
    finally:
        task.cancel()
        await pg.close()
