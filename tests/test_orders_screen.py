"""The orders screen as support staff use it: find the stuck orders, retry one (preview,
confirm, the fake provisioning function gives it a server), see the failure lead
somewhere, sync a panel account whose password is shown once and recorded nowhere."""

from __future__ import annotations

import asyncpg
import pytest

from console.sandbox.fake_functions import FakeFunctions
from screens.action_modal import ActionConfirmScreen, SecretScreen
from screens.live_table import LiveTable
from screens.orders import OrdersScreen
from tests.conftest import wait_until
from tests.helpers import make_app, text_of

KEY = "test-service-role-key"


@pytest.fixture
def functions(seeded_db):
    fake = FakeFunctions(seeded_db, service_key=KEY, provision_delay=0.3)
    fake.start()
    yield fake
    fake.stop()


def app_for(dsn, fake, **kw):
    return make_app(dsn, PROVISIONER_URL=fake.url, OPSCONSOLE_PROVISIONER_KEY=KEY, refresh=2, **kw)


async def _open_orders(pilot, app) -> OrdersScreen:
    await pilot.press("2")
    screen = app.screen
    assert isinstance(screen, OrdersScreen)
    await wait_until(pilot, lambda: screen.current_page is not None)
    return screen


async def _select(pilot, screen, order_id: str) -> None:
    table = screen.query_one(LiveTable)
    table.move_cursor(row=table.get_row_index(order_id))
    await wait_until(
        pilot, lambda: screen.selected == order_id and order_id in text_of(screen.query_one("#detail"))
    )


async def _stuck_with_account(dsn: str, with_account: bool = True) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return str(await conn.fetchval(
            "SELECT o.id FROM orders o WHERE o.status = 'paid'"
            " AND o.created_at < now() - interval '10 minutes'"
            " AND EXISTS (SELECT 1 FROM external_accounts x WHERE x.user_id = o.user_id) = $1"
            " ORDER BY o.created_at LIMIT 1", with_account,
        ))  # fmt: skip
    finally:
        await conn.close()


async def test_retry_a_stuck_order_from_the_screen(seeded_db, functions):
    order = await _stuck_with_account(seeded_db)
    app = app_for(seeded_db, functions, role="support")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_orders(pilot, app)
        assert screen.query_one(LiveTable).row_count >= 8
        await _select(pilot, screen, order)
        await pilot.press("R")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        calls = text_of(app.screen.query_one("#calls-text"))
        assert f"POST {functions.url}/servers-provision" in calls and order in calls
        assert KEY not in calls  # the bearer is masked
        await pilot.press("y")
        await wait_until(
            pilot,
            lambda: any("Retry provisioning: ok" in str(n.title) for n in app._notifications),
            timeout=15,
        )
        await wait_until(pilot, lambda: order not in screen.query_one(LiveTable).shown)
    conn = await asyncpg.connect(seeded_db)
    try:
        row = await conn.fetchrow(
            "SELECT status, pterodactyl_server_id FROM orders WHERE id = $1::uuid", order
        )
        audit = await conn.fetch(
            "SELECT phase, outcome FROM ops.audit_log WHERE target = $1 ORDER BY id", order
        )
    finally:
        await conn.close()
    assert row["status"] == "provisioned" and row["pterodactyl_server_id"]
    assert [(a["phase"], a["outcome"]) for a in audit] == [("intent", None), ("outcome", "ok")]
    assert functions.calls[order] == 1


async def test_a_failed_retry_says_where_to_look(seeded_db, functions):
    order = await _stuck_with_account(seeded_db, with_account=False)
    app = app_for(seeded_db, functions, role="support")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_orders(pilot, app)
        await _select(pilot, screen, order)
        await pilot.press("R")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        await pilot.press("y")
        await wait_until(
            pilot, lambda: any("External account not found" in str(n.message) for n in app._notifications)
        )
        note = next(n for n in app._notifications if "External account not found" in str(n.message))
        assert "Sync panel account" in str(note.message)
        assert "\n→ " in str(note.message) and "\\x0a" not in str(note.message)  # the hint on its own line
        # ...and the sync is offered at once, with its own preview and confirmation.
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        assert app.screen.plan.action.name == "sync_panel_account"


