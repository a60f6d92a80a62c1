"""Keypress-to-frame timing for the benchmarks: the time from a key being posted to the
first frame the app renders after it (App._display), so Pilot's own settling afterwards
is not counted."""

from __future__ import annotations

import statistics
import time


class FrameClock:
    """Records when each frame is drawn; `press` times one key to its first frame."""

    def __init__(self, app) -> None:
        self.frames: list[float] = []
        display = app._display

        def timed_display(*args, **kwargs):
            self.frames.append(time.perf_counter())
            return display(*args, **kwargs)

        app._display = timed_display

    async def press(self, pilot, key: str) -> float | None:
        """Milliseconds from pressing `key` to the next frame (None if none came)."""
        pressed = time.perf_counter()
        await pilot.press(key)
        after = [f for f in self.frames if f >= pressed]
        return (after[0] - pressed) * 1000 if after else None

    async def sample(self, pilot, key: str, presses: int) -> tuple[float, float]:
        """(median, p95) milliseconds over `presses` presses of `key`."""
        samples = [ms for _ in range(presses) if (ms := await self.press(pilot, key)) is not None]
        return statistics.median(samples), sorted(samples)[int(len(samples) * 0.95)]
