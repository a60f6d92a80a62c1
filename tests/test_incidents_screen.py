"""The incidents area as a commander uses it: the runbooks' own alert conditions listed,
an incident declared from one, a note, the timeline, the post-mortem written to a file,
and another console's incident appearing at once (NOTIFY, not the poll)."""

from __future__ import annotations

from screens.action_modal import ActionConfirmScreen, AskScreen, ChooseScreen
from screens.live_table import LiveTable
from services.incident_actions import DECLARE_INCIDENT
from services.runbook import Actor, Runbook
from tests.conftest import wait_until
from tests.helpers import make_app, text_of


async def _open(pilot, app):
    await pilot.press("4")
    screen = app.screen
    alerts = screen.query_one("#alerts-table", LiveTable)
    await wait_until(pilot, lambda: len(alerts.shown) >= 3)
    return screen, alerts


async def test_declare_from_an_alert_note_and_export(seeded_db, tmp_path):
    app = make_app(seeded_db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, alerts = await _open(pilot, app)
        names = [str(row[2]) for row in alerts.shown.values()]
        assert {"OrdersStuckInPaid", "OrdersInError", "NodeCapacityHigh"} <= set(names)
        key = next(k for k, row in alerts.shown.items() if str(row[2]) == "OrdersStuckInPaid")
        alerts.move_cursor(row=alerts.get_row_index(key))
        await pilot.press("I")
        await wait_until(pilot, lambda: isinstance(app.screen, ChooseScreen))
        await pilot.press("enter")  # the preset: P1 for a critical alert
        await wait_until(pilot, lambda: isinstance(app.screen, AskScreen))
        assert "have no server" in app.screen.value  # the title starts from the alert's summary
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        await pilot.press("y")
        incidents = screen.query_one("#incidents-table", LiveTable)
        await wait_until(pilot, lambda: len(incidents.shown) == 1)
        [row] = incidents.shown.values()
        # PaymentWebhookFailures-like criticals are P0; this one (stuck orders) is P1. Declaring
        # names no commander and is no response: the clock runs until someone acts.
        assert str(row[1]) == "P1" and row[2] == "detection" and str(row[3]) == "none"
        assert str(row[4]).startswith("respond in")
        assert str(row[5]).startswith("next update in")
        await pilot.press("N")
        await wait_until(pilot, lambda: isinstance(app.screen, AskScreen))
        await pilot.press(*"retried 4 orders", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        assert "retried 4 orders" in text_of(app.screen.query_one("#calls-text"))  # the note as it is written
        await pilot.press("y")
        timeline = screen.query_one("#timeline")
        await wait_until(pilot, lambda: "retried 4 orders" in text_of(timeline))
        assert "declared P1" in text_of(timeline)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, AskScreen))
        target = tmp_path / "pm.md"
        await pilot.press("ctrl+u", *str(target), "enter")
        await wait_until(pilot, lambda: target.exists())
        text = target.read_text()
        assert "## Timeline" in text and "note: retried 4 orders" in text


async def test_another_consoles_incident_appears_at_once(seeded_db):
    app = make_app(seeded_db, refresh=3600)  # no poll would show it: only NOTIFY can
    async with app.run_test(size=(120, 40)) as pilot:
        screen, _ = await _open(pilot, app)
        incidents = screen.query_one("#incidents-table", LiveTable)
        assert not incidents.shown
        from console.settings import Settings
        from console.wiring import build_services

        services = build_services(Settings.isolated(DATABASE_URL=seeded_db).resolved())
        try:
            book = Runbook(services, Actor("bob", "oncall", "other-console"))
            assert (await book.execute(DECLARE_INCIDENT, "Bot down in production", {"severity": "P0"})).ok
        finally:
            await services.close()
        await wait_until(pilot, lambda: len(incidents.shown) == 1, timeout=10)
        [row] = incidents.shown.values()
        assert str(row[1]) == "P0" and str(row[3]) == "none" and str(row[4]).startswith("respond in 14:")


