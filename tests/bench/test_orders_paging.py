"""Paging the orders table at a million orders (issue 10, item 15): `]` from the keypress
to the frame that shows the next 500-row keyset page, median over 20 pages forward and
back, beside the keyset query alone measured in the same run (the rest is the screen's
share); and what a poll that changes nothing costs the table: the lines it renders again
and the frames drawn. Prints figures; asserts nothing about time."""

from __future__ import annotations

import statistics
import time

import pytest

from screens.orders import OrdersScreen
from tests.bench import orders_1m
from tests.bench.frames import FrameClock
from tests.conftest import wait_until
from tests.helpers import make_app

PAGE, PAGES = 500, 20


@pytest.fixture(scope="module")
def orders_db(pg_cluster):
    return orders_1m.database(pg_cluster)


async def test_next_page_and_a_poll_that_changes_nothing(orders_db, monkeypatch):
    monkeypatch.setattr(OrdersScreen, "PAGE_SIZE", PAGE)
    shown_at: list[float] = []
    handler = OrdersScreen.on_orders_screen_page_loaded

    def timed(screen, message):
        handler(screen, message)
        shown_at.append(time.perf_counter())

    monkeypatch.setattr(OrdersScreen, "on_orders_screen_page_loaded", timed)
    app = make_app(orders_db, refresh=3600)
    async with app.run_test(size=(120, 40)) as pilot:
        clock = FrameClock(app)
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, OrdersScreen)
        await pilot.press("a")
        await wait_until(pilot, lambda: screen.current_view == "recent" and screen.current_page is not None
                         and len(screen.current_page.orders) == PAGE, timeout=30)  # fmt: skip

        async def turn(key: str) -> float:
            before, pressed = screen.current_page, time.perf_counter()
            await pilot.press(key)
            await wait_until(pilot, lambda: screen.current_page is not before, timeout=30)
            await wait_until(pilot, lambda: any(f >= shown_at[-1] for f in clock.frames), timeout=5)
            return (next(f for f in clock.frames if f >= shown_at[-1]) - pressed) * 1000

        forward = [await turn("right_square_bracket") for _ in range(PAGES)]
        cursors = list(screen.cursors)
        back = [await turn("left_square_bracket") for _ in range(PAGES)]
        orders = app.services.orders
        queries = []
        for after in cursors:
            started = time.perf_counter()
            await orders.page("recent", after=after, limit=PAGE)
            queries.append((time.perf_counter() - started) * 1000)
        print(f"\nnext page ] keypress to frame, {PAGE}-row keyset page at 1M orders: median "
              f"{statistics.median(forward):.1f} ms (p95 {sorted(forward)[int(PAGES * 0.95)]:.1f}); "
              f"previous page [: median {statistics.median(back):.1f} ms")  # fmt: skip
        print(
            f"  the keyset query alone (same pages, same run): median {statistics.median(queries):.1f} ms;"
            f" the screen's share: {statistics.median(forward) - statistics.median(queries):.1f} ms"
        )

        table = screen.query_one("#orders-table")
        rendered = []
        render_line = table.render_line

        def counted(y):
            rendered.append(y)
            return render_line(y)

        table.render_line = counted
        await pilot.pause(0.5)
        rendered.clear()
        frames = len(clock.frames)
        before = screen.current_page
        screen._list.trigger()
        await wait_until(pilot, lambda: screen.current_page is not before, timeout=30)
        await pilot.pause(0.5)
        print(f"a poll that changes nothing: {len(rendered)} table lines rendered again, "
              f"{len(clock.frames) - frames} frames drawn")  # fmt: skip