async def test_no_available_nodes_leads_to_node_capacity(seeded_db, functions):
    from screens.live_table import LiveTable
    from screens.nodes import NodesScreen

    order = await _stuck_with_account(seeded_db)
    functions.fail_next("no_nodes")
    app = app_for(seeded_db, functions, role="support")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_orders(pilot, app)
        await _select(pilot, screen, order)
        await pilot.press("R")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, NodesScreen), timeout=10)
        table = app.screen.query_one("#capacity-table", LiveTable)
        await wait_until(pilot, lambda: len(table.shown) == 8)
        assert "hel1-node-02" in table.shown  # the empty node is listed, unlike in the runbook's query
        assert str(table.shown["fsn1-node-03"][1]) == "disabled"


async def test_panel_sync_shows_the_password_once_and_records_it_nowhere(seeded_db, functions, caplog):
    order = await _stuck_with_account(seeded_db, with_account=False)
    app = app_for(seeded_db, functions, role="support")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_orders(pilot, app)
        await _select(pilot, screen, order)
        await pilot.press("P")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        await pilot.press("y")
        # Pushed, then composed: under load the widget may come a frame later.
        shown = lambda: isinstance(app.screen, SecretScreen) and bool(app.screen.query("#secret"))  # noqa: E731
        await wait_until(pilot, shown, timeout=10)
        password = app.screen._secret
        assert len(password) >= 12 and password in text_of(app.screen.query_one("#secret"))
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is screen)
        assert password not in text_of(screen.query_one("#detail"))
    conn = await asyncpg.connect(seeded_db)
    try:
        dump = await conn.fetchval("SELECT string_agg(a::text, ' ') FROM ops.audit_log a")
    finally:
        await conn.close()
    assert "sync_panel_account" in dump and password not in dump
    assert password not in caplog.text


async def test_read_only_hides_and_blocks_the_actions(seeded_db, functions):
    order = await _stuck_with_account(seeded_db)
    app = app_for(seeded_db, functions)
    app.context = type(app.context)(**{**app.context.__dict__, "read_only": True})
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_orders(pilot, app)
        await _select(pilot, screen, order)
        await pilot.press("R")
        await pilot.pause(0.3)
        assert app.screen is screen
        footer = [b.binding.action for b in screen.active_bindings.values()]
        assert not any(a.startswith("act(") for a in footer)
    assert functions.calls[order] == 0


async def test_the_cursor_stays_on_the_order_through_a_refresh(seeded_db, functions):
    app = app_for(seeded_db, functions)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_orders(pilot, app)
        table = screen.query_one(LiveTable)
        third = list(table.shown)[2]
        await _select(pilot, screen, third)
        conn = await asyncpg.connect(seeded_db)  # a new stuck order appears at the top
        await conn.execute(
            "INSERT INTO orders (user_id, plan_id, server_name, status, created_at)"
            " SELECT user_id, plan_id, 'brand-new', 'paid', now() - interval '3 hours' FROM orders LIMIT 1"
        )
        await conn.close()
        before = screen.current_page
        screen.action_refresh_now()
        await wait_until(pilot, lambda: screen.current_page is not before)
        assert screen.selected == third
        assert table.selected_key == third
        # the new order takes its place in the list (oldest first), not the end of it
        assert list(table.shown) == [o.id for o in screen.current_page.orders]
        assert "brand-new" in [o.server_name for o in screen.current_page.orders]


def _book(dsn, fake, operator, console, **mode):
    from console.settings import Settings
    from console.wiring import build_services
    from services.runbook import Actor, Runbook

    settings = Settings.isolated(DATABASE_URL=dsn, PROVISIONER_URL=fake.url, OPSCONSOLE_PROVISIONER_KEY=KEY)
    return Runbook(build_services(settings.resolved()), Actor(operator, "support", console, **mode))


async def test_two_consoles_retrying_the_same_order_make_one_provisioning_call(seeded_db, functions):
    import asyncio

    from services.order_actions import RETRY

    order = await _stuck_with_account(seeded_db)
    alice = _book(seeded_db, functions, "alice", "c1")
    bob = _book(seeded_db, functions, "bob", "c2")
    outcomes = await asyncio.gather(alice.execute(RETRY, order), bob.execute(RETRY, order))
    assert functions.calls[order] == 1
    assert [o.status for o in outcomes].count("ok") == 1
    loser = next(o for o in outcomes if o.status != "ok")
    assert "retrying order" in loser.message or "provision" in loser.message


