"""The Database area's actions against a real server: a long pg_sleep cancelled and another
session terminated from the command line, audited with their query (secrets masked); a query
that shrugs off the cancel, then terminated; who may not (support, read-only, a superuser's
session, a background process); VACUUM and REINDEX CONCURRENTLY with their progress, sizes
and duration; a blocking REINDEX only typed; a stopped VACUUM cancels its backend."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest

from console.settings import Settings, real_user
from console.wiring import build_services
from services.db_actions import CANCEL_QUERY, DB_MAINTENANCE, TERMINATE_SESSION
from services.runbook import Actor, Runbook
from tests.conftest import as_runtime
from tests.db_sessions import Sessions, bot_dsn
from tests.test_trust import fetch, operators, run, value

SECRET_SLEEP = "SELECT pg_sleep(60) FROM (SELECT 'x'::text AS password) u WHERE u.password <> 'hunter2'"
# Catches the cancel and sleeps again: only terminating the session ends it.
STUBBORN = (
    "DO $$ BEGIN LOOP BEGIN PERFORM pg_sleep(60); EXCEPTION WHEN query_canceled THEN NULL; END; "
    "END LOOP; END $$"
)


@pytest.fixture
def sessions(seeded_db):
    with Sessions(seeded_db) as made:
        yield made


def env_of(seeded_db: str) -> dict[str, str]:
    return {"DATABASE_URL": as_runtime(seeded_db), "OPSCONSOLE_RESTORE_DSN": seeded_db}


async def outcomes_of(dsn: str) -> list[dict]:
    """Every outcome row of the audit log, oldest first, its detail as a dict."""
    rows = await fetch(dsn, "SELECT action, target, phase, outcome, detail, error FROM ops.audit_log "
                            "WHERE phase = 'outcome' ORDER BY id")  # fmt: skip
    return [{**dict(r), "detail": json.loads(r["detail"]) if r["detail"] else {}} for r in rows]


def audit(dsn: str) -> list[dict]:
    return asyncio.run(outcomes_of(dsn))


def test_a_long_query_is_cancelled_and_another_session_terminated_from_the_command_line(
    seeded_db, sessions, tmp_path
):
    env, config = env_of(seeded_db), operators(tmp_path, **{real_user(): "oncall"})
    bot = bot_dsn(seeded_db)
    first = sessions.start(SECRET_SLEEP, bot)

    cancelled = run(["db", "cancel", str(first), "--yes", "--config", config], env)
    assert cancelled.exit_code == 0, cancelled.output
    assert f"ok: query of pid {first} cancelled: the session stays (idle)" in cancelled.output
    assert "u.password <> '***'" in cancelled.output and "hunter2" not in cancelled.output
    assert isinstance(sessions.outcome(first), asyncpg.QueryCanceledError)
    assert sessions.state(first)[0] == "idle"  # the session is still there

    second = sessions.start("SELECT pg_sleep(60)", bot, "BEGIN", "SELECT 1")
    unconfirmed = run(["db", "terminate", str(second), "--config", config], env)
    assert unconfirmed.exit_code == 2 and f"pass --confirm {second}" in unconfirmed.output
    assert "CLOSES THE SESSION, not just its query" in unconfirmed.output
    terminated = run(["db", "terminate", str(second), "--confirm", str(second), "--config", config], env)
    assert terminated.exit_code == 0, terminated.output
    assert f"ok: session {second} terminated (agis_bot@" in terminated.output
    sessions.wait_for(second, "gone")

    done = [r for r in audit(seeded_db) if r["action"] in ("cancel_query", "terminate_session")]
    assert [(r["action"], r["target"], r["outcome"]) for r in done] == [
        ("cancel_query", str(first), "ok"), ("terminate_session", str(second), "ok")]  # fmt: skip
    assert done[0]["detail"]["query"] == SECRET_SLEEP.replace("hunter2", "***")
    assert done[0]["detail"]["user"] == "agis_bot" and done[1]["detail"]["query"] == "SELECT pg_sleep(60)"
    assert "hunter2" not in value(seeded_db, "SELECT string_agg(detail::text, ' ') FROM ops.audit_log")


def test_who_may_not_cancel_and_what_is_never_cancelled(seeded_db, sessions, tmp_path):
    env = env_of(seeded_db)
    sleeper = sessions.start("SELECT pg_sleep(60)", bot_dsn(seeded_db))
    sue = operators(tmp_path, **{real_user(): "support"})
    support = run(["db", "cancel", str(sleeper), "--yes", "--config", sue], env)
    assert (
        support.exit_code == 1
        and f"Cancel query needs the oncall role; {real_user()} is support" in support.output
    )
    oncall = operators(tmp_path, **{real_user(): "oncall"})
    read_only = run(["--read-only", "db", "cancel", str(sleeper), "--yes", "--config", oncall], env)
    assert read_only.exit_code == 1 and "read-only" in read_only.output
    for words in (["db", "terminate", str(sleeper), "--confirm", str(sleeper)],
                  ["db", "vacuum", "orders", "--yes"], ["db", "reindex", "orders", "--yes"]):  # fmt: skip
        refused = run(["--read-only", *words, "--config", oncall], env)
        assert refused.exit_code == 1 and "read-only" in refused.output, words
    assert sessions.state(sleeper)[0] == "active"

    checkpointer = value(seeded_db, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
    background = run(["db", "cancel", str(checkpointer), "--yes", "--config", oncall], env)
    assert background.exit_code == 1
    assert (
        f"pid {checkpointer} is a checkpointer, not a client session: the console never signals it"
        in background.output
    )
    superuser = sessions.start("SELECT pg_sleep(60)")  # the cluster's owner
    theirs = run(["db", "terminate", str(superuser), "--confirm", str(superuser), "--config", oncall], env)
    assert (
        theirs.exit_code == 1
        and "superuser opsconsole's session: only a superuser may signal it" in theirs.output
    )
    idle = sessions.open(bot_dsn(seeded_db), "BEGIN", "SELECT 1")
    sessions.wait_for(idle, "idle in transaction")
    nothing = run(["db", "cancel", str(idle), "--yes", "--config", oncall], env)
    assert (
        nothing.exit_code == 1
        and "idle in a transaction: there is no running query to cancel" in nothing.output
    )
    assert sessions.state(superuser)[0] == "active" and sessions.state(idle)[0] == "idle in transaction"
    assert {r["outcome"] for r in audit(seeded_db)} == {"refused"}


async def test_a_query_that_shrugs_off_the_cancel_is_terminated(seeded_db, sessions):
    services = build_services(Settings.isolated(**env_of(seeded_db)).resolved())
    try:
        book = Runbook(services, Actor("ines", "oncall", "test"))
        pid = sessions.start(STUBBORN, bot_dsn(seeded_db))
        cancel = await book.execute(CANCEL_QUERY, str(pid), {"wait": 1.0})
        assert (
            cancel.status == "failed"
            and cancel.message == f"pid {pid} still runs the same query 1 s after the cancel"
        )
        assert (
            cancel.hint.startswith(f"terminate session {pid} (Q)") and cancel.detail["still_running"] is True
        )
        end = await book.execute(TERMINATE_SESSION, str(pid), {"confirm": str(pid)})
        assert end.ok, end.message
        sessions.wait_for(pid, "gone")
    finally:
        await services.close()


async def _execute(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _slow_vacuum_database(owner_dsn: str) -> None:
    """Make VACUUM in this database crawl (cost-based delay), so its progress can be watched."""
    conn = await asyncpg.connect(owner_dsn)
    try:
        name = owner_dsn.rpartition("/")[2]
        await conn.execute(f'ALTER DATABASE "{name}" SET vacuum_cost_delay = 40')
        await conn.execute(f'ALTER DATABASE "{name}" SET vacuum_cost_limit = 10')
        # Big enough that even a VACUUM finding every page clean (pruned by a reader first)
        # sleeps for seconds, and never autovacuumed before the test's own VACUUM.
        await conn.execute(
            "CREATE TABLE bulk WITH (autovacuum_enabled = off) AS "
            "SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 20000) g"
        )
        await conn.execute("DELETE FROM bulk WHERE id % 2 = 0")
    finally:
        await conn.close()


async def test_vacuum_runs_with_its_progress_sizes_and_duration_and_a_stop_cancels_its_backend(seeded_db):
    await _slow_vacuum_database(seeded_db)
    services = build_services(Settings.isolated(**env_of(seeded_db)).resolved())
    try:
        book = Runbook(services, Actor("ines", "oncall", "test"))
        lines: list[str] = []
        target = await book.locate(DB_MAINTENANCE, "bulk")  # as the screen and the CLI find it
        done = await book.execute(
            DB_MAINTENANCE, target, {"command": "vacuum analyze"}, progress=lines.append
        )
        assert done.ok, done.message
        assert done.target == "public.bulk" and done.message.startswith(
            "VACUUM (ANALYZE) public.bulk done in "
        )
        scanned = [line for line in lines if "scanning heap" in line]
        assert scanned and any(0 < (getattr(line, "fraction", None) or 0) <= 1 for line in scanned), lines
        assert {"before_bytes", "after_bytes", "seconds", "statement"} <= set(done.detail)
        assert done.detail["seconds"] > 0.5 and done.detail["before_bytes"] > 0

        lines.clear()
        await _execute(seeded_db, "UPDATE bulk SET pad = pad || 'y'")  # work for a second VACUUM
        job = asyncio.ensure_future(
            book.execute(DB_MAINTENANCE, target, {"command": "vacuum"}, progress=lines.append)
        )
        while not any("scanning heap" in line for line in lines):
            assert not job.done(), (job.result(), lines)
            await asyncio.sleep(0.05)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        conn = await asyncpg.connect(seeded_db)
        try:
            for _ in range(100):
                if not await conn.fetchval("SELECT count(*) FROM pg_stat_progress_vacuum"):
                    break
                await asyncio.sleep(0.05)
            assert await conn.fetchval("SELECT count(*) FROM pg_stat_progress_vacuum") == 0
        finally:
            await conn.close()
    finally:
        await services.close()
    outcomes = [(r["outcome"], r["detail"].get("statement")) for r in await outcomes_of(seeded_db)]
    assert outcomes[0] == ("ok", "VACUUM (ANALYZE) public.bulk") and outcomes[1][0] == "unknown"


async def test_reindex_concurrently_shows_its_progress_and_a_blocking_one_is_typed(seeded_db, sessions):
    services = build_services(Settings.isolated(**env_of(seeded_db)).resolved())
    try:
        book = Runbook(services, Actor("ines", "oncall", "test"))
        # A writer's open transaction: REINDEX CONCURRENTLY waits for it before building.
        writer = sessions.open(None, "BEGIN", "UPDATE ptero_nodes SET enabled = enabled")
        lines: list[str] = []
        job = asyncio.ensure_future(
            book.execute(
                DB_MAINTENANCE,
                "public.ptero_nodes",
                {"command": "reindex concurrently"},
                progress=lines.append,
            )
        )
        while not any("waiting for writers before build" in line for line in lines):
            assert not job.done(), (job.result(), lines)
            await asyncio.sleep(0.05)
        sessions.send(writer, "COMMIT")
        done = await job
        assert done.ok and done.detail["statement"] == "REINDEX TABLE CONCURRENTLY public.ptero_nodes", (
            done.message
        )

        plan = await book.plan(DB_MAINTENANCE, "public.ptero_nodes_pkey", {"command": "reindex"})
        assert plan.confirmation.value == "typed" and plan.typed_word == "public.ptero_nodes_pkey"
        assert any("locks writes out" in w for w in plan.preview.warnings)
        refused = await book.run(plan, confirmed="ptero_nodes_pkey")
        assert (
            refused.status == "refused"
            and "type the relation name public.ptero_nodes_pkey to confirm" in refused.message
        )
        blocking = await book.run(plan, confirmed="public.ptero_nodes_pkey")
        assert blocking.ok and blocking.detail["statement"] == "REINDEX INDEX public.ptero_nodes_pkey"
    finally:
        await services.close()


def test_maintenance_as_a_login_that_owns_nothing_is_refused_in_one_line(seeded_db, tmp_path):
    env = {"DATABASE_URL": as_runtime(seeded_db)}  # no maintenance login: the runtime role owns nothing
    oncall = operators(tmp_path, **{real_user(): "oncall"})
    result = run(["db", "vacuum", "orders", "--yes", "--config", oncall], env)
    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert "the maintenance login ops_console may not vacuum analyze table public.orders" in said
    assert "(its owner is opsconsole" in said
    assert "OPSCONSOLE_RESTORE_DSN" in result.output
