"""Keypress to frame on the orders table at 1M orders: the all-orders view (a keyset page
of 500 rows), cursor down and page down, 200 presses each. The time is taken from the key
being posted to the first frame the app renders after it (App._display), so Pilot's own
settling afterwards is not counted. Prints medians; asserts nothing about time."""

from __future__ import annotations

import time

from screens.live_table import LiveTable
from screens.orders import OrdersScreen
from tests.bench.frames import FrameClock
from tests.conftest import wait_until
from tests.helpers import make_app


async def test_keypress_to_frame_on_the_orders_table(million_db, monkeypatch):
    monkeypatch.setattr(OrdersScreen, "PAGE_SIZE", 500)
    app = make_app(million_db, refresh=3600)
    async with app.run_test(size=(120, 40)) as pilot:
        clock = FrameClock(app)
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, OrdersScreen)
        await pilot.press("a")
        table = screen.query_one(LiveTable)
        await wait_until(
            pilot, lambda: screen.current_view == "recent" and table.row_count == 500, timeout=30
        )
        for key in ("down", "pagedown"):
            median, p95 = await clock.sample(pilot, key, 200)
            await pilot.press("home")
            print(f"\n{key:9} keypress to frame, 500-row page: median {median:.2f} ms, p95 {p95:.2f} ms")
        first = next(iter(table.shown))
        started = time.perf_counter()
        await pilot.press("right_square_bracket")
        await wait_until(
            pilot, lambda: table.row_count == 500 and next(iter(table.shown)) != first, timeout=30
        )
        print(f"next page (keyset query + 500 rows shown): {(time.perf_counter() - started) * 1000:.0f} ms")
