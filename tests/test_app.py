"""The shell as an operator meets it: data on the first screen, area switching, help,
the command palette, the quit guard, and a Postgres that goes away and comes back."""

from __future__ import annotations

import asyncio
import shutil

import asyncpg
import pytest
from textual.command import CommandList
from textual.widgets import DataTable

from console.sandbox.pgcluster import EmbeddedPostgres, make_private_tmpdir
from screens.backends import BackendsScreen
from screens.confirm import ConfirmScreen
from screens.help import HelpScreen
from screens.overview import OverviewScreen
from screens.widgets import Panel, Tile
from services.migrations import migrate
from tests.conftest import wait_until
from tests.helpers import make_app, text_of


def tile_text(app, tile_id: str) -> str:
    return str(app.screen.query_one(f"#{tile_id}", Tile).render())


def header_text(app) -> str:
    return str(app.screen.query_one("#shell-badges").render())


async def test_overview_shows_the_seeded_business(seeded_db):
    conn = await asyncpg.connect(seeded_db)
    stuck = await conn.fetchval(
        "SELECT count(*) FROM orders WHERE status = 'paid' AND created_at < now() - interval '10 minutes'"
        " AND (pterodactyl_server_id IS NULL OR pterodactyl_server_id = '')"
    )
    errors = await conn.fetchval("SELECT count(*) FROM orders WHERE status = 'error'")
    await conn.close()
    app = make_app(seeded_db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, OverviewScreen)
        await wait_until(pilot, lambda: screen.overview is not None)
        assert tile_text(app, "tile-stuck").startswith(str(stuck))
        assert tile_text(app, "tile-errors").startswith(str(errors))
        assert stuck > 0 and errors > 0
        assert app.screen.query_one("#tile-stuck", Tile).has_class("-alert")
        # The header names the environment and the operator, and Postgres' badge is ok.
        identity = str(app.screen.query_one("#shell-identity").render())
        assert "STAGING" in identity and "alice" in identity and "oncall" in identity
        await wait_until(pilot, lambda: "pg ●" in header_text(app))
        assert "k8s ·" in header_text(app)  # not configured


async def test_the_overview_says_what_is_on_fire(seeded_db):
    """The first screen answers "is anything on fire?": firing alerts (here the runbooks'
    own conditions on the seeded business), open incidents with their clocks, hot nodes."""
    from console.settings import Settings
    from console.wiring import build_services
    from services.incident_actions import DECLARE_INCIDENT
    from services.runbook import Actor, Runbook

    services = build_services(Settings.isolated(DATABASE_URL=seeded_db).resolved())
    try:
        book = Runbook(services, Actor("ines", "oncall", "elsewhere"))
        declared = await book.execute(
            DECLARE_INCIDENT, "Orders stuck after the panel upgrade", {"severity": "P1"}
        )
        assert declared.ok
        hot = await services.nodes.capacity()
    finally:
        await services.close()
    hot_nodes = [n.name for n in hot.nodes if n.enabled and n.usage_pct >= 80]
    app = make_app(seeded_db)
    async with app.run_test(size=(120, 40)) as pilot:
        fire = app.screen.query_one("#fire")
        await wait_until(pilot, lambda: "reading…" not in text_of(fire))
        shown = text_of(fire)
        assert "OrdersStuckInPaid" in shown and "OrdersInError" in shown
        assert "INCIDENTS  1 open" in shown and "Orders stuck after the panel upgrade" in shown
        assert "respond in" in shown or "responded in" in shown
        assert "next update in 29:" in shown or "next update in 30:" in shown
        assert all(name in shown for name in hot_nodes)
        assert tile_text(app, "tile-incidents").startswith("1")
        assert int(tile_text(app, "tile-alerts").split()[0]) >= 2
        assert tile_text(app, "tile-nodes").startswith(str(len(hot_nodes)))


async def test_number_keys_switch_areas_and_hidden_screens_pause(empty_db):
    app = make_app(empty_db)
    async with app.run_test(size=(120, 40)) as pilot:
        overview = app.screen
        await wait_until(pilot, lambda: overview.overview is not None)
        await pilot.press("minus")  # "-", the key after 0
        assert isinstance(app.screen, BackendsScreen)
        assert all(p.paused for p in overview._pollers)
        table = app.screen.query_one(DataTable)
        assert table.row_count == 9
        await wait_until(pilot, lambda: "ok" in str(table.get_row("postgres")[1]))
        await pilot.press("1")
        assert app.screen is overview
        assert not any(p.paused for p in overview._pollers)


async def test_help_lists_every_key_and_closes_with_escape(empty_db):
    app = make_app(empty_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen._lines)
        for expected in ("Refresh", "Quit", "Overview", "Backends", "palette", "?"):
            assert expected in text
        await pilot.press("escape")
        assert isinstance(app.screen, OverviewScreen)


