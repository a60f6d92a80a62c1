"""`opsconsole db ...` headless: the same reads as the Database area (a real pg_sleep in the
activity, a lock chain as a tree, table sizes, slow statements), and cancel / terminate /
maintenance through the runbook actions."""

from __future__ import annotations

import json

import pytest

from tests.conftest import as_runtime
from tests.db_sessions import Sessions, bot_dsn
from tests.test_trust import run


@pytest.fixture
def sessions(seeded_db):
    with Sessions(seeded_db) as made:
        yield made


def test_db_activity_locks_tables_and_slow(seeded_db, sessions):
    env = {"DATABASE_URL": as_runtime(seeded_db)}
    sleeper = sessions.start("SELECT pg_sleep(60) -- report", bot_dsn(seeded_db))

    listed = run(["db", "activity", "--json"], env)
    assert listed.exit_code == 0, listed.output
    data = json.loads(listed.output)
    mine = next(s for s in data["sessions"] if s["pid"] == sleeper)
    assert mine["user"] == "agis_bot" and mine["state"] == "active" and mine["wait"] == "Timeout: PgSleep"
    assert data["connections"]["used"] >= 2
    text = run(["db", "activity", "--state", "active", "--text", "report"], env)
    assert (
        text.exit_code == 0
        and f"{sleeper:>7} " in text.output
        and "SELECT pg_sleep(60) -- report" in text.output
    )
    assert run(["db", "activity", "--state", "sleeping"], env).exit_code == 2
    assert "DB_READ_HOST is not set" in run(["db", "activity", "--replica"], env).output

    holder = sessions.open(None, "BEGIN", "LOCK TABLE plans IN SHARE MODE")
    waiter = sessions.start("LOCK TABLE plans IN EXCLUSIVE MODE", None, "BEGIN", wait_state="Lock")
    tree = run(["db", "locks"], env)
    assert tree.exit_code == 0, tree.output
    lines = tree.output.splitlines()
    assert lines[0].startswith(f"{holder} opsconsole idle in transaction")
    assert (
        lines[1].startswith(f"  └ {waiter} opsconsole active")
        and "waits for ExclusiveLock on plans" in lines[1]
    )
    assert lines[-1].startswith("xmin horizon held by pid")

    tables = json.loads(run(["db", "tables", "--json"], env).output)
    orders = next(t for t in tables["tables"] if t["qualified"] == "public.orders")
    assert orders["total_bytes"] > 0 and tables["connections"]["max_connections"] >= 10
    assert run(["db", "tables"], env).output.startswith("database ")

    slow = run(["db", "slow", "--limit", "5"], env)
    assert slow.exit_code == 0 and slow.output.splitlines()[0].split()[:3] == ["calls", "total", "mean"]
