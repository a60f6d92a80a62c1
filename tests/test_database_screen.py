"""The Database area in the TUI against a real server: a real pg_sleep listed, cancelled with
J, another terminated with Q and its pid typed; a query that shrugs off the cancel offered
for terminate; a lock chain of three sessions as a tree; VACUUM from H with its progress;
support and read-only; the filters; every key at 80x24."""

from __future__ import annotations

import asyncpg
import pytest
from textual.widgets import Input, ProgressBar
from textual.widgets._footer import FooterKey

from screens.action_modal import ActionConfirmScreen, ChooseScreen
from screens.confirm import ConfirmScreen
from screens.database import DatabaseScreen
from screens.live_table import LiveTable
from tests.conftest import as_runtime, wait_until
from tests.db_sessions import Sessions, bot_dsn
from tests.helpers import make_app, text_of
from tests.test_db_actions import STUBBORN, _slow_vacuum_database


@pytest.fixture
def sessions(seeded_db):
    with Sessions(seeded_db) as made:
        yield made


def app_for(seeded_db: str, **kw):
    app = make_app(as_runtime(seeded_db), OPSCONSOLE_RESTORE_DSN=seeded_db, **kw)
    # Every notification shown, kept: on a loaded machine one can time out before it is looked at.
    app.said = []
    notify = app.notify

    def keep(message, *, title="", **options):
        app.said.append(f"{title}\n{message}")
        return notify(message, title=title, **options)

    app.notify = keep
    return app


def notified(app, words: str) -> bool:
    return any(words in said for said in app.said)


async def type_confirmation(pilot, app, word: str) -> None:
    """Type `word` into the destructive confirmation's box (once it is there) and press Enter."""
    await wait_until(
        pilot, lambda: isinstance(app.screen, ActionConfirmScreen) and app.screen.query("#typed")
    )
    box = app.screen.query_one("#typed", Input)
    box.value = word
    box.focus()
    await pilot.press("enter")


async def open_database(pilot, app) -> DatabaseScreen:
    await pilot.press("7")
    await wait_until(pilot, lambda: isinstance(app.screen, DatabaseScreen))
    screen = app.screen
    await wait_until(pilot, lambda: screen._polls["activity"].polls > 0)
    return screen


def activity(screen) -> LiveTable:
    return screen.query_one("#activity-table", LiveTable)


async def select(pilot, screen, pid: int) -> None:
    table = activity(screen)
    await wait_until(pilot, lambda: str(pid) in table.shown)
    table.move_cursor(row=table.get_row_index(str(pid)))
    table.focus()
    await pilot.pause()


async def test_a_long_query_is_listed_cancelled_with_j_and_another_terminated_with_q(seeded_db, sessions):
    bot = bot_dsn(seeded_db)
    first = sessions.start("SELECT pg_sleep(60) /* revenue report */", bot)
    second = sessions.start("SELECT pg_sleep(60) /* second */", bot, "BEGIN", "SELECT 1")
    app = app_for(seeded_db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_database(pilot, app)
        await select(pilot, screen, first)
        row = " ".join(str(c) for c in activity(screen).shown[str(first)])
        assert "active" in row and "Timeout: PgSleep" in row and "agis_bot" in row and "revenue report" in row
        pane = text_of(screen.query_one("#query"))
        assert f"pid {first} · agis_bot@" in pane and "SELECT pg_sleep(60) /* revenue report */" in pane

        await pilot.press("J")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        assert "SELECT pg_cancel_backend($1)" in text_of(app.screen.query_one("#calls-text"))
        await pilot.press("y")
        await wait_until(pilot, lambda: notified(app, "Cancel query: ok"), timeout=15)
        assert sessions.state(first)[0] == "idle"
        await wait_until(pilot, lambda: "idle" in str(activity(screen).shown[str(first)][1]))

        await select(pilot, screen, second)
        await pilot.press("Q")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        assert "CLOSES THE SESSION, not just its query" in text_of(app.screen.query_one("#summary"))
        await type_confirmation(pilot, app, str(second))
        await wait_until(pilot, lambda: notified(app, "Terminate session: ok"), timeout=15)
        await wait_until(pilot, lambda: str(second) not in activity(screen).shown)
        sessions.wait_for(second, "gone")


async def test_a_cancel_that_did_not_end_the_query_offers_terminate(seeded_db, sessions):
    stubborn = sessions.start(STUBBORN, bot_dsn(seeded_db))
    app = app_for(seeded_db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_database(pilot, app)
        await select(pilot, screen, stubborn)
        await pilot.press("J")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), timeout=15)
        assert notified(app, "Cancel query: failed")
        await pilot.press("y")  # terminate, then: its typed confirmation
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        assert app.screen.plan.action.name == "terminate_session"
        await type_confirmation(pilot, app, str(stubborn))
        await wait_until(pilot, lambda: notified(app, "Terminate session: ok"), timeout=15)
    sessions.wait_for(stubborn, "gone")


