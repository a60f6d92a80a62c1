"""At 80x24 (an SSH session on a laptop at 3 a.m.) every area shows every area key, every
action key of the area in its footer, its essential columns, and a destructive action's
confirmation keeps its typed box and its keys on screen."""

from __future__ import annotations

import pytest
from textual.widgets._footer import FooterKey

from screens.action_modal import ActionConfirmScreen, AskScreen
from tests.conftest import wait_until
from tests.helpers import make_app, text_of

AREAS = {"1": "overview", "2": "orders", "3": "nodes", "4": "incidents", "5": "backups", "6": "pricing",
         "7": "database", "8": "audit", "9": "checklists", "0": "payments", "minus": "backends"}  # fmt: skip
SHOWN_AS = {"minus": "-"}  # how the header writes a key Textual names by its character's name
# The keys that show what an action acts on (checklists: c, the weekly one has items to answer).
TABS = {"3": ["c", "k", "p", "g"], "4": ["a", "i"], "5": ["b"], "7": ["a", "t"], "9": ["c"]}


def screen_text(app) -> list[str]:
    """The screen as the terminal shows it, line by line (from Textual's own screenshot)."""
    import html
    import re

    rows: dict[float, list[tuple[float, str]]] = {}
    for m in re.finditer(
        r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', app.export_screenshot()
    ):
        text = html.unescape(re.sub(r"<[^>]+>", "", m.group(3))).replace("\xa0", " ")
        rows.setdefault(float(m.group(2)), []).append((float(m.group(1)), text))
    lines = []
    for y in sorted(rows):
        line = ""
        for x, text in sorted(rows[y]):
            line = line.ljust(round(x / 12.2)) + text
        lines.append(line)
    return lines


def on_screen(widget, width: int = 80, height: int = 24) -> bool:
    region = widget.region
    return region.width > 0 and region.right <= width and region.bottom <= height


@pytest.mark.parametrize("key", list(AREAS))
async def test_every_area_at_80x24_shows_its_keys(seeded_runtime_db, key):
    app = make_app(seeded_runtime_db, role="admin")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press(key)
        screen = app.screen
        assert screen.AREA == AREAS[key]
        await pilot.pause(0.3)
        identity = text_of(screen.query_one("#shell-identity"))
        # Every area's key, even at 80 columns.
        assert all(f"{SHOWN_AS.get(k, k)} " in identity for k in AREAS), identity
        shown: set[str] = set()
        for tab in TABS.get(key, [None]):  # an action's key is live on the tab of its rows
            if tab:
                await pilot.press(tab)
                await pilot.pause(0.2)
            footer = screen_text(app)[-1]  # what the terminal shows on its last line
            shown |= {fk.key_display for fk in screen.query(FooterKey) if f"{fk.key_display} " in footer}
            assert "? Help" in footer, f"{AREAS[key]} {tab}: no ? in the footer: {footer!r}"
        wanted = {a.key for a in getattr(screen, "ACTIONS", ())}
        assert wanted <= shown, f"{AREAS[key]}: {sorted(wanted - shown)} not in the footer at 80x24"


async def test_the_orders_list_keeps_its_columns_at_80(seeded_runtime_db):
    app = make_app(seeded_runtime_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        screen = app.screen
        await wait_until(pilot, lambda: screen.current_page is not None)
        table = screen.query_one("#orders-table")
        assert table.region.width >= 76  # the detail goes below, the list takes the width
        assert on_screen(screen.query_one("#detail-panel"))


async def test_every_node_fits_at_80x24(seeded_runtime_db):
    app = make_app(seeded_runtime_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        screen = app.screen
        table = screen.query_one("#capacity-table")
        await wait_until(pilot, lambda: len(table.shown) > 0)
        await pilot.pause(0.2)
        assert table.max_scroll_y == 0, f"{len(table.shown)} nodes, {table.size.height} lines"


async def test_the_cancel_confirmation_fits_at_80x24(seeded_db, seeded_runtime_db, fakes):
    from tests.test_trust import ACTIVE_WITH_SERVER, backends, fetch

    order = (await fetch(seeded_db, ACTIVE_WITH_SERVER))[0][0]
    settings = {k: v for k, v in backends(seeded_runtime_db, fakes).items() if k != "DATABASE_URL"}
    app = make_app(seeded_runtime_db, role="support", **settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        screen = app.screen
        await wait_until(pilot, lambda: screen.current_page is not None)
        await pilot.press("slash", *order, "enter")
        await wait_until(pilot, lambda: screen.selected == order)
        await pilot.press("X")
        await wait_until(pilot, lambda: isinstance(app.screen, AskScreen))
        await pilot.press(*"all", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, AskScreen) and "delete" in app.screen.question)
        await pilot.press("ctrl+u", *"yes", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        await pilot.pause(0.3)
        modal = app.screen
        keys_line = modal.query(".muted").last()
        assert "Enter confirms" in text_of(keys_line) and on_screen(keys_line)
        assert on_screen(modal.query_one("#typed")) and on_screen(modal.query_one("#summary"))
        calls = modal.query_one("#calls")
        assert calls.max_scroll_y > 0  # the calls scroll in the room left, the rest stays in view