async def test_command_palette_goes_to_an_area(empty_db):
    app = make_app(empty_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"go to backends")
        await wait_until(pilot, lambda: app.screen.query_one(CommandList).option_count > 0)
        first = app.screen.query_one(CommandList).get_option_at_index(0)
        assert "Go to Backends" in str(first.prompt)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, BackendsScreen))


async def test_quit_asks_first(empty_db):
    app = make_app(empty_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert isinstance(app.screen, OverviewScreen)
        assert app.is_running
        await pilot.press("ctrl+q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await pilot.pause()
    assert app.return_code == 0


@pytest.fixture
def own_cluster():
    """A cluster of its own, so stopping it does not disturb the other tests."""
    root = make_private_tmpdir("opsconsole-outage-")
    cluster = EmbeddedPostgres(root / "data")
    cluster.init()
    cluster.start()

    async def prepare() -> None:
        conn = await asyncpg.connect(cluster.dsn("postgres"))
        try:
            await migrate(conn, with_reference=True)
        finally:
            await conn.close()

    asyncio.run(prepare())
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


async def test_postgres_going_away_degrades_the_panel_not_the_app(own_cluster):
    app = make_app(own_cluster.dsn("postgres"), refresh=0.3, health=0.3)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: screen.overview is not None)
        await wait_until(pilot, lambda: "pg ●" in header_text(app))

        await asyncio.to_thread(own_cluster.stop)
        await wait_until(pilot, lambda: "pg ✕" in header_text(app), timeout=15)
        panel = screen.query_one("#tiles-panel", Panel)
        await wait_until(pilot, lambda: panel.has_class("-failing"), timeout=15)
        assert "refused" in str(panel.border_subtitle) or "lost" in str(panel.border_subtitle)
        # The app still answers keys while Postgres is down.
        await pilot.press("minus")  # "-", the key after 0
        assert isinstance(app.screen, BackendsScreen)
        await pilot.press("1")

        await asyncio.to_thread(own_cluster.start)
        await wait_until(pilot, lambda: "pg ●" in header_text(app), timeout=30)
        await wait_until(pilot, lambda: not panel.has_class("-failing"), timeout=30)
        assert not panel.border_subtitle


async def test_a_backend_back_shows_ok_within_a_poll_of_its_panels(own_cluster):
    """With the demo's intervals (panels every 5 s, health every 15 s) and Postgres away long
    enough for every poller to back off, its return shows everywhere within seconds: the
    panels, the header badge and the backends area, not after a minute of backoff."""
    import time

    app = make_app(own_cluster.dsn("postgres"), refresh=5, health=15)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: "pg ●" in header_text(app))
        panel = screen.query_one("#tiles-panel", Panel)
        await asyncio.to_thread(own_cluster.stop)
        await wait_until(pilot, lambda: "pg ✕" in header_text(app), timeout=20)
        await wait_until(pilot, lambda: panel.has_class("-failing"), timeout=20)
        await pilot.pause(8)  # every poller backs off while it is away
        await asyncio.to_thread(own_cluster.start)
        back = time.monotonic()
        await wait_until(pilot, lambda: "pg ●" in header_text(app), timeout=20)
        badge = time.monotonic() - back
        await wait_until(pilot, lambda: not panel.has_class("-failing"), timeout=20)
        panels = time.monotonic() - back
    print(f"back after restart: badge {badge:.1f} s, panels {panels:.1f} s")
    assert badge <= 6 and panels <= 6  # one poll interval (5 s) and a ping


async def test_an_ops_event_refreshes_the_open_console_at_once(empty_db):
    app = make_app(empty_db, refresh=3600)  # no poll would come for an hour
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: screen.overview is not None)
        await wait_until(pilot, lambda: app.listener_connected)
        assert screen.overview.recent_actions == ()
        conn = await asyncpg.connect(empty_db)
        intent = await conn.fetchval(
            "INSERT INTO ops.audit_log (operator, role, action, target, phase)"
            " VALUES ('bob', 'support', 'retry_provisioning', 'order-42', 'intent') RETURNING id"
        )
        await conn.execute(
            "INSERT INTO ops.audit_log (operator, role, action, target, phase, outcome, intent_id)"
            " VALUES ('bob', 'support', 'retry_provisioning', 'order-42', 'outcome', 'ok', $1)",
            intent,
        )
        await conn.close()
        ended = lambda: [a.outcome for a in screen.overview.recent_actions] == ["ok"]  # noqa: E731
        await wait_until(pilot, ended, timeout=5)
        shown = text_of(screen.query_one("#actions-table"))
        assert "retry_provisioning order-42" in shown and "ok" in shown and "running" not in shown