async def test_dry_run_retry_changes_neither_the_database_nor_the_function(seeded_db, functions):
    from services.order_actions import RETRY

    order = await _stuck_with_account(seeded_db)
    outcome = await _book(seeded_db, functions, "alice", "c1", dry_run=True).execute(RETRY, order)
    assert outcome.status == "dry-run"
    assert functions.calls[order] == 0
    conn = await asyncpg.connect(seeded_db)
    try:
        assert await conn.fetchval("SELECT status FROM orders WHERE id = $1::uuid", order) == "paid"
    finally:
        await conn.close()


async def test_switching_views_never_leaves_an_action_aimed_at_a_hidden_order(seeded_db, functions):
    app = app_for(seeded_db, functions)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_orders(pilot, app)
        table = screen.query_one(LiveTable)
        second = list(table.shown)[1]
        await _select(pilot, screen, second)
        before = screen.current_page
        await pilot.press("e")  # the errors view does not hold that stuck order
        await wait_until(pilot, lambda: screen.current_page is not before)
        assert screen.selected == table.selected_key != second


@pytest.mark.parametrize(("kind", "error", "hint"), [
    ("no_nodes", "No available nodes", "capacity"),
    ("422", "Failed to create server: 422", "plan"),
])  # fmt: skip
async def test_each_known_provisioning_failure_leads_somewhere(seeded_db, functions, kind, error, hint):
    from services.order_actions import RETRY

    order = await _stuck_with_account(seeded_db)
    functions.fail_next(kind)
    outcome = await _book(seeded_db, functions, "alice", "c1").execute(RETRY, order)
    assert outcome.status == "failed" and error in outcome.message and outcome.hint == hint


async def test_another_consoles_running_action_shows_live(seeded_db, functions):
    order = await _stuck_with_account(seeded_db)
    app = app_for(seeded_db, functions)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_orders(pilot, app)
        claims_service = app.services.claims
        await claims_service.take("order", order, "retry_provisioning", "alice", "another-console", None)
        claims = screen.query_one("#claims")
        await wait_until(pilot, lambda: f"alice is retrying order {order[:8]}" in text_of(claims), timeout=10)
        await claims_service.release("order", order, "another-console")
        await wait_until(pilot, lambda: "alice" not in text_of(claims), timeout=10)


async def test_actions_are_in_help_and_the_palette_from_their_declaration(seeded_db, functions):
    from screens.help import help_lines

    app = app_for(seeded_db, functions)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_orders(pilot, app)
        text = help_lines(screen).plain
        assert "Retry provisioning: POST servers-provision" in text and "(role: support)" in text
        names = [name for name, _help, _cb in screen.palette_commands()]
        assert names == ["Retry provisioning (selected order)", "Sync panel account (selected order)",
                         "Cancel and refund (selected order)"]  # fmt: skip


async def test_bulk_retry_marks_several_and_reports_each(seeded_db, functions):
    from screens.confirm import ConfirmScreen

    app = app_for(seeded_db, functions, role="support")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_orders(pilot, app)
        table = screen.query_one(LiveTable)
        ids = list(table.shown)[:3]
        for order in ids:
            await _select(pilot, screen, order)
            await pilot.press("space")
        assert screen.marked == set(ids)
        assert [str(table.shown[o][0]) for o in ids] == ["●"] * 3  # the mark shows on each row
        await pilot.press("R")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert all(o in app.screen.question for o in ids)
        await pilot.press("y")
        done = "bulk retry provisioning done"
        await wait_until(pilot, lambda: any(done in str(n.message) for n in app._notifications), timeout=60)
        summary = next(str(n.message) for n in app._notifications if done in str(n.message))
    assert sum(functions.calls[o] for o in ids) == 3
    conn = await asyncpg.connect(seeded_db)
    try:
        outcomes = await conn.fetch("SELECT target FROM ops.audit_log WHERE phase = 'outcome'")
    finally:
        await conn.close()
    assert sorted(r["target"] for r in outcomes) == sorted(ids)
    assert summary.startswith("bulk retry provisioning done: ")


