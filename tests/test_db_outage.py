"""The AGIS manual's Database Outage runbook, walked from the command line against a real
database and the fake Kubernetes: the bot scaled to 0 (typed), the figures found, the fix,
the health verified, the bot scaled back, errors watched, every step on the open incident's
timeline; an unhealthy database stops it at step 4."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from console.cli import cli
from console.sandbox.fake_kube import FakeKube, populate
from console.settings import Settings, real_user
from console.wiring import build_services
from services.incident_actions import DECLARE_INCIDENT
from services.runbook import Actor, Runbook
from tests.conftest import as_runtime
from tests.db_sessions import Sessions, bot_dsn
from tests.test_trust import operators


@pytest.fixture
def cluster(tmp_path):
    with FakeKube() as fake:
        populate(fake)
        yield fake, str(fake.kubeconfig(tmp_path / "kubeconfig"))


def declare(dsn: str) -> int:
    async def go() -> int:
        services = build_services(Settings.isolated(DATABASE_URL=dsn).resolved())
        try:
            done = await Runbook(services, Actor("ines", "oncall", "t")).execute(
                DECLARE_INCIDENT, "Bot cannot reach the database", {"severity": "P0"}
            )
            return int(done.detail["incident_id"])
        finally:
            await services.close()

    return asyncio.run(go())


def timeline(dsn: str, incident: int) -> list[str]:
    async def go() -> list[str]:
        services = build_services(Settings.isolated(DATABASE_URL=dsn).resolved())
        try:
            found = await services.incidents.get(incident)
            return [f"{e.kind}: {e.text}" for e in await services.incidents.timeline(found)]
        finally:
            await services.close()

    return asyncio.run(go())


def walk(dsn: str, kubeconfig: str, config: str, answers: str, *extra: str):
    env = {"XDG_CONFIG_HOME": "/nonexistent", "DATABASE_URL": dsn, "KUBECONFIG": kubeconfig}
    args = ["db", "outage", "--namespace", "production", "--watch-seconds", "1", "--config", config, *extra]
    return CliRunner().invoke(cli, args, env=env, input=answers, terminal_width=200)


def test_the_outage_runbook_walks_every_step_onto_the_incidents_timeline(seeded_db, cluster, tmp_path):
    _fake, kubeconfig = cluster
    dsn = as_runtime(seeded_db)
    incident = declare(dsn)
    config = operators(tmp_path, **{real_user(): "oncall"})
    answers = "agis-bot\ny\nraised max_connections to 200\ny\ny\ny\n"
    result = walk(dsn, kubeconfig, config, answers)
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"Database outage runbook (AGIS manual) on INC-{incident}" in out
    assert "connections: " in out and "disk: database " in out and "WAL " in out
    assert "ok: SELECT COUNT(*) FROM users = " in out and "ok: no session waits on another's lock" in out
    assert "ok: over 1 s, " in out and "the runbook is done" in out
    lines = timeline(dsn, incident)
    kinds = [line.split(":")[0] for line in lines]
    assert kinds == ["declared", "action", "note", "note", "note", "action", "note"], lines
    assert lines[1].startswith("action: scale_deployment agis-bot → ok")
    assert lines[2].startswith("note: step 2, investigated: connections: ")
    assert lines[3] == "note: step 3, fixed: raised max_connections to 200"
    assert lines[4].startswith("note: step 4, verified: ok: PostgreSQL")
    assert lines[5].startswith("action: scale_deployment agis-bot → ok")
    assert lines[6].startswith("note: step 6, watched: ok: over 1 s")
    assert "step 5: scale the bot back up to 3" in out  # as many as it had


def test_an_unhealthy_database_stops_the_runbook_at_verify(seeded_db, cluster, tmp_path):
    _fake, kubeconfig = cluster
    dsn = as_runtime(seeded_db)
    incident = declare(dsn)
    config = operators(tmp_path, **{real_user(): "oncall"})
    with Sessions(seeded_db) as sessions:  # a lock tree still there: not healthy
        bot = bot_dsn(seeded_db)
        sessions.open(None, "CREATE TABLE stuck (id int)", "GRANT ALL ON stuck TO agis_bot")
        sessions.open(bot, "BEGIN", "LOCK TABLE stuck IN SHARE MODE")
        sessions.start("LOCK TABLE stuck IN EXCLUSIVE MODE", bot, "BEGIN", wait_state="Lock")
        result = walk(dsn, kubeconfig, config, "agis-bot\ny\nkilled nothing yet\n")
    assert result.exit_code == 1
    assert "FAILED: 1 lock trees" in result.output and "the database is not healthy yet" in result.output
    notes = [line for line in timeline(dsn, incident) if line.startswith("note: step 4")]
    assert notes and notes[0].startswith("note: step 4, verify FAILED")


async def test_the_outage_runbook_in_the_console(seeded_db, cluster, monkeypatch):
    """`o` in the Database area: the same six steps, each one confirmation, on the timeline."""
    from textual.widgets import Input

    import screens.db_outage as walker
    from screens.action_modal import ActionConfirmScreen, AskScreen
    from tests.conftest import wait_until
    from tests.helpers import make_app

    monkeypatch.setattr(walker, "WATCH_SECONDS", 1.0)
    _fake, kubeconfig = cluster
    dsn = as_runtime(seeded_db)
    incident = await asyncio.to_thread(declare, dsn)
    app = make_app(dsn, KUBECONFIG=kubeconfig)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("7")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "DatabaseScreen")
        await pilot.press("o")
        await wait_until(pilot, lambda: isinstance(app.screen, walker.OutageScreen))
        outage = app.screen
        await wait_until(pilot, lambda: outage.incident is not None and outage.before is not None)

        async def confirm(typed: str | None = None) -> None:
            await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen), timeout=20)
            if typed:
                await wait_until(pilot, lambda: bool(app.screen.query("#typed")))
                app.screen.query_one("#typed", Input).value = typed
                app.screen.query_one("#typed", Input).focus()
                await pilot.press("enter")
            else:
                await pilot.press("y")
            await wait_until(pilot, lambda: app.screen is outage and not outage.busy, timeout=20)

        for step in range(6):
            await pilot.press("enter")
            if step == 2:  # fix: what was done, then its note
                await wait_until(pilot, lambda: isinstance(app.screen, AskScreen))
                app.screen.query_one(Input).value = "terminated the stuck report"
                await pilot.press("enter")
            await confirm("agis-bot" if step == 0 else None)
            assert outage.marks[step] == "done", (step, outage.marks)
    kinds = [line.split(":")[0] for line in await asyncio.to_thread(timeline, dsn, incident)]
    assert kinds == ["declared", "action", "note", "note", "note", "action", "note"]
