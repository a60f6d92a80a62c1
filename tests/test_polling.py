"""The polling engine: never overlapping, backing off on failure, paused while hidden,
triggered at once by ops_events, and honest about the age of its data."""

from __future__ import annotations

import asyncio

import pytest

from services.errors import Unreachable
from services.polling import Poller, format_age


async def run_for(poller: Poller, seconds: float) -> None:
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(seconds)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_the_next_poll_starts_when_the_last_ends():
    running = 0
    overlaps = 0
    ends: list[float] = []
    starts: list[float] = []
    loop = asyncio.get_running_loop()

    async def slow() -> int:
        nonlocal running, overlaps
        running += 1
        overlaps += running > 1
        starts.append(loop.time())
        await asyncio.sleep(0.05)
        ends.append(loop.time())
        running -= 1
        return 1

    poller = Poller("slow", slow, 0.02, on_result=lambda _r: None)
    await run_for(poller, 0.5)
    assert overlaps == 0
    assert poller.polls >= 4
    gaps = [start - end for end, start in zip(ends, starts[1:], strict=False)]
    assert min(gaps) >= 0.015  # the interval runs from the end of the previous poll


async def test_failures_back_off_exponentially_up_to_the_cap():
    async def failing() -> None:
        raise Unreachable("Postgres at db:5432 refused the connection")

    errors = []
    poller = Poller("f", failing, 1.0, on_result=lambda _r: None, on_error=errors.append, max_backoff=5)
    delays = []
    for _ in range(4):
        await poller.poll_once()
        delays.append(poller.next_delay())
    assert delays == [2.0, 4.0, 5.0, 5.0]
    assert len(errors) == 4 and "refused" in str(errors[0])
    fresh = poller.freshness()
    assert fresh.stale and fresh.age is None and "refused" in fresh.describe()


async def test_success_resets_the_backoff():
    outcomes = iter([Unreachable("down"), Unreachable("down"), "ok"])

    async def flaky() -> str:
        value = next(outcomes)
        if isinstance(value, Exception):
            raise value
        return value

    results = []
    poller = Poller("flaky", flaky, 1.0, on_result=results.append)
    for _ in range(3):
        await poller.poll_once()
    assert results == ["ok"]
    assert poller.next_delay() == 1.0
    assert not poller.freshness().stale


async def test_an_unexpected_exception_is_a_failure_not_a_crash():
    async def broken() -> None:
        raise KeyError("surprise")

    poller = Poller("b", broken, 0.01, on_result=lambda _r: None)
    await run_for(poller, 0.1)
    assert poller.polls >= 2  # the loop kept going
    assert "KeyError" in str(poller.last_error)


async def test_paused_pollers_do_not_poll_and_resume_at_once():
    calls = 0

    async def count() -> None:
        nonlocal calls
        calls += 1

    poller = Poller("p", count, 0.01, on_result=lambda _r: None)
    poller.pause()
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(0.1)
    assert calls == 0
    poller.resume()
    await asyncio.sleep(0.05)
    assert calls >= 1
    task.cancel()


async def test_trigger_polls_now_even_with_a_long_interval():
    calls = 0
    polled = asyncio.Event()

    async def count() -> None:
        nonlocal calls
        calls += 1
        polled.set()

    poller = Poller("t", count, 3600, on_result=lambda _r: None)
    task = asyncio.create_task(poller.run())
    await asyncio.wait_for(polled.wait(), 1)  # the first poll is immediate
    polled.clear()
    poller.trigger()
    await asyncio.wait_for(polled.wait(), 1)
    assert calls == 2
    task.cancel()


def test_stale_data_says_how_old_it_is():
    now = [100.0]
    poller = Poller("s", lambda: None, 5, on_result=lambda _r: None, clock=lambda: now[0])
    poller.last_ok = 100.0
    assert not poller.freshness().stale
    now[0] = 145.0
    fresh = poller.freshness()
    assert fresh.stale and fresh.describe() == "data 45 s old"


def test_format_age():
    assert [format_age(s) for s in (3, 89, 600, 7200)] == ["3 s", "89 s", "10 min", "2 h"]