async def test_a_lock_chain_of_three_sessions_is_shown_as_a_tree(seeded_db, sessions):
    # A table the console itself never reads (its own queries would queue behind the lock too).
    bot = bot_dsn(seeded_db)
    sessions.open(
        None, "CREATE TABLE lockdemo AS SELECT 1 AS id, true AS on_sale", "GRANT ALL ON lockdemo TO agis_bot"
    )
    touch = "UPDATE lockdemo SET on_sale = on_sale WHERE id = 1"
    holder = sessions.open(bot, "BEGIN", touch)
    waiter = sessions.start(touch, bot, wait_state="Lock")
    third = sessions.start("LOCK TABLE lockdemo IN ACCESS EXCLUSIVE MODE", bot, "BEGIN", wait_state="Lock")
    app = app_for(seeded_db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_database(pilot, app)
        await pilot.press("l")
        tree = screen.query_one("#locks-table", LiveTable)
        await wait_until(pilot, lambda: len(tree.shown) == 4)
        assert list(tree.shown) == [f"{holder}", f"{holder}/{waiter}", f"{holder}/{waiter}/{third}",
                                    f"{holder}/{third}"]  # fmt: skip
        labels = [tree.shown[k][0].plain for k in tree.shown]
        assert labels == [str(holder), f"└ {waiter}", f"  └ {third} +{holder}", f"└ {third} +{waiter}"]
        assert "AccessExclusiveLock on lockdemo" in str(tree.shown[f"{holder}/{third}"][3])
        assert f"xmin horizon held by pid {holder}" in text_of(screen.query_one("#horizon"))
        # Cancel acts on the session selected in the tree: the blocker, here.
        tree.move_cursor(row=0)
        await pilot.press("J")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        assert app.screen.plan.target == str(holder)
        assert "idle in a transaction: there is no running query to cancel" in app.screen.plan.refusal
        await pilot.press("escape")
        await pilot.press("Q")  # terminating the root frees the chain
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        await type_confirmation(pilot, app, str(holder))
        await wait_until(pilot, lambda: notified(app, "Terminate session: ok"), timeout=15)
        await wait_until(pilot, lambda: not tree.shown)
        assert "no session waits on another's lock" in text_of(screen.query_one("#locks-summary"))


async def test_vacuum_from_h_shows_its_progress(seeded_db):
    await _slow_vacuum_database(seeded_db)
    lines: list[str] = []
    app = app_for(seeded_db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_database(pilot, app)
        await pilot.press("t")
        tables = screen.query_one("#tables-table", LiveTable)
        await wait_until(pilot, lambda: "public.bulk" in tables.shown)
        tables.move_cursor(row=tables.get_row_index("public.bulk"))
        await pilot.press("H")
        await wait_until(pilot, lambda: isinstance(app.screen, ChooseScreen))
        await pilot.press("enter")  # vacuum analyze, the first offered
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        assert "VACUUM (ANALYZE) public.bulk" in text_of(app.screen.query_one("#calls-text"))
        await pilot.press("y")
        box = screen.query_one("#progress")
        line = screen.query_one("#progress-line")

        def seen() -> bool:  # what the progress line says, as the operator reads it
            lines.append(str(text_of(line)))
            return "scanning heap" in lines[-1]

        # On a loaded machine (the browser tests beside it) the run can start 20 s late.
        try:
            await wait_until(pilot, seen, timeout=60)
        except AssertionError:
            said = f"progress lines seen: {sorted(set(lines))}; notifications: {app.said}"
            raise AssertionError(said) from None
        assert box.has_class("-running") and "x stop" in str(text_of(screen.query_one("#progress-line")))
        bar = screen.query_one("#progress-bar", ProgressBar)
        await wait_until(pilot, lambda: (bar.progress or 0) > 0 or not box.has_class("-running"))
        await wait_until(pilot, lambda: notified(app, "Database maintenance: ok"), timeout=90)
        assert not box.has_class("-running")
    conn = await asyncpg.connect(seeded_db)
    try:
        detail = await conn.fetchval(
            "SELECT detail FROM ops.audit_log WHERE phase = 'outcome' ORDER BY id DESC LIMIT 1"
        )
    finally:
        await conn.close()
    assert '"statement": "VACUUM (ANALYZE) public.bulk"' in detail and '"before_bytes"' in detail


async def test_support_cannot_cancel_and_read_only_hides_every_key(seeded_db, sessions):
    sleeper = sessions.start("SELECT pg_sleep(60)", bot_dsn(seeded_db))
    app = app_for(seeded_db, role="support")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_database(pilot, app)
        await select(pilot, screen, sleeper)
        await pilot.press("J")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        assert app.screen.plan.refusal == "Cancel query needs the oncall role; alice is support"
    assert sessions.state(sleeper)[0] == "active"

    from dataclasses import replace

    app = app_for(seeded_db)
    app.context = replace(app.context, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_database(pilot, app)
        await select(pilot, screen, sleeper)
        for tab in "at":
            await pilot.press(tab)
            await pilot.pause(0.2)
            assert not {"J", "Q", "H"} & {k.key_display for k in screen.query(FooterKey)}
            for key in "JQH":
                await pilot.press(key)
        await pilot.pause(0.3)
        assert app.screen is screen and screen.palette_commands() == []
    assert sessions.state(sleeper)[0] == "active"


async def test_filters_and_every_key_at_80x24(seeded_db, sessions):
    from tests.test_small_terminal import on_screen, screen_text

    bot = bot_dsn(seeded_db)
    sleeper = sessions.start("SELECT pg_sleep(60) /* find me */", bot)
    idle = sessions.open(bot, "BEGIN", "SELECT 1")
    sessions.wait_for(idle, "idle in transaction")
    app = app_for(seeded_db)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_database(pilot, app)
        await wait_until(pilot, lambda: {str(sleeper), str(idle)} <= set(activity(screen).shown))
        footer = screen_text(app)[-1]
        assert "J Cancel" in footer and "Q Terminate" in footer and "? Help" in footer, footer
        assert on_screen(screen.query_one("#activity-panel")) and on_screen(screen.query_one("#query-panel"))
        state = activity(screen).shown[str(idle)][1]
        assert state.plain == "idle in tx" and "yellow" in str(state.style)  # highlighted

        await pilot.press("f", "f")  # all -> active -> idle in transaction
        await wait_until(pilot, lambda: set(activity(screen).shown) == {str(idle)})
        assert "filters: state idle in transaction" in text_of(screen.query_one("#filters"))
        await pilot.press("c", "slash")
        await pilot.press(*"find me", "enter")
        await wait_until(pilot, lambda: set(activity(screen).shown) == {str(sleeper)})
        await pilot.press("c")
        await wait_until(pilot, lambda: {str(sleeper), str(idle)} <= set(activity(screen).shown))

        await pilot.press("t")
        await pilot.pause(0.3)
        assert "H Maintain" in screen_text(app)[-1]


async def test_several_marked_sessions_are_cancelled_at_once(seeded_db, sessions):
    bot = bot_dsn(seeded_db)
    sleepers = [sessions.start(f"SELECT pg_sleep(60) /* batch {n} */", bot) for n in range(3)]
    app = app_for(seeded_db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_database(pilot, app)
        for pid in sleepers[:2]:
            await select(pilot, screen, pid)
            await pilot.press("space")
        assert screen.marked == set(sleepers[:2])
        assert activity(screen).shown[str(sleepers[0])][0].plain == f"•{sleepers[0]}"
        await pilot.press("J")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: notified(app, "bulk cancel query done: 2 of 2 ok"), timeout=20)
        assert not screen.marked
    assert [sessions.state(pid)[0] for pid in sleepers] == ["idle", "idle", "active"]
