"""The checklists area as an operator sees it: the daily run's items with their states (the
seeded world has orders stuck in paid: FAIL) and the selected item's evidence; a manual weekly
item answered from the keyboard and the run signed off; enter on a failed item opens the area
(and the orders view) whose runbook fixes it; a read-only console looks without recording;
the overview's line for checklists never signed off; all of it at 80x24. The rendering is
tested as pure functions, database text included."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from textual.widgets._footer import FooterKey

from screens.action_modal import ActionConfirmScreen, AskScreen, ChooseScreen
from screens.checklists import ChecklistScreen
from screens.checklists_render import (
    detail_rows,
    evidence_renderable,
    item_row,
    run_text,
    selector_text,
    state_cell,
)
from screens.live_table import LiveTable
from screens.orders import OrdersScreen
from screens.overview import checklists_line
from services.checklist_actions import ANSWER, SIGN_OFF
from services.checklist_items import ITEMS, find_item
from services.checklists import Due, Run, RunItem
from tests.conftest import wait_until
from tests.helpers import make_app, text_of
from tests.test_small_terminal import on_screen, screen_text
from tests.test_trust import fetch

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STUCK = """SELECT id::text FROM orders WHERE status = 'paid' AND created_at < now() - interval '10 minutes'
ORDER BY created_at"""
ANSWERED = """SELECT r.signed_off_by, i.state, i.note FROM ops.checklist_runs r
JOIN ops.checklist_items i ON i.run_id = r.id WHERE i.item = 'support-tickets'"""


def item(**kw) -> RunItem:
    values = dict(
        item="stuck-paid", position=0, title="Orders stuck in paid overnight", kind="auto", state="fail",
        figure="2 orders paid over 10 min ago without a server", threshold="0 stuck",
        evidence={"orders": [
            {"id": "8f3c", "server_name": "rust-1", "created_at": "2026-03-01 09:30:00+00", "minutes": 150},
            {"id": "0b1d", "server_name": None, "minutes": 12},
        ]},
        checked_at=NOW - timedelta(seconds=30),
    )  # fmt: skip
    return RunItem(**{**values, **kw})


def run(*items: RunItem, **kw) -> Run:
    values = dict(id=7, checklist="daily", started_at=NOW - timedelta(hours=2), started_by="sam",
                  signed_off_at=None, signed_off_by=None, sign_off_note=None, items=items)  # fmt: skip
    return Run(**{**values, **kw})


def cells(row: tuple) -> list[str]:
    return [str(c) for c in row]


# -- pure rendering ------------------------------------------------------------------------


def test_an_items_row_shows_its_state_title_and_what_it_saw_or_who_answered():
    assert cells(item_row(item())) == ["✗ FAIL", "Orders stuck in paid overnight",
                                       "2 orders paid over 10 min ago without a server"]  # fmt: skip
    assert "red" in str(state_cell(item()).style)
    manual = item(item="docs", kind="manual", state="open", figure="", title="Update documentation")
    assert cells(item_row(manual)) == ["· manual", "Update documentation", f"{ANSWER.key} answers it"]
    assert cells(item_row(manual, signed=True))[2] == "not answered"  # a signed run is frozen
    done = replace(manual, state="pass", answered_by="kim", note="runbook updated")
    assert cells(item_row(done)) == ["✓ done", "Update documentation", "kim: runbook updated"]
    carried = item(carried_from=3, state="not available", figure="not available: Stripe is not configured")
    assert cells(item_row(carried))[:2] == ["? n/a", "Orders stuck in paid overnight ↻"]


def test_database_text_is_shown_inert_never_as_markup():
    evil = item(
        title="[red]Orders\x1b[2J",
        figure="[b]3[/b] stuck",
        answered_by="[i]eve",
        note="ok\x07",
        answered_at=NOW,
    )
    row = cells(item_row(evil))
    assert row[1] == "[red]Orders\\x1b[2J" and row[2] == "[i]eve: ok\\x07"
    about = "\n".join(f"{label} {value.plain}" for label, value in detail_rows(evil, None, NOW))
    assert "[b]3[/b] stuck" in about and "[i]eve 0s ago: “ok\\x07”" in about


def test_the_detail_has_threshold_evidence_answer_carry_over_and_the_fix():
    spec = find_item("daily", "stuck-paid")
    rows = dict((label, value.plain) for label, value in detail_rows(item(carried_from=4), spec, NOW))
    assert rows["state"].startswith("✗ FAIL") and "automatic, checked 30s ago" in rows["state"]
    assert rows["threshold"] == "0 stuck" and rows["carried"] == "over since run 4"
    assert rows["fix"] == "orders area (enter): the stuck view: R retries provisioning"
    assert "fix" not in dict(detail_rows(item(state="pass"), spec, NOW))  # only what failed offers its fix
    shown = text_of_renderable(evidence_renderable(item().evidence))
    assert "orders · 2" in shown and "server name" in shown
    assert "rust-1" in shown and "03-01 09:30" in shown and "150" in shown and "—" in shown
    figures = text_of_renderable(evidence_renderable({"errors_24h": 1234.0, "unreadable": ["prom", "am"]}))
    assert "errors 24h 1,234" in figures and "unreadable: prom, am" in figures
    assert evidence_renderable({}) is None
    slow = {
        "statements": [{"query": "SELECT * FROM orders WHERE status = $1", "calls": 1234, "queryid": 98765}]
    }
    assert "query" in text_of_renderable(evidence_renderable(slow, width=80)).split("\n")[1]  # a table
    cut = text_of_renderable(evidence_renderable(slow, width=40)).split("\n")[2]  # the query cut to fit
    assert cut.startswith("SELECT * FROM orders WH…  1,234  98765")
    narrow = text_of_renderable(evidence_renderable(slow, width=30))  # too narrow for it: one record a row
    assert "• query SELECT * FROM orders WHERE status = $1 · calls 1,234 · queryid 98765" in narrow


def text_of_renderable(renderable) -> str:
    import io

    from rich.console import Console

    console = Console(width=120, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_the_selector_and_the_run_line():
    dues = [
        Due("daily", None, 7, NOW),
        Due("weekly", NOW - timedelta(days=2), None, NOW),
        Due("monthly", NOW - timedelta(days=35), None, NOW),
        Due("quarterly", None, None, NOW),
    ]
    line = selector_text("weekly", dues)
    assert line.plain.startswith(" Daily OVERDUE ·  Weekly ok ·  Monthly DUE ·  Quarterly OVERDUE")
    open_run = run(item(), item(item="docs", kind="manual", state="open"))
    said = run_text(open_run, NOW, checklist="daily").plain
    assert said == "Run 7 · started by sam 2h ago · open: 1 failed, 1 to answer · checked 30s ago"
    signed = replace(open_run, signed_off_at=NOW - timedelta(minutes=5), signed_off_by="kim")
    signed = replace(signed, sign_off_note="ok")
    assert "signed off by kim 5m ago: “ok”" in run_text(signed, NOW, checklist="daily").plain
    assert run_text(None, NOW, checklist="daily", walking=3.2).plain == "no daily run yet  checking… 3 s"
    assert checklists_line(dues) == ("overdue: daily, quarterly · due: monthly", "bold red")
    assert checklists_line([replace(d, last_signed=NOW) for d in dues]) == ("all signed off in time", "bold")
    assert checklists_line([replace(d, last_signed=None) for d in dues])[0] == "all overdue"


# -- the screen ----------------------------------------------------------------------------


async def _open(pilot, app) -> ChecklistScreen:
    await pilot.press("9")
    screen = app.screen
    assert isinstance(screen, ChecklistScreen)
    await wait_until(pilot, lambda: screen.run is not None and screen.walking is None)
    return screen


async def _checklist(pilot, screen: ChecklistScreen, name: str) -> None:
    while screen.checklist != name:
        await pilot.press("c")
    await wait_until(pilot, lambda: screen.run is not None and screen.run.checklist == name)
    await wait_until(pilot, lambda: screen.walking is None)


async def _select(pilot, screen: ChecklistScreen, item_id: str) -> None:
    table = screen.query_one("#items-table", LiveTable)
    table.move_cursor(row=table.get_row_index(item_id))
    await wait_until(pilot, lambda: screen.selected == item_id)


def _status(screen) -> str:
    return text_of(screen.query_one("#checklist-selector")) + text_of(screen.query_one("#checklist-status"))


async def test_the_daily_run_shows_each_items_state_and_the_evidence(seeded_db, seeded_runtime_db):
    app = make_app(seeded_runtime_db, role="support", operator="alice")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open(pilot, app)
        table = screen.query_one("#items-table", LiveTable)
        assert list(table.shown) == [i.id for i in ITEMS["daily"]]
        assert cells(table.shown["stuck-paid"])[:2] == ["✗ FAIL", "Orders stuck in paid overnight"]
        assert cells(table.shown["webhook-rate"])[0] == "? n/a"  # no Stripe here: never a pass
        status = _status(screen)
        assert f"Run {screen.run.id} · started by alice" in status and "open: " in status
        assert "Daily OVERDUE" in status  # never signed off
        stuck = await fetch(seeded_db, STUCK)
        detail = text_of(screen.query_one("#item-about")) + text_of(screen.query_one("#item-evidence"))
        assert f"orders · {len(stuck)}" in detail and stuck[0][0] in detail
        assert "threshold  0 stuck" in detail and "orders area (enter): the stuck view" in detail
        await _select(pilot, screen, "health-endpoints")
        assert "backend" in text_of(screen.query_one("#item-evidence"))  # its rows: one per backend


async def test_a_manual_item_answered_then_the_run_signed_off(seeded_db, seeded_runtime_db):
    app = make_app(seeded_runtime_db, role="support", operator="alice")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open(pilot, app)
        assert ANSWER.key not in _footer_keys(app, screen)  # the daily checklist has nothing to answer
        await _checklist(pilot, screen, "weekly")
        await _select(pilot, screen, "support-tickets")
        await pilot.press(ANSWER.key)
        await wait_until(pilot, lambda: isinstance(app.screen, ChooseScreen))
        await pilot.press("enter")  # done: yes
        await wait_until(pilot, lambda: isinstance(app.screen, AskScreen))
        await pilot.press(*"3 answered, 1 refund", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        await pilot.press("y")
        table = screen.query_one("#items-table", LiveTable)
        await wait_until(pilot, lambda: cells(table.shown["support-tickets"])[0] == "✓ done")
        assert cells(table.shown["support-tickets"])[2] == "alice: 3 answered, 1 refund"
        assert "alice 0s ago: “3 answered, 1 refund”" in text_of(screen.query_one("#item-about"))

        await pilot.press(SIGN_OFF.key)
        await wait_until(pilot, lambda: isinstance(app.screen, AskScreen))
        await pilot.press("enter")  # no note
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        assert "carries over to the next run" in screen_text(app)[0] + "\n".join(screen_text(app))
        await pilot.press("y")
        await wait_until(pilot, lambda: screen.run is not None and screen.run.signed)
        await wait_until(pilot, lambda: "signed off by alice" in _status(screen))
        assert "Weekly ok" in _status(screen)
        assert SIGN_OFF.key not in _footer_keys(app, screen)  # nothing left to sign
    rows = await fetch(seeded_db, ANSWERED)
    assert [tuple(r) for r in rows] == [("alice", "pass", "3 answered, 1 refund")]


def _footer_keys(app, screen) -> set[str]:
    footer = screen_text(app)[-1]
    return {fk.key_display for fk in screen.query(FooterKey) if f"{fk.key_display} " in footer}


async def test_enter_on_a_failed_item_opens_the_area_that_fixes_it(seeded_runtime_db):
    app = make_app(seeded_runtime_db, role="support")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open(pilot, app)
        await _select(pilot, screen, "error-orders")
        assert screen.run.item("error-orders").state == "fail"
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, OrdersScreen))
        await wait_until(pilot, lambda: app.screen.current_view == "errors")  # the runbook's view
        told = [n.message for n in app._notifications if n.title == "From the checklist"]
        assert told == [
            "Errors of the previous 24 hours (orders in error): the error view: read the error, R retries"
        ]
        await pilot.press("9")
        await _select(pilot, screen, "health-endpoints")  # passed: nothing to fix
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert app.screen is screen


async def test_a_read_only_console_looks_and_records_nothing(seeded_db, seeded_runtime_db):
    app = make_app(seeded_runtime_db, role="support")
    app.context = replace(app.context, read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open(pilot, app)
        assert not screen.run.stored and "Not recorded (read-only)" in _status(screen)
        assert cells(screen.query_one("#items-table", LiveTable).shown["stuck-paid"])[0] == "✗ FAIL"
        assert not {ANSWER.key, SIGN_OFF.key} & _footer_keys(app, screen)
    assert [tuple(r) for r in await fetch(seeded_db, "SELECT count(*) FROM ops.checklist_runs")] == [(0,)]


async def test_the_overview_says_which_checklists_are_overdue(seeded_runtime_db):
    app = make_app(seeded_runtime_db)
    async with app.run_test(size=(120, 40)) as pilot:
        fire = app.screen.query_one("#fire")
        await wait_until(pilot, lambda: "CHECKLISTS  all overdue" in text_of(fire))


async def test_the_checklists_area_at_80x24(seeded_runtime_db):
    app = make_app(seeded_runtime_db, role="support")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(pilot, app)
        await _checklist(pilot, screen, "weekly")  # the longest: eight items
        await pilot.pause(0.2)
        table = screen.query_one("#items-table", LiveTable)
        assert on_screen(table) and on_screen(screen.query_one("#item-panel"))
        assert table.size.height >= 9  # the header and all eight items, no vertical scrolling
        assert table.virtual_size.width <= table.scrollable_content_region.width  # nor sideways
        lines = screen_text(app)
        selector = lines[2].strip()
        assert selector.startswith("Daily OVERDUE") and selector.endswith("Quarterly OVERDUE")
        assert lines[3].strip().startswith(f"Run {screen.run.id} · started by")
        assert {ANSWER.key, SIGN_OFF.key, "c", "r", "?"} <= _footer_keys(app, screen)
