"""The incident commander's board: its tiles on the seeded world agree with plain SQL; a tile
whose source dies goes stale (then down) while the others stay fresh, on the feed and on the
screen; `board --json`; no action keys; what each tile says is inert; the served snapshot's
JSON round trip and how it ages when the data process is gone."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from console.board_app import BoardApp
from console.settings import Settings
from console.wiring import build_services
from screens.board import BoardScreen, BoardTile
from screens.board_render import state_line, tile_detail
from services.board import BoardFeed, BoardSnapshot, Body, Line, Tile, short_clock, tile_state
from services.errors import NotConfigured, Unreachable
from tests.conftest import FAKE_KEYS, wait_until
from tests.test_trust import run

TILES = ["alerts", "incidents", "orders", "nodes", "webhooks", "backups", "database", "consoles"]
STUCK = ("SELECT count(*) FROM orders WHERE status = 'paid' AND created_at < now() - interval '10 minutes'"
         " AND (pterodactyl_server_id IS NULL OR pterodactyl_server_id = '')")  # fmt: skip
NEW = "SELECT count(*) FROM orders WHERE created_at > now() - interval '24 hours'"
STUCK_15 = STUCK.replace("10 minutes", "15 minutes")
FREE = """
SELECT coalesce(sum(greatest(n.max_ram_gb - n.reserved_headroom_gb - coalesce(u.used, 0), 0)), 0)
FROM ptero_nodes n
LEFT JOIN (SELECT o.node_id, sum(p.ram_gb) AS used FROM orders o JOIN plans p ON p.id = o.plan_id
           WHERE o.status IN ('paid', 'provisioning', 'installing', 'provisioned', 'active')
           GROUP BY o.node_id) u ON u.node_id = n.id
