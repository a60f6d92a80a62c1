"""The Database area with 200 client connections (issue 12's performance note), through the
console itself (test_db_activity.py measures the service alone and a DataTable): one activity
refresh's database time (pg_stat_statements' mean for the activity query, and the round trip
from the console), the lock tree's and table health's; the redraw of the activity table from
a fresh refresh to its frame; and where the console's own queries rank among the slowest
statements. A cluster of its own (max_connections = 300). Prints medians; asserts nothing
about time."""

from __future__ import annotations

import asyncio
import statistics
import time

import asyncpg
import pytest

from console.sandbox.pgcluster import EmbeddedPostgres, make_private_tmpdir
from console.sandbox.seed import seed_business
from console.settings import Settings
from console.wiring import build_services
from screens.base import AreaScreen
from screens.database import DatabaseScreen
from services.migrations import migrate
from tests.conftest import wait_until
from tests.helpers import make_app

CLIENTS = 200
RUNS = 50


@pytest.fixture(scope="module")
def big_cluster():
    import shutil

    root = make_private_tmpdir("opsconsole-bench-db-")
    cluster = EmbeddedPostgres(root / "data")
    cluster.init()
    cluster.start()

    async def setup() -> None:
        conn = await asyncpg.connect(cluster.dsn("postgres"))
        await conn.execute("ALTER SYSTEM SET max_connections = 300")
        await conn.execute("CREATE DATABASE agis")
        await conn.close()
        conn = await asyncpg.connect(cluster.dsn("agis"))
        await migrate(conn, with_reference=True)
        await seed_business(conn)
        await conn.execute("CREATE ROLE agis_bot LOGIN")
        await conn.execute("GRANT SELECT, UPDATE ON ALL TABLES IN SCHEMA public TO agis_bot")
        await conn.close()

    try:
        asyncio.run(setup())
        cluster.stop()
        cluster.start()  # max_connections takes a restart
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


async def _clients(cluster) -> list[asyncpg.Connection]:
    """200 of the bot's sessions as a busy evening has them: most idle, some running a long
    query, some idle in a transaction, a few queued on one row's lock."""
    dsn = cluster.dsn("agis", user="agis_bot")
    conns = await asyncio.gather(*(asyncpg.connect(dsn, server_settings={"application_name": "agis-bot"})
                                   for _ in range(CLIENTS)))  # fmt: skip
    touch = "UPDATE ptero_nodes SET enabled = enabled WHERE id = (SELECT min(id) FROM ptero_nodes)"
    running = []  # the statements left running (kept, so they are not collected)
    for n, conn in enumerate(conns):
        if n < 40:
            running.append(asyncio.ensure_future(conn.execute(f"SELECT pg_sleep(600) /* report {n} */")))
        elif n < 70:
            await conn.execute("BEGIN")
            await conn.execute("SELECT count(*) FROM orders WHERE status = 'active'")
        elif n == 70:
            await conn.execute("BEGIN")
            await conn.execute(
                "UPDATE ptero_nodes SET enabled = enabled WHERE id = (SELECT min(id) FROM ptero_nodes)"
            )
        elif n < 80:
            running.append(asyncio.ensure_future(conn.execute(touch)))
    await asyncio.sleep(1.0)
    return conns


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    return f"median {statistics.median(ordered):.2f} ms, p95 {ordered[int(len(ordered) * 0.95)]:.2f} ms"


async def test_activity_with_200_client_connections(big_cluster):
    conns = await _clients(big_cluster)
    owner = await asyncpg.connect(big_cluster.dsn("agis"))
    services = build_services(Settings.isolated(DATABASE_URL=big_cluster.dsn("agis")).resolved())
    try:
        care = services.dbcare
        await owner.execute("SELECT pg_stat_statements_reset()")
        timings: dict[str, list[float]] = {"activity": [], "locks": [], "health": []}
        for _ in range(RUNS):
            for name, call in (("activity", care.activity), ("locks", care.locks), ("health", care.health)):
                started = time.perf_counter()
                await call()
                timings[name].append((time.perf_counter() - started) * 1000)
        sessions = await care.activity()
        print(f"\n{len(sessions)} client sessions listed "
              f"({sum(1 for s in sessions if s.idle_in_transaction)} idle in transaction, "
              f"{sum(1 for s in sessions if s.wait_event_type == 'Lock')} waiting on a lock); "
              f"lock trees: {len((await care.locks()).forest)}")  # fmt: skip
        for name, samples in timings.items():
            print(f"{name:8} round trip from the console: {_ms(samples)}")
        stats = await owner.fetch(
            "SELECT query, calls, mean_exec_time, total_exec_time FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "ORDER BY mean_exec_time DESC"
        )
        ours = {"FROM pg_stat_activity a": "db_activity", "WITH widths AS": "db_tables",
                "FROM pg_stat_all_indexes": "db_indexes",
                "FROM pg_replication_slots": "db_horizon_others"}  # fmt: skip
        for row in stats:
            name = next((n for marker, n in ours.items() if marker in row["query"]), None)
            if name:
                mean = row["mean_exec_time"]
                print(f"{name:18} database time per call (pg_stat_statements): mean {mean:.2f} ms "
                      f"over {row['calls']} calls")  # fmt: skip
        slowest = [
            r["query"]
            for r in stats
            if "pg_sleep" not in r["query"] and "UPDATE ptero_nodes" not in r["query"]
        ]
        rank = next((i for i, q in enumerate(slowest, 1) if "FROM pg_stat_activity a" in q), None)
        top = " ".join(slowest[0].split())[:70] if slowest else "-"
        print(f"the activity query ranks {rank} of {len(slowest)} statements by mean time "
              f"(the bot's long sleeps and lock waits left out); the slowest: {top}")  # fmt: skip
    finally:
        await services.close()
        await owner.close()

    # The redraw: a fresh refresh (200 rows, every duration changed) to its frame.
    app = make_app(big_cluster.dsn("agis"), refresh=3600)
    async with app.run_test(size=(120, 40)) as pilot:
        frames: list[float] = []
        display = app._display

        def timed_display(*args, **kwargs):
            frames.append(time.perf_counter())
            return display(*args, **kwargs)

        app._display = timed_display
        await pilot.press("7")
        await wait_until(pilot, lambda: isinstance(app.screen, DatabaseScreen))
        screen = app.screen
        await wait_until(pilot, lambda: len(screen.shown_sessions) >= CLIENTS, timeout=30)
        screen._polls["activity"].pause()
        handler, to_frame = [], []
        for _ in range(RUNS):
            fresh = await app.services.dbcare.activity()
            started = time.perf_counter()
            screen._show_activity(fresh)
            handler.append((time.perf_counter() - started) * 1000)
            posted = time.perf_counter()
            screen.post_message(AreaScreen.Polled("database.activity", await app.services.dbcare.activity()))
            await wait_until(pilot, lambda posted=posted: any(f >= posted for f in frames), timeout=10)
            to_frame.append((next(f for f in frames if f >= posted) - posted) * 1000)
        print(f"redraw, rows built and synced ({len(screen.shown_sessions)} rows): {_ms(handler)}")
        print(f"redraw, a refresh posted to its frame: {_ms(to_frame)}")
    for conn in conns:
        conn.terminate()