def test_orders_retry_on_the_command_line(seeded_db, functions):
    import asyncio
    import os
    import subprocess
    import sys

    order = asyncio.run(_stuck_with_account(seeded_db))
    env = {**os.environ, "DATABASE_URL": seeded_db, "PROVISIONER_URL": functions.url,
           "OPSCONSOLE_PROVISIONER_KEY": KEY, "XDG_CONFIG_HOME": "/nonexistent"}  # fmt: skip
    viewer = subprocess.run([sys.executable, "-m", "console", "orders", "retry", order, "--yes"],
                            capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert viewer.returncode == 1 and "needs the support role" in viewer.stdout  # unknown OS user: viewer
    assert functions.calls[order] == 0
    import tempfile

    from console.settings import real_user

    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(f'[operators]\n{real_user()} = "support"\n')
    command = [sys.executable, "-m", "console", "orders", "retry", order, "--yes", "--config", f.name]
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=90)
    os.unlink(f.name)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().splitlines()[-1].startswith("ok: provisioned: server")
    assert KEY not in run.stdout + run.stderr
    assert functions.calls[order] == 1


async def test_a_poll_that_changes_nothing_redraws_nothing(seeded_db, functions):
    app = app_for(seeded_db, functions)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_orders(pilot, app)
        table = screen.query_one(LiveTable)
        await pilot.press("e")  # orders in error: nothing in their rows ticks (the stuck view's minutes do)
        await wait_until(pilot, lambda: screen.current_view == "errors" and table.row_count > 2)
        await _select(pilot, screen, list(table.shown)[1])
        await pilot.press("space")
        drawn: list[int] = []
        render_line = table.render_line
        table.render_line = lambda y: drawn.append(y) or render_line(y)  # type: ignore[method-assign]
        await pilot.pause(0.3)
        drawn.clear()
        for _ in range(2):
            before = screen.current_page
            screen.action_refresh_now()
            await wait_until(pilot, lambda before=before: screen.current_page is not before)
        await pilot.pause(0.3)
        assert drawn == []  # no line of the table drawn again: no flicker, no work
        assert str(table.shown[screen.selected][0]) == "●" and table.cursor_row == 1


async def test_keyset_pages_forward_and_back_keep_the_list_in_order(seeded_db, functions):
    app = app_for(seeded_db, functions)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_orders(pilot, app)
        table = screen.query_one(LiveTable)
        await pilot.press("a")
        await wait_until(
            pilot, lambda: screen.current_view == "recent" and table.row_count == screen.PAGE_SIZE
        )
        first = [o.id for o in screen.current_page.orders]
        assert list(table.shown) == first
        await pilot.press("pagedown", "pagedown")
        for key in ("right_square_bracket", "right_square_bracket", "left_square_bracket"):
            before = screen.current_page
            await pilot.press(key)
            await wait_until(pilot, lambda before=before: screen.current_page is not before)
            page = [o.id for o in screen.current_page.orders]
            assert list(table.shown) == page and not set(page) & set(first)
            assert table.cursor_row == 0 and screen.selected == page[0]  # the cursor on what it shows
        before = screen.current_page
        await pilot.press("left_square_bracket")
        await wait_until(pilot, lambda: screen.current_page is not before)
        assert list(table.shown) == first
        assert "page 1" in text_of(screen.query_one("#view-line"))


async def test_the_short_id_finds_its_order_in_the_search_box(seeded_db, functions):
    order = await _stuck_with_account(seeded_db)
    app = app_for(seeded_db, functions)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_orders(pilot, app)
        await pilot.press("slash", *order[:8], "enter")
        await wait_until(pilot, lambda: screen.current_view == "search" and screen.selected == order)
        assert list(screen.query_one(LiveTable).shown) == [order]
        await wait_until(pilot, lambda: order in text_of(screen.query_one("#detail")))


