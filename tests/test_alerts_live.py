"""Alerts against a real Prometheus and Alertmanager (the Debian packages, started here on
127.0.0.1 with 1 s scrape and evaluation intervals) scraping the fake AGIS bot: a rule
fires and the alerts view lists it; a silence made from the console suppresses it in
Alertmanager and expiring it brings it back, both on the incident's timeline; Prometheus
stopped mid-session makes the panel stale, never the app."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys

import pytest

from console.sandbox.fake_bot import FakeBot
from screens.action_modal import ActionConfirmScreen, AskScreen
from screens.live_table import LiveTable
from services.alerts import AlertsService
from services.incident_actions import DECLARE_INCIDENT
from services.runbook import Actor, Runbook
from tests.conftest import wait_until
from tests.helpers import make_app, text_of
from tests.test_monitoring_sandbox import TEST_RULES

pytestmark = pytest.mark.skipif(
    not shutil.which("prometheus") or not shutil.which("prometheus-alertmanager"),
    reason="needs the Debian packages prometheus and prometheus-alertmanager (make test installs them)",
)


@pytest.fixture(scope="module")
def monitoring(tmp_path_factory):
    from console.sandbox.monitoring import AlertmanagerServer, PrometheusServer

    root = tmp_path_factory.mktemp("monitoring")
    rules = root / "rules.yml"
    rules.write_text(TEST_RULES)
    with FakeBot() as bot:
        host = bot.url.removeprefix("http://")
        with AlertmanagerServer(root / "am") as am:
            prometheus = PrometheusServer(
                root / "prom", rule_files=[rules], interval="1s", scrape_targets={"agis-bot": host},
                alertmanager_url=am.url,
            )  # fmt: skip
            with prometheus:
                yield bot, prometheus, am


def _app(dsn, monitoring, **kw):
    _bot, prometheus, am = monitoring
    return make_app(dsn, refresh=1, PROMETHEUS_URL=prometheus.url, ALERTMANAGER_URL=am.url, **kw)


def _row(table: LiveTable, name: str):
    return next((row for row in table.shown.values() if str(row[2]) == name), None)


async def test_a_rule_fires_and_is_silenced_and_unsilenced_from_the_console(seeded_db, monitoring):
    bot, prometheus, am = monitoring
    bot.database_connected = False
    service = AlertsService(prometheus.url, am.url, postgres=None)
    app = _app(seeded_db, monitoring)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            # An incident is open, so what follows joins its timeline.
            book = Runbook(app.services, Actor("alice", "oncall", "test-alice"))
            declared = await book.execute(
                DECLARE_INCIDENT, "Bot cannot reach its database", {"severity": "P0"}
            )
            assert declared.ok
            await pilot.press("4")
            screen = app.screen
            alerts = screen.query_one("#alerts-table", LiveTable)
            await wait_until(pilot, lambda: (r := _row(alerts, "DatabaseConnectionFailed")) is not None
                             and str(r[0]) == "firing" and r[4] == "prom", timeout=30)  # fmt: skip
            row = _row(alerts, "DatabaseConnectionFailed")
            assert str(row[1]) == "critical" and row[3] != "—"  # severity, and since when
            # Alertmanager has it too (the detail comes from its annotations once joined).
            joined = lambda: "Database connection failed" in str(_row(alerts, "DatabaseConnectionFailed")[5])  # noqa: E731
            await wait_until(pilot, joined, timeout=20)
            key = next(k for k, r in alerts.shown.items() if str(r[2]) == "DatabaseConnectionFailed")
            alerts.move_cursor(row=alerts.get_row_index(key))
            await pilot.press("Z")
            await wait_until(pilot, lambda: isinstance(app.screen, AskScreen))
            await pilot.press("ctrl+u", *"30m", "enter")
            await wait_until(pilot, lambda: isinstance(app.screen, AskScreen) and not app.screen.value)
            await pilot.press(*"database failover in progress", "enter")
            await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
            assert "/api/v2/silences" in text_of(app.screen.query_one("#calls-text"))
            await pilot.press("y")
            state = lambda: str(_row(alerts, "DatabaseConnectionFailed")[0])  # noqa: E731
            await wait_until(pilot, lambda: state() == "firing · silenced", timeout=20)
            held = next(
                a for a in await service.alertmanager_alerts() if a.name == "DatabaseConnectionFailed"
            )
            assert held.state == "suppressed" and held.silenced_by
            [silence] = [s for s in await service.silences() if s.id == held.silenced_by[0]]
            assert silence.created_by == "alice" and silence.comment == "database failover in progress"
            assert "alertname=DatabaseConnectionFailed" in silence.matchers
            # Expire it from the silences table: the alert is active again in Alertmanager.
            silences = screen.query_one("#silences-table", LiveTable)
            await wait_until(pilot, lambda: silence.id in silences.shown)
            silences.move_cursor(row=silences.get_row_index(silence.id))
            await pilot.press("U")
            await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
            await pilot.press("y")
            await wait_until(
                pilot, lambda: str(_row(alerts, "DatabaseConnectionFailed")[0]) == "firing", timeout=20
            )
            held = next(
                a for a in await service.alertmanager_alerts() if a.name == "DatabaseConnectionFailed"
            )
            assert held.state == "active" and not held.silenced_by
            # Both actions are on the incident's timeline, nobody typed them.
            incident = await app.services.incidents.get(declared.detail["incident_id"])
            texts = [e.text for e in await app.services.incidents.timeline(incident)]
            assert "silence_alert DatabaseConnectionFailed → ok" in texts
            assert f"expire_silence {silence.id} → ok" in texts
    finally:
        bot.database_connected = True


async def test_prometheus_stopped_mid_session_makes_the_panel_stale_not_the_app(seeded_db, monitoring):
    _bot, prometheus, _am = monitoring
    app = _app(seeded_db, monitoring)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        screen = app.screen
        panel = screen.query_one("#alerts-panel")
        await wait_until(
            pilot, lambda: screen._source_pollers["prometheus"].freshness().age is not None, timeout=15
        )
        prometheus.stop()
        try:
            await wait_until(pilot, lambda: panel.has_class("-failing"), timeout=20)
            assert "prometheus:" in str(panel.border_subtitle) and "cannot be reached" in str(
                panel.border_subtitle
            )
            # The rest of the screen and the app work: the runbooks' own alerts are still listed,
            # and another area opens.
            alerts = screen.query_one("#alerts-table", LiveTable)
            assert _row(alerts, "OrdersStuckInPaid") is not None
            await pilot.press("3")
            await wait_until(pilot, lambda: app.screen is not screen)
            await pilot.press("4")
        finally:
            prometheus.start()
        await wait_until(pilot, lambda: not panel.has_class("-failing"), timeout=30)


def test_alerts_json_lists_every_source(seeded_db, monitoring):
    _bot, prometheus, am = monitoring
    env = {**os.environ, "DATABASE_URL": seeded_db, "PROMETHEUS_URL": prometheus.url,
           "ALERTMANAGER_URL": am.url, "XDG_CONFIG_HOME": "/nonexistent"}  # fmt: skip
    command = [sys.executable, "-m", "console", "alerts", "--json"]
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    alerts = json.loads(run.stdout)
    assert all({"name", "state", "severity", "labels", "since", "source"} <= a.keys() for a in alerts)
    assert {a["name"] for a in alerts if a["source"] == "console"} >= {"OrdersStuckInPaid", "OrdersInError"}
    # With Prometheus gone, the other sources still print and stderr names the missing one.
    prometheus.stop()
    try:
        run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
        assert run.returncode == 0 and "prometheus: Prometheus at" in run.stderr
        assert json.loads(run.stdout)
    finally:
        prometheus.start()


async def test_prometheus_back_is_shown_within_a_poll_not_after_the_backoff(seeded_db, monitoring):
    """At the demo's intervals (panels 5 s, health 15 s), after an outage long enough for the
    alerts panel to back off, Prometheus' return shows in the panel and the header within
    one poll, not the minute of backoff it took before."""
    import time

    from tests.test_app import header_text

    _bot, prometheus, am = monitoring
    app = make_app(seeded_db, refresh=5, health=15, PROMETHEUS_URL=prometheus.url, ALERTMANAGER_URL=am.url)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        screen = app.screen
        panel = screen.query_one("#alerts-panel")
        poller = screen._source_pollers["prometheus"]
        await wait_until(pilot, lambda: poller.freshness().age is not None, timeout=15)
        prometheus.stop()
        try:
            await wait_until(pilot, lambda: panel.has_class("-failing"), timeout=20)
            await wait_until(pilot, lambda: "prom ✕" in header_text(app), timeout=20)
            await pilot.pause(8)  # the panel's poller backs off meanwhile
        finally:
            await asyncio.to_thread(prometheus.start)
        back = time.monotonic()
        await wait_until(pilot, lambda: "prom ●" in header_text(app), timeout=60)
        badge = time.monotonic() - back
        await wait_until(pilot, lambda: not panel.has_class("-failing"), timeout=60)
        fresh = time.monotonic() - back
    print(f"prometheus back: badge after {badge:.1f} s, panel after {fresh:.1f} s")
    assert badge <= 6 and fresh <= 6
