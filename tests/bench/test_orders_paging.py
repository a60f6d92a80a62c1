"""Paging the orders table at a million orders (issue 10, item 15): `]` and `[` from the
keypress to the frame that shows the 500-row keyset page, median over 20 pages forward and
10 back, as the console pages (the next page read ahead while one is shown, the pages left
kept) and, in the same run, reading each page when its key is pressed, beside the keyset
query alone; and what a poll that changes nothing costs the table: the lines it draws
again. Prints figures; asserts nothing about time."""

from __future__ import annotations

import statistics
import time

import pytest

from screens.orders import OrdersScreen
from tests.bench import orders_1m
from tests.bench.frames import FrameClock
from tests.conftest import wait_until
from tests.helpers import make_app

PAGE, PAGES, BACK = 500, 20, 10  # back over the pages the screen keeps (the ten left)


@pytest.fixture(scope="module")
def orders_db(pg_cluster):
    return orders_1m.database(pg_cluster)


def _ms(samples: list[float]) -> str:
    return (
        f"median {statistics.median(samples):5.1f} ms (p95 {sorted(samples)[int(len(samples) * 0.95)]:5.1f})"
    )


async def _paging(orders_db, monkeypatch, *, read_ahead: bool) -> dict:
    monkeypatch.setattr(OrdersScreen, "PAGE_SIZE", PAGE)
    monkeypatch.setattr(OrdersScreen, "READ_AHEAD", read_ahead)
    shown_at: list[float] = []  # when a handler put a new page on the table
    handler = OrdersScreen.on_orders_screen_page_loaded

    def timed(screen, message):
        before = screen.current_page
        handler(screen, message)
        if screen.current_page is not before:
            shown_at.append(time.perf_counter())

    monkeypatch.setattr(OrdersScreen, "on_orders_screen_page_loaded", timed)
    app = make_app(orders_db, refresh=3600)
    found: dict = {}
    async with app.run_test(size=(120, 40)) as pilot:
        clock = FrameClock(app)
        cpu_at: list[float] = []  # this process's CPU time at each frame, beside clock.frames
        display = app._display

        def cpu_display(*args, **kwargs):
            cpu_at.append(time.process_time())
            return display(*args, **kwargs)

        app._display = cpu_display
        await pilot.press("2")
        screen = app.screen
        await pilot.press("a")
        await wait_until(pilot, lambda: screen.current_view == "recent" and screen.current_page is not None
                         and len(screen.current_page.orders) == PAGE, timeout=30)  # fmt: skip

        async def turn(key: str) -> tuple[float, float]:
            """(wall, this process's CPU) ms from the keypress to the frame showing the page."""
            await pilot.pause(0.3)  # the operator reads the page (meanwhile the next is read ahead)
            before, pressed, cpu = screen.current_page, time.perf_counter(), time.process_time()
            await pilot.press(key)
            await wait_until(pilot, lambda: screen.current_page is not before, timeout=30)
            shown = next(t for t in shown_at if t >= pressed)
            await wait_until(pilot, lambda: any(f >= shown for f in clock.frames), timeout=5)
            frame = next(i for i, f in enumerate(clock.frames) if f >= shown)
            return (clock.frames[frame] - pressed) * 1000, (cpu_at[frame] - cpu) * 1000

        for key, name, pages in (
            ("right_square_bracket", "forward", PAGES),
            ("left_square_bracket", "back", BACK),
        ):
            turns = [await turn(key) for _ in range(pages)]
            found[name], found[f"{name}_cpu"] = [w for w, _ in turns], [c for _, c in turns]
            if name == "forward":
                found["cursors"] = list(screen.cursors)
        queries = []
        for after in found["cursors"]:
            started = time.perf_counter()
            await app.services.orders.page("recent", after=after, limit=PAGE)
            queries.append((time.perf_counter() - started) * 1000)
        found["queries"] = queries

        table = screen.query_one("#orders-table")
        drawn: list[int] = []
        render_line = table.render_line
        table.render_line = lambda y: drawn.append(y) or render_line(y)
        await pilot.pause(0.5)
        drawn.clear()
        for _ in range(5):
            before = screen.current_page
            screen._list.trigger()
            await wait_until(pilot, lambda before=before: screen.current_page is not before, timeout=30)
        await pilot.pause(0.3)
        found["idle_drawn"] = len(drawn)
    return found


async def test_paging_and_a_poll_that_changes_nothing(orders_db, monkeypatch):
    pressed = await _paging(orders_db, monkeypatch, read_ahead=False)
    ahead = await _paging(orders_db, monkeypatch, read_ahead=True)
    print(
        f"\n] / [ keypress to the frame showing a {PAGE}-row keyset page, 1M orders, {PAGES} on, {BACK} back:"
    )
    for label, found in (
        ("as the console pages (next read ahead)", ahead),
        ("read when its key is pressed", pressed),
    ):
        print(f"  {label}:")
        print(f"    ]  {_ms(found['forward'])}   [  {_ms(found['back'])}")
        print(f"    console CPU meanwhile:  ]  {_ms(found['forward_cpu'])}   [  {_ms(found['back_cpu'])}")
    print(f"  the keyset query alone, same pages, same run: {_ms(ahead['queries'])}")
    print(f"a poll that changes nothing, 5 polls: {ahead['idle_drawn']} table lines drawn again")
