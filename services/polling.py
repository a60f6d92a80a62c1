"""The polling engine every screen shares: one Poller per data source, whose next poll is
scheduled when the last one ends (never overlapping), backing off exponentially on failure,
pausable while its screen is hidden, and triggerable at once (NOTIFY, the refresh key)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from services.errors import BackendFailed, ServiceError

T = TypeVar("T")


@dataclass(frozen=True)
class Freshness:
    """How old a source's data is, and whether the operator should be told."""

    age: float | None  # seconds since the last successful poll; None if there never was one
    stale: bool
    error: str | None  # the last poll's failure, if it failed
    failures: int
    polling: bool

    def describe(self) -> str:
        """'' when fresh; else what a panel subtitle says, e.g. 'data 45 s old: <error>'."""
        if not self.stale:
            return ""
        age = "no data yet" if self.age is None else f"data {format_age(self.age)} old"
        return f"{age}: {self.error}" if self.error else age


def format_age(seconds: float) -> str:
    """'45 s', '12 min', '3 h' — short enough for a badge."""
    if seconds < 90:
        return f"{int(seconds)} s"
    if seconds < 90 * 60:
        return f"{int(seconds // 60)} min"
    return f"{int(seconds // 3600)} h"


class Poller(Generic[T]):
    """Polls `fetch` every `interval` seconds from the end of the previous poll.

    On failure the delay doubles per consecutive failure up to `max_backoff`. `on_result`
    and `on_error` are called in the event loop after each poll.
    """

    def __init__(
        self,
        name: str,
        fetch: Callable[[], Awaitable[T]],
        interval: float,
        *,
        on_result: Callable[[T], None],
        on_error: Callable[[ServiceError], None] | None = None,
        max_backoff: float = 120.0,
        retry_every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.name = name
        self.fetch = fetch
        self.interval = interval
        self.max_backoff = max(max_backoff, interval)
        # While failing, poll again after this long instead of backing off (a health ping,
        # cheap, that should notice a backend's return within seconds).
        self.retry_every = retry_every
        self._on_result = on_result
        self._on_error = on_error
        self._clock = clock
        self._wake = asyncio.Event()
        self._due_at = 0.0  # first poll at once
        self._triggered = False
        self._paused = False
        self.polls = 0
        self.failures = 0
        self.last_ok: float | None = None
        self.last_error: ServiceError | None = None
        self.running = False

    # ---- control ------------------------------------------------------------------

    def trigger(self) -> None:
        """Poll now (or right after the poll in flight), even while backing off."""
        self._triggered = True
        self._wake.set()

    def pause(self) -> None:
        self._paused = True
        self._wake.set()

    def resume(self) -> None:
        """Start polling again; at once if the data went stale while paused."""
        self._paused = False
        self._wake.set()

    @property
    def paused(self) -> bool:
        return self._paused

    def next_delay(self) -> float:
        """Seconds from the end of the last poll to the next one."""
        if self.failures == 0:
            return self.interval
        if self.retry_every is not None:
            return min(self.retry_every, self.interval)
        return min(self.interval * (2**self.failures), self.max_backoff)

    def freshness(self) -> Freshness:
        age = None if self.last_ok is None else self._clock() - self.last_ok
        failing = self.last_error is not None
        stale = failing or (age is not None and age > 2 * self.interval + 1)
        return Freshness(
            age=age,
            stale=stale,
            error=str(self.last_error) if failing else None,
            failures=self.failures,
            polling=self.running,
        )

    # ---- the loop -----------------------------------------------------------------

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            await self._until_due()
            await self.poll_once()

    async def _until_due(self) -> None:
        while True:
            if not self._paused and (self._triggered or self._clock() >= self._due_at):
                self._triggered = False
                return
            self._wake.clear()
            timeout = None if self._paused else max(0.0, self._due_at - self._clock())
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass

    async def poll_once(self) -> None:
        """One poll: fetch, record the outcome, schedule the next one."""
        self.running = True
        try:
            result = await self.fetch()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a poll failure must never end the loop
            error = exc if isinstance(exc, ServiceError) else BackendFailed(f"{type(exc).__name__}: {exc}")
            self.failures += 1
            self.last_error = error
            if self._on_error:
                self._on_error(error)
        else:
            self.failures = 0
            self.last_error = None
            self.last_ok = self._clock()
            self._on_result(result)
        finally:
            self.running = False
            self.polls += 1
            self._due_at = self._clock() + self.next_delay()
