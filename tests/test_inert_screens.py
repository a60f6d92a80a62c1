"""Terminal output is inert: a customer's server name, an email, a pod's name and log
lines, an alert's labels may hold escape sequences; the screens show them as text
(`\\x1b`), and no ESC or BEL ever reaches what is drawn."""

from __future__ import annotations

import asyncpg
from rich.text import Text

from screens.orders import OrdersScreen, detail_text, order_row
from tests.conftest import wait_until
from tests.helpers import make_app

EVIL = "evil\x1b]0;PWNED\x07\x1b[2J"
EVIL_EMAIL = "m\x1b[31me\x9b2J@example.com"
RAW = ("\x1b", "\x07", "\x9b", "\u202e")


def drawn(app) -> str:
    """Every line of the screen as the compositor draws it for the terminal."""
    return "\n".join(
        "".join(segment.text for segment in strip) for strip in app.screen._compositor.render_strips()
    )


def assert_inert(text: str) -> None:
    for char in RAW:
        assert char not in text, f"{char!r} reaches the screen: {text!r}"


def as_text(cell) -> str:
    return cell.plain if isinstance(cell, Text) else Text.from_markup(str(cell)).plain


async def _evil_order(dsn: str) -> str:
    """A stuck order whose server name and customer email hold escape sequences."""
    conn = await asyncpg.connect(dsn)
    try:
        order_id, user_id = await conn.fetchrow(
            "SELECT id, user_id FROM orders WHERE status = 'paid'"
            " AND created_at < now() - interval '10 minutes' ORDER BY created_at LIMIT 1"
        )
        await conn.execute("UPDATE orders SET server_name = $2, error_message = $3 WHERE id = $1",
                           order_id, EVIL, "panel said \x1b[5m[b]blink[/b]\x1b[0m")  # fmt: skip
        await conn.execute("UPDATE users SET email = $2 WHERE id = $1", user_id, EVIL_EMAIL)
        return str(order_id)
    finally:
        await conn.close()


async def test_the_orders_row_and_detail_show_escape_sequences_as_text(seeded_db):
    order_id = await _evil_order(seeded_db)
    app = make_app(seeded_db)
    services = app.services
    await services.open()
    try:
        page = await services.orders.page("search", query=order_id, after=None, limit=10)
        detail = await services.orders.detail(order_id)
    finally:
        await services.close()
    (order,) = page.orders
    cells = [as_text(c) for c in order_row(order)]
    assert "evil\\x1b]0;PWNED\\x07\\x1b[2J" in cells and "m\\x1b[31me\\x9b2J@example.com" in cells
    assert_inert(" ".join(cells))
    shown = detail_text(detail, []).plain
    assert "evil\\x1b]0;PWNED\\x07\\x1b[2J" in shown and "[b]blink[/b]" in shown
    assert_inert(shown)


async def test_the_orders_screen_draws_no_escape_sequence(seeded_db):
    order_id = await _evil_order(seeded_db)
    app = make_app(seeded_db, refresh=2)
    async with app.run_test(size=(200, 40)) as pilot:
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, OrdersScreen)
        await wait_until(pilot, lambda: screen.current_page is not None)
        table = screen.query_one("#orders-table")
        await wait_until(pilot, lambda: order_id in {o.id for o in screen.current_page.orders})
        table.move_cursor(row=table.get_row_index(order_id))
        await wait_until(pilot, lambda: "customer    m\\x1b[31me" in drawn(app))
        screen_text = drawn(app)
        assert screen_text.count("evil\\x1b]0;PWNED\\x07\\x1b[2J") == 2  # the row and the detail pane
        assert "panel said \\x1b[5m[b]blink[/b]" in screen_text  # shown, not read as markup
        assert_inert(screen_text)


async def test_a_pods_name_and_its_log_lines_are_drawn_inert(seeded_db, tmp_path):
    import asyncio

    from textual.widgets import Log

    from console.sandbox.fake_kube import FakeKube, populate
    from screens.live_table import LiveTable
    from screens.nodes import PodLogScreen

    ns, evil_pod = "production", "evil\x1b]0;PWNED\x07"
    with FakeKube() as cluster:
        populate(cluster)
        pod = cluster.objects("Pod", ns)[0]
        pod["metadata"] = {**pod["metadata"], "name": evil_pod, "uid": "evil-uid"}
        cluster.apply(pod)
        app = make_app(seeded_db, KUBECONFIG=str(cluster.kubeconfig(tmp_path / "kubeconfig")))
        async with app.run_test(size=(160, 40)) as pilot:
            await pilot.press("3", "p")
            screen = app.screen
            table = screen.query_one("#pods-table", LiveTable)
            await wait_until(pilot, lambda: f"{ns}/{evil_pod}" in table.shown, timeout=30)
            await wait_until(pilot, lambda: "evil\\x1b]0;PWNED\\x07" in drawn(app))
            assert_inert(drawn(app))
            table.move_cursor(row=table.get_row_index(f"{ns}/{evil_pod}"))
            await pilot.press("l")
            await wait_until(pilot, lambda: isinstance(app.screen, PodLogScreen))
            log = app.screen.query_one(Log)
            await asyncio.to_thread(
                cluster.log, ns, evil_pod, "\tat Main\x1b[2J\x1b]0;PWNED\x07 [b]not bold[/b]"
            )
            line = "        at Main\\x1b[2J\\x1b]0;PWNED\\x07 [b]not bold[/b]"
            await wait_until(pilot, lambda: line in log.lines, timeout=30)
            await wait_until(pilot, lambda: "not bold" in drawn(app))
            assert "logs of pod production/evil\\x1b]0;PWNED\\x07" in drawn(app)
            assert_inert(drawn(app) + "".join(log.lines))


def test_an_alerts_labels_and_an_incidents_timeline_render_inert():
    from datetime import UTC, datetime

    from screens.incidents import alert_row, timeline_text
    from services.alerts import Alert
    from services.incidents import Incident, TimelineEntry

    alert = Alert("Evil\x1b[2J", "firing", "critical\x07", {"alertname": "Evil\x1b[2J", "pod": EVIL}, None,
                  "prometheus")  # fmt: skip
    cells = [as_text(c) for c in alert_row(alert)]
    assert "pod=evil\\x1b]0;PWNED\\x07\\x1b[2J" in " ".join(cells)
    assert_inert(" ".join(cells))
    at = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    incident = Incident(7, f"title {EVIL} [b]x[/b]", "P1", "detection", "alice\x07", "Evil", {"pod": EVIL},
                        "alice", at, None, None, at)  # fmt: skip
    entries = [TimelineEntry(at, "bob\x1b[31m", "note", f"the panel said {EVIL}")]
    shown = timeline_text(incident, entries).plain
    assert "title evil\\x1b]0;PWNED\\x07\\x1b[2J [b]x[/b]" in shown and "the panel said evil\\x1b]0;" in shown
    assert_inert(shown)


async def test_an_alert_naming_a_node_is_drawn_inert(seeded_db):
    conn = await asyncpg.connect(seeded_db)
    try:
        await conn.execute("UPDATE ptero_nodes SET name = $1 || id", "evil\x1b]0;PWNED\x07-")
    finally:
        await conn.close()
    app = make_app(seeded_db)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.press("4")
        await wait_until(pilot, lambda: "node evil\\x1b]0;PWNED\\x07-" in drawn(app))
        assert_inert(drawn(app))