async def test_dollar_keeps_the_stripe_state_in_the_order_pane(seeded_db, fakes):
    from tests.conftest import FAKE_KEYS

    order = await _stuck_with_account(seeded_db)
    app = make_app(
        seeded_db, refresh=2, STRIPE_SECRET_KEY=FAKE_KEYS[1], OPSCONSOLE_STRIPE_API_BASE=fakes.stripe.url
    )
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_orders(pilot, app)
        await _select(pilot, screen, order)
        detail = screen.query_one("#detail")
        assert "charged" not in text_of(detail)
        await pilot.press("dollar_sign")
        await wait_until(pilot, lambda: "charged" in text_of(detail))
        pane = text_of(detail)
        assert "payment     succeeded pi_" in pane and "refunded    0.00 USD" in pane
        assert "subscription active sub_" in pane
        table = screen.query_one(LiveTable)
        other = next(k for k in table.shown if k != order)
        await _select(pilot, screen, other)
        assert "charged" not in text_of(detail)  # another order: Stripe not asked about it
        await _select(pilot, screen, order)
        await wait_until(pilot, lambda: "charged" in text_of(detail))  # still there, long after the toast
    intent = pane.split("payment     succeeded ")[1].split()[0]
    assert ("GET", f"/v1/payment_intents/{intent}") in fakes.stripe.requests


def test_the_stripe_section_is_inert_and_says_when_stripe_was_asked():
    from datetime import UTC, datetime

    from screens.orders_render import StripeShown, stripe_lines
    from services.payments import PaymentState

    evil = "pi_\x1b]0;PWNED\x07[b]x[/b]"
    state = PaymentState(evil, "succeeded", 1700, 500, "usd", "sub_1", "past_due")
    lines = [line.plain for line in stripe_lines(StripeShown(datetime(2026, 12, 1, 9, 5, tzinfo=UTC), state))]
    assert lines[0].startswith("Stripe asked at ")
    assert lines[1:] == ["payment     succeeded pi_\\x1b]0;PWNED\\x07[b]x[/b]", "charged     17.00 USD",
                         "refunded    5.00 USD", "subscription past_due sub_1"]  # fmt: skip
    failed = stripe_lines(StripeShown(datetime.now(UTC), None, "Stripe at \x1b[2J refused"))
    assert failed[1].plain == "Stripe at \\x1b[2J refused"


async def test_the_page_read_ahead_shows_at_once_and_is_refreshed_right_after(
    seeded_db, functions, monkeypatch
):
    handled = []  # each page the list handler was given, in order
    handler = OrdersScreen.on_orders_screen_page_loaded

    def recorded(screen, message):
        handled.append(message.page)
        handler(screen, message)

    monkeypatch.setattr(OrdersScreen, "on_orders_screen_page_loaded", recorded)
    app = app_for(seeded_db, functions)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_orders(pilot, app)
        table = screen.query_one(LiveTable)
        await pilot.press("a")
        await wait_until(
            pilot, lambda: screen.current_view == "recent" and table.row_count == screen.PAGE_SIZE
        )
        following = ("recent", "", screen.current_page.cursor)
        await wait_until(pilot, lambda: following in screen._ahead)  # read while page 1 is shown
        ahead = screen._ahead[following][1]
        changed = ahead.orders[0].id
        conn = await asyncpg.connect(seeded_db)  # it changes after it was read ahead
        await conn.execute("UPDATE orders SET status = 'error' WHERE id = $1::uuid", changed)
        await conn.close()
        handled.clear()
        await pilot.press("right_square_bracket")
        await wait_until(pilot, lambda: str(table.shown.get(changed, ("",) * 3)[2]) == "error")
        assert handled[0] is ahead  # shown at once, as read ahead; the poll right after refreshed it
        assert list(table.shown) == [o.id for o in screen.current_page.orders]
        assert screen.selected == table.selected_key == ahead.orders[0].id


async def test_a_bulk_retry_names_each_failure_on_its_own_line(seeded_db, functions):
    from screens.confirm import ConfirmScreen

    good = await _stuck_with_account(seeded_db)
    bad = await _stuck_with_account(seeded_db, with_account=False)
    app = app_for(seeded_db, functions, role="support")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_orders(pilot, app)
        for order in (good, bad):
            await _select(pilot, screen, order)
            await pilot.press("space")
        await pilot.press("R")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        done = "bulk retry provisioning done"
        await wait_until(pilot, lambda: any(done in str(n.message) for n in app._notifications), timeout=60)
        summary = next(str(n.message) for n in app._notifications if done in str(n.message))
    assert summary.startswith(f"{done}: 1 of 2 ok\n")
    assert f"\n{bad[:8]}… failed: servers-provision failed: External account not found" in summary