async def test_a_p1_without_an_update_for_30_minutes_reminds_the_commander(seeded_db):
    import asyncpg

    from console.settings import Settings
    from console.wiring import build_services

    services = build_services(Settings.isolated(DATABASE_URL=seeded_db).resolved())
    try:
        book = Runbook(services, Actor("bob", "oncall", "other-console"))
        declared = await book.execute(
            DECLARE_INCIDENT, "Payments failing", {"severity": "P1", "commander": "bob"}
        )
    finally:
        await services.close()
    conn = await asyncpg.connect(seeded_db)
    try:  # the last status update was 31 minutes ago
        sql = "UPDATE ops.incidents SET last_update_at = now() - interval '31 minutes' WHERE id = $1"
        await conn.execute(sql, declared.detail["incident_id"])
    finally:
        await conn.close()
    app = make_app(seeded_db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, _ = await _open(pilot, app)
        incidents = screen.query_one("#incidents-table", LiveTable)
        await wait_until(pilot, lambda: len(incidents.shown) == 1)
        [row] = incidents.shown.values()
        assert str(row[5]).startswith("status update overdue by 1:")
        await wait_until(
            pilot, lambda: any("Status update due" in (n.title or "") for n in app._notifications)
        )
        # A note is the update: the clock starts over and the row stops being red.
        await pilot.press("i", "N")
        await wait_until(pilot, lambda: isinstance(app.screen, AskScreen))
        await pilot.press(*"webhook secret rotated, watching", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        await pilot.press("y")
        await wait_until(
            pilot, lambda: str(next(iter(incidents.shown.values()))[5]).startswith("next update in 29:")
        )


async def test_at_80_columns_the_alerts_take_the_width(seeded_db):
    app = make_app(seeded_db)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, alerts = await _open(pilot, app)
        assert not screen.query_one("#charts-panel").display
        assert alerts.size.width >= 70
    app = make_app(seeded_db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, _ = await _open(pilot, app)
        assert screen.query_one("#charts-panel").display


def test_charts_draw_nothing_without_data_and_show_their_scale():
    from screens.incidents import chart_view
    from services.alerts import Series

    caption, points = chart_view(Series("errors/s", "q", []))
    assert points is None and caption.plain == "errors/s: no data"  # never a full bar under "no data"
    caption, points = chart_view(Series("errors/s", "q", [0.5, 0.7]))
    assert points is None and "collecting (2 of 3 points)" in caption.plain
    caption, points = chart_view(Series("errors/s", "q", [0.0, 0.25, 1.5, 0.75]))
    assert points == [0.0, 0.25, 1.5, 0.75] and caption.plain == "errors/s: 0.75  range 0.00 to 1.50"
    assert chart_view(Series("x", "q", [2.0, 2.0, 2.0]))[0].plain.endswith("flat")


async def test_a_long_timeline_scrolls_by_keyboard(seeded_db):
    from console.settings import Settings
    from console.wiring import build_services
    from services.incident_actions import DECLARE_INCIDENT, INCIDENT_NOTE
    from services.runbook import Actor, Runbook

    services = build_services(Settings.isolated(DATABASE_URL=seeded_db).resolved())
    try:
        book = Runbook(services, Actor("ines", "oncall", "c0"))
        declared = await book.execute(DECLARE_INCIDENT, "Webhooks failing", {"severity": "P1"})
        incident = str(declared.detail["incident_id"])
        assert (await book.execute(INCIDENT_NOTE, incident, {"text": "long " * 600})).ok  # 3,000 characters
        for n in range(12):
            assert (await book.execute(INCIDENT_NOTE, incident, {"text": f"update {n}"})).ok
    finally:
        await services.close()
    app = make_app(seeded_db)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, _ = await _open(pilot, app)
        await pilot.press("i")
        timeline = screen.query_one("#timeline")
        await wait_until(pilot, lambda: "update 11" in text_of(timeline))
        scroll = screen.query_one("#timeline-scroll")
        assert scroll.max_scroll_y > 0  # it outgrew its box
        await pilot.press("tab")  # from the incidents table to the timeline
        assert app.focused is scroll
        await pilot.press("end")
        await wait_until(pilot, lambda: scroll.scroll_y == scroll.max_scroll_y)
        assert scroll.scroll_y > 0  # the rows after the long note are reachable