WHERE n.enabled"""


def feed_for(dsn: str, *, interval: float = 5.0, clock=None, **settings: str) -> BoardFeed:
    services = build_services(Settings.isolated(DATABASE_URL=dsn, **settings).resolved())
    kwargs = {"clock": clock} if clock else {}
    return BoardFeed(services, environment="staging", colour="yellow", interval=interval, **kwargs)


async def figures(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return {
            "stuck": await conn.fetchval(STUCK),
            "stuck_15": await conn.fetchval(STUCK_15),
            "errors": await conn.fetchval("SELECT count(*) FROM orders WHERE status = 'error'"),
            "new": await conn.fetchval(NEW),
            "free": await conn.fetchval(FREE),
            "open_nodes": await conn.fetchval("SELECT count(*) FROM ptero_nodes WHERE enabled"),
            "max_connections": int(await conn.fetchval("SHOW max_connections")),
        }
    finally:
        await conn.close()


async def declare(dsn: str, title: str, severity: str, minutes_ago: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO ops.incidents (title, severity, declared_by, declared_at, last_update_at)"
            " VALUES ($1, $2, 'alice', now() - make_interval(mins => $3), now() - make_interval(mins => $3))",
            title, severity, minutes_ago,
        )  # fmt: skip
    finally:
        await conn.close()


async def test_the_tiles_on_the_seeded_world_agree_with_plain_sql(seeded_db, seeded_runtime_db):
    await declare(seeded_db, "Payments broken", "P0", 20)  # past its 15 min response target
    feed = feed_for(seeded_runtime_db)
    try:
        snapshot = await feed.once()
    finally:
        await feed.services.close()
    sql = await figures(seeded_db)
    assert [t.id for t in snapshot.tiles] == TILES
    states = {t.id: t.state for t in snapshot.tiles}
    # Stripe and S3 are not configured here: said so, never an error.
    assert states == {**dict.fromkeys(TILES, "ok"), "webhooks": "off", "backups": "off"}
    orders = snapshot.tile("orders").body
    assert orders.figures["stuck"] == sql["stuck"] > 0 and orders.value == str(sql["stuck"])
    assert orders.figures["errors"] == sql["errors"] and orders.figures["created_24h"] == sql["new"]
    assert orders.level == "crit"
    nodes = snapshot.tile("nodes").body
    assert nodes.figures["available_ram_gb"] == sql["free"] and nodes.value == str(sql["free"])
    assert nodes.figures["open_nodes"] == sql["open_nodes"]
    alerts = snapshot.tile("alerts").body
    names = [a["name"] for a in alerts.figures["alerts"]]
    assert ("OrdersStuckInPaid" in names) == (sql["stuck_15"] > 0)
    assert ("OrdersInError" in names) == (sql["errors"] >= 2)
    assert alerts.value == str(len(names)) and alerts.figures["by_severity"]["critical"] >= 1
    incidents = snapshot.tile("incidents").body
    assert incidents.value == "1" and incidents.level == "crit"
    shown = [line.text for line in incidents.lines]
    assert shown[0] == "1 clock missed" and "INC-1 P0 Payments broken" in shown
    assert any(text.startswith("resp MISSED 5:") for text in shown)
    database = snapshot.tile("database").body
    assert database.figures["max_connections"] == sql["max_connections"]
    assert 1 <= database.figures["connections_used"] <= sql["max_connections"]
    assert snapshot.tile("consoles").body.value == "0"
    assert all(t.age is not None and t.age < 5 for t in snapshot.tiles if t.state == "ok")


async def test_a_dead_source_goes_stale_then_down_while_the_others_stay_fresh(seeded_runtime_db, fakes):
    now = [1000.0]
    stripe = {"STRIPE_SECRET_KEY": FAKE_KEYS[1], "OPSCONSOLE_STRIPE_API_BASE": fakes.stripe.url}
    feed = feed_for(seeded_runtime_db, clock=lambda: now[0], **stripe)
    try:
        first = await feed.once()
        assert {t.id: t.state for t in first.tiles} == {**dict.fromkeys(TILES, "ok"), "backups": "off"}
        assert first.tile("webhooks").body.figures["events"] == 0
        fakes.stripe.stop()
        now[0] += 10
        # The alerts' own read of Stripe's endpoints is kept a minute: the alerts tile is not hit.
        second = await feed.once()
        webhooks = second.tile("webhooks")
        assert webhooks.state == "stale" and webhooks.age == 10 and "Stripe" in (webhooks.problem or "")
        assert webhooks.body is not None  # the last good figures stay on show, marked stale
        assert all(t.state == "ok" for t in second.tiles if t.id not in ("webhooks", "backups"))
        now[0] += 200  # past three of its (60 s) intervals
        third = await feed.once()
        assert third.tile("webhooks").state == "down"
        assert all(t.state == "ok" and t.age == 0 for t in third.tiles if t.id not in ("webhooks", "backups"))
    finally:
        await feed.services.close()


async def test_the_screen_marks_the_dead_tile_and_only_it(seeded_runtime_db, fakes):
    stripe = {"STRIPE_SECRET_KEY": FAKE_KEYS[1], "OPSCONSOLE_STRIPE_API_BASE": fakes.stripe.url}
    feed = feed_for(seeded_runtime_db, interval=1.0, **stripe)
    app = BoardApp(feed, services=feed.services)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, BoardScreen)
        tile = screen.query_one("#tile-webhooks", BoardTile)
        orders = screen.query_one("#tile-orders", BoardTile)
        await wait_until(pilot, lambda: tile.has_class("-ok") and orders.has_class("-ok"))
        # Read-only: r and q, and not one action.
        keys = {b.binding.action for b in app.active_bindings.values()}
        assert not any(action.startswith(("act", "app.act")) for action in keys)
        fakes.stripe.stop()
        await pilot.press("r")
        await wait_until(pilot, lambda: tile.has_class("-stale"))
        assert "STALE" in str(tile.border_subtitle)
        others = [w for w in screen.query(BoardTile) if w is not tile and w.id != "tile-backups"]
        assert all(w.has_class("-ok") for w in others), [w.id for w in others if not w.has_class("-ok")]
        await pilot.press("q")
    assert app.return_code == 0


def test_board_json_prints_the_tiles_once(seeded_db, seeded_runtime_db):
    shown = run(["board", "--json"], {"DATABASE_URL": seeded_runtime_db})
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert [t["id"] for t in data["tiles"]] == TILES
    stuck = asyncio.run(figures(seeded_db))["stuck"]
    orders = next(t for t in data["tiles"] if t["id"] == "orders")
    assert orders["state"] == "ok" and orders["figures"]["stuck"] == stuck and orders["value"] == str(stuck)
    webhooks = next(t for t in data["tiles"] if t["id"] == "webhooks")
    assert webhooks["state"] == "off" and "not configured" in webhooks["problem"]
    assert all(isinstance(t["age_seconds"], float) for t in data["tiles"] if t["state"] == "ok")


def test_board_json_with_no_database_still_exits_0():
    shown = run(["board", "--json"], {"DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"})
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert {t["state"] for t in data["tiles"] if t["id"] in ("orders", "nodes", "database")} == {"down"}


# -- pure parts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "error", "state"),
    [
        (None, None, "reading"),
        (3.0, None, "ok"),
        (12.0, None, "stale"),  # two 5 s intervals and a second missed
        (31.0, None, "down"),
        (None, Unreachable("refused"), "down"),
        (20.0, Unreachable("refused"), "stale"),
        (40.0, Unreachable("refused"), "down"),
        (None, NotConfigured("set STRIPE_SECRET_KEY"), "off"),
    ],
)
def test_tile_state(age, error, state):
    assert tile_state(age, error, 5.0)[0] == state


def test_clocks_fit_a_narrow_tile():
    assert short_clock("respond in 0:42:10") == "resp 0:42:10"
    assert short_clock("MISSED by 5:00") == "resp MISSED 5:00"
    assert short_clock("status update overdue by 3:00") == "update LATE 3:00"
    assert short_clock("next update in 12:30") == "update 12:30"


def _snapshot() -> BoardSnapshot:
    body = Body("3", "firing", "crit", (Line("2 crit · 1 warn", "crit"), Line("Evil\x1b[2Jname 5m", "warn")),
                {"firing": 3})  # fmt: skip
    tiles = (Tile("alerts", "Alerts", "ok", 2.0, None, body),
             Tile("webhooks", "Webhooks", "off", None, "Stripe is not configured", None))  # fmt: skip
    return BoardSnapshot("production", "red", datetime(2025, 1, 1, 3, 0, tzinfo=UTC), tiles)


def test_the_snapshot_survives_json_and_ages_when_its_feed_is_gone():
    snapshot = _snapshot()
    again = BoardSnapshot.from_json(json.loads(json.dumps(snapshot.as_json())))
    assert again == snapshot
    later = snapshot.aged(10, "the board's data process did not answer")
    assert later.tile("alerts").state == "stale" and later.tile("alerts").age == 12.0
    assert later.tile("webhooks").state == "off"
    assert snapshot.aged(70, "gone").tile("alerts").state == "down"


def test_what_a_tile_says_is_inert_and_its_border_says_its_age():
    snapshot = _snapshot()
    text = tile_detail(snapshot.tile("alerts")).plain
    assert "\x1b" not in text and "Evil\\x1b[2Jname" in text
    assert state_line(snapshot.tile("alerts")).plain == "2 s"
    assert state_line(snapshot.tile("webhooks")).plain == "not configured"
    stale = Tile("orders", "Orders", "stale", 45.0, "Postgres refused", None)
    assert state_line(stale).plain == "STALE 45 s" and "Postgres refused" in tile_detail(stale).plain


def test_an_old_incident_clock_keeps_ticking():
    from services.board import incidents_body
    from services.incidents import Incident

    declared = datetime(2025, 1, 1, 3, 0, tzinfo=UTC)
    incident = Incident(7, "Bot down", "P1", "mitigation", "alice", None, {}, "alice", declared, declared,
                        None, declared)  # fmt: skip
    body = incidents_body([incident], declared + timedelta(minutes=45))
    texts = [line.text for line in body.lines]
    assert texts == ["1 clock missed", "INC-7 P1 Bot down", "resp took 0:00", "update LATE 15:00"]
