"""The pricing area as an operator sees it: the games with their prices and live servers,
the selected game's history, the prices `as of` a date, a price set from the keyboard
(asked, previewed, typed over ±25 %, then shown with its history row), read-only hiding
the actions, and all of it at 80x24. The row rendering is tested as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from textual.widgets._footer import FooterKey

from screens.action_modal import ActionConfirmScreen, AskScreen
from screens.live_table import LiveTable
from screens.pricing import PricingScreen
from screens.pricing_render import change_text, game_row, price_set_text, status_text, then_row
from services.pricing import (
    GamePrice,
    PriceChange,
    PriceThen,
    Pricing,
    needs_typed,
    parse_as_of,
    parse_credits,
    percent_text,
)
from tests.conftest import wait_until
from tests.helpers import make_app, text_of
from tests.test_small_terminal import on_screen, screen_text
from tests.test_trust import fetch

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def game(**kw) -> GamePrice:
    values = dict(
        game_type="rust", display_name="Rust", cost_per_hour=250, enabled=True, updated_at=NOW,
        live_servers=42, changed_at=NOW - timedelta(days=35), changed_by="dana", change="price", old_cost=220,
        recorded_cost=250, recorded_enabled=True, reason="AGIS pricing update",
    )  # fmt: skip
    return GamePrice(**{**values, **kw})


def cells(row: tuple) -> list[str]:
    return [str(c) for c in row]


# -- pure rendering ------------------------------------------------------------------------


def test_a_game_row_shows_price_sale_live_servers_credits_and_last_change():
    assert cells(game_row(game(), NOW)) == ["rust", "    250", "yes", "  42", "   10,500", "35d dana"]
    off = game_row(game(game_type="unturned", enabled=False, live_servers=4, cost_per_hour=90), NOW)
    assert cells(off)[2] == "no" and "yellow" in str(off[2].style)
    outside = game_row(game(cost_per_hour=275), NOW)  # psql changed it; the console recorded 250
    assert str(outside[5]) == "35d dana !"
    assert str(game_row(game(changed_at=None, changed_by=None, recorded_cost=None), NOW)[5]) == "—"


def test_an_as_of_row_says_what_the_price_was_and_where_that_comes_from():
    then = PriceThen("rust", "Rust", 220, True, "changed", NOW - timedelta(days=60), "dana")
    assert cells(then_row(then, game())) == ["rust", "   220", "yes", "  250", "+13.6 %", "12-31 by dana"]
    before = PriceThen("rust", "Rust", 200, True, "before first change", next_change_at=datetime(2026, 1, 2))
    assert str(price_set_text(before)) == "before 01-02"
    same = PriceThen("ark", "ARK", 300, True, "no change recorded")
    assert cells(then_row(same, game(game_type="ark", cost_per_hour=300)))[4:] == ["—", "none recorded"]


def test_the_status_line_and_a_history_line_show_database_text_inert():
    pricing = Pricing([game(), game(game_type="unturned", enabled=False, live_servers=4, cost_per_hour=90)],
                      NOW, 10_000)  # fmt: skip
    status = status_text(pricing, as_of=datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC)).plain
    assert "2 games, 1 on sale · 46 live servers · 10,860 credits/hour · ceiling 10,000" in status
    assert "AS OF 2026-01-31 23:59 UTC" in status
    change = PriceChange(7, NOW - timedelta(hours=5), "rust", "eve", "price", 250, 300, True, True,
                         "[red]promo\x1b[2J ends")  # fmt: skip
    line = change_text(change, NOW, with_game=True)
    assert line.plain == "2026-03-01 07:00 (5h) rust eve: 250 → 300 (+20.0 %) · [red]promo\\x1b[2J ends"


def test_what_counts_as_a_price_and_a_moment():
    assert parse_credits(" 1_250 ") == 1250 and parse_credits("0") == 0
    for bad in ("-1", "1.5", "1e3", "ten", "", "3000000000"):
        with pytest.raises(ValueError):
            parse_credits(bad)
    assert parse_as_of("2026-01-31") == datetime(
        2026, 1, 31, 23, 59, 59, 999999, tzinfo=UTC
    )  # as the day ended
    assert parse_as_of("2026-01-31 14:00+02:00") == datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
    assert parse_as_of("3d", NOW) == NOW - timedelta(days=3) and parse_as_of("2w", NOW) == NOW - timedelta(
        days=14
    )
    with pytest.raises(ValueError, match="is not a date"):
        parse_as_of("last tuesday")
    assert not needs_typed(250, 312) and needs_typed(250, 313) and needs_typed(250, 187)
    assert needs_typed(0, 10) and percent_text(0, 10) == "from free" and percent_text(200, 150) == "-25.0 %"


# -- the screen ----------------------------------------------------------------------------


async def price_world(dsn: str) -> None:
    """Four games, one plan each, a few live servers, one change three days ago: every figure
    hand-checkable, and no clock time on screen while the first game is selected."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            """
            INSERT INTO pricing_config (game_type, display_name, cost_per_hour, enabled) VALUES
                ('ark', 'ARK: Survival Evolved', 300, true), ('rust', 'Rust', 250, true),
                ('terraria', 'Terraria', 80, true), ('unturned', 'Unturned', 90, false);
            INSERT INTO plans (id, game, name, ram_gb, price_monthly, egg_id)
                SELECT game_type || '-8gb', game_type, '8 GB', 8, 20.00, 1 FROM pricing_config;
            INSERT INTO ptero_nodes (name, max_ram_gb) VALUES ('node-1', 256);
            INSERT INTO users (id, email) VALUES ('00000000-0000-4000-8000-000000000001', 'a@example.com');
            INSERT INTO orders (user_id, plan_id, server_name, status, node_id)
                SELECT '00000000-0000-4000-8000-000000000001', plan, 'srv', status, 1
                FROM (VALUES ('ark-8gb', 'active'), ('rust-8gb', 'active'), ('rust-8gb', 'provisioned'),
                             ('rust-8gb', 'paid'), ('rust-8gb', 'canceled'), ('unturned-8gb', 'active'))
                     AS o (plan, status);
            INSERT INTO ops.pricing_history (at, game_type, operator, change, old_cost, new_cost, old_enabled,
                                             new_enabled, reason)
                VALUES (now() - interval '3 days 1 hour', 'rust', 'dana', 'price', 220, 250, true, true,
                        'AGIS pricing update');
            """
        )
    finally:
        await conn.close()


async def _open(pilot, app) -> PricingScreen:
    await pilot.press("6")
    screen = app.screen
    assert isinstance(screen, PricingScreen)
    await wait_until(pilot, lambda: screen.view is not None)
    return screen


async def _select(pilot, screen: PricingScreen, game_type: str) -> None:
    table = screen.query_one("#games-table", LiveTable)
    table.move_cursor(row=table.get_row_index(game_type))
    await wait_until(pilot, lambda: screen.selected == game_type)


async def test_the_games_their_history_and_the_prices_as_of_a_date(seeded_runtime_db):
    app = make_app(seeded_runtime_db, role="admin")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open(pilot, app)
        games = screen.query_one("#games-table", LiveTable)
        assert len(games.shown) == 16
        assert cells(games.shown["rust"])[:3] == ["rust", "    250", "yes"]
        await _select(pilot, screen, "rust")
        detail = text_of(screen.query_one("#detail-about")) + text_of(screen.query_one("#detail-history"))
        assert "Rust (rust)" in detail and "250 credits/hour" in detail
        assert "dana: 220 → 250 (+13.6 %) · AGIS pricing update: rust 250" in detail
        assert "dana: 200 → 220 (+10.0 %)" in detail  # older, below
        status = text_of(screen.query_one("#pricing-status"))
        assert "16 games, 15 on sale" in status

        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, AskScreen))
        await pilot.press(*"40d", "enter")
        asof = screen.query_one("#asof-table", LiveTable)
        await wait_until(pilot, lambda: "rust" in asof.shown and screen.has_class("-as-of"))
        assert cells(asof.shown["rust"])[1:5] == ["   220", "yes", "  250", "+13.6 %"]
        assert cells(asof.shown["unturned"])[2] == "yes"  # on sale then, disabled 12 days ago
        assert asof.display and not games.display
        await wait_until(pilot, lambda: asof.selected_key == "rust")  # the cursor stayed on rust
        assert "AS OF" in text_of(screen.query_one("#pricing-status"))
        assert "then       220 credits/hour, on sale" in text_of(screen.query_one("#detail-about"))

        await pilot.press("n")
        await wait_until(pilot, lambda: not screen.has_class("-as-of"))
        assert games.display and "AS OF" not in text_of(screen.query_one("#pricing-status"))

        await pilot.press("h")
        history = text_of(screen.query_one("#detail-history"))
        assert "unturned dana: disabled" in history and "palworld ines: 320 → 280" in history


async def test_an_admin_sets_a_price_from_the_keyboard(seeded_db, seeded_runtime_db):
    app = make_app(seeded_runtime_db, role="admin", operator="alice")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open(pilot, app)
        await _select(pilot, screen, "rust")
        await pilot.press("M")
        await wait_until(pilot, lambda: isinstance(app.screen, AskScreen))
        assert app.screen.value == "250"  # the price now, to edit
        await pilot.press("ctrl+u", *"400", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, AskScreen) and app.screen.value == "")
        await pilot.press(*"1.0 launch", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        confirm = app.screen
        assert "from 250 to 400 credits/hour (+60.0 %)" in text_of(confirm.query_one("#summary"))
        assert confirm.typed  # over ±25 %: the game's name is typed
        await pilot.press("enter")  # y/n is not enough: nothing typed, nothing run
        assert app.screen is confirm
        await pilot.press(*"rust", "enter")
        games = screen.query_one("#games-table", LiveTable)
        await wait_until(pilot, lambda: cells(games.shown["rust"])[1] == "    400", timeout=15)
        await wait_until(pilot, lambda: "alice: 250 → 400 (+60.0 %) · 1.0 launch"
                         in text_of(screen.query_one("#detail-history")))  # fmt: skip
    assert (await fetch(seeded_db, "SELECT cost_per_hour FROM pricing_config WHERE game_type = 'rust'")) == [
        (400,)
    ]


async def test_read_only_hides_the_actions_and_keeps_the_prices(seeded_db, seeded_runtime_db):
    from dataclasses import replace

    app = make_app(seeded_runtime_db, role="admin")
    app.context = replace(app.context, read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open(pilot, app)
        await _select(pilot, screen, "rust")
        footer = screen_text(app)[-1]
        assert "a As of" in footer and "M " not in footer and "A " not in footer
        await pilot.press("M", "A")
        await pilot.pause(0.3)
        assert app.screen is screen  # nothing asked, nothing run
    assert (await fetch(seeded_db, "SELECT count(*) FROM ops.audit_log")) == [(0,)]


async def test_the_pricing_area_at_80x24(seeded_runtime_db):
    app = make_app(seeded_runtime_db, role="admin")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(pilot, app)
        await pilot.pause(0.3)
        footer = screen_text(app)[-1]
        keys = {fk.key_display for fk in screen.query(FooterKey) if f"{fk.key_display} " in footer}
        assert {"M", "A", "a", "?"} <= keys, footer
        table = screen.query_one("#games-table", LiveTable)
        detail = screen.query_one("#detail-about")
        assert on_screen(table) and on_screen(detail) and table.size.height >= 5
        lines = screen_text(app)
        header = next(line for line in lines if "price/h" in line)
        for column in ("game", "price/h", "sale", "live", "credits/h", "changed"):
            assert column in header  # every column on screen at 80 columns
        assert any(line.lstrip("│ ").startswith("7dtd") for line in lines)


async def test_figures_on_a_small_world_are_the_hand_counted_ones(empty_runtime_db, empty_db):
    await price_world(empty_db)
    app = make_app(empty_runtime_db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open(pilot, app)
        games = screen.query_one("#games-table", LiveTable)
        # rust: active, provisioned and paid are live, the canceled one is not: 3 x 250.
        assert cells(games.shown["rust"])[1:6] == ["    250", "yes", "   3", "      750", "3d dana"]
        assert cells(games.shown["unturned"])[2:5] == ["no", "   1", "       90"]
        status = text_of(screen.query_one("#pricing-status"))
        assert "4 games, 3 on sale · 5 live servers · 1,140 credits/hour · ceiling 10,000" in status
        assert "ARK: Survival Evolved (ark)" in text_of(screen.query_one("#detail-about"))  # the first game
