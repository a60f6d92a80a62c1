"""Other clients of the test database, as the Database area sees them: real sessions that
sleep, hold a transaction open or wait on one another's locks, run on their own event loop
in a thread so that a test (async or a CliRunner one) can look at them while they run.
`bot_dsn` is the same database as `agis_bot`, a login that is not a superuser (PostgreSQL
lets only superusers signal a superuser's backend)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

BOT_LOGIN = "agis_bot"


def bot_dsn(owner_dsn: str) -> str:
    """`owner_dsn`'s database as agis_bot (made once per cluster, may use the public schema)."""
    parts = urlsplit(owner_dsn)

    async def ensure() -> None:
        conn = await asyncpg.connect(owner_dsn)
        try:
            await conn.execute(
                f"DO $$ BEGIN CREATE ROLE {BOT_LOGIN} LOGIN; "
                "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
            )
            await conn.execute(f"GRANT ALL ON SCHEMA public TO {BOT_LOGIN}")
        finally:
            await conn.close()

    if _in_loop():  # an async test: its loop is busy running it
        _run_in_thread(ensure())
    else:
        asyncio.run(ensure())
    return urlunsplit(parts._replace(netloc=f"{quote(BOT_LOGIN)}@{parts.hostname}:{parts.port}"))


def _in_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _run_in_thread(coro) -> None:
    done: list[BaseException | None] = []
    thread = threading.Thread(target=lambda: done.append(_capture(coro)))
    thread.start()
    thread.join()
    if done and done[0] is not None:
        raise done[0]


def _capture(coro) -> BaseException | None:
    try:
        asyncio.run(coro)
    except BaseException as exc:  # handed to the caller's thread
        return exc
    return None


class Sessions:
    """Sessions on their own loop: `start(sql)` sends `sql` on a new connection and returns
    its pid once the server runs it; `run(pid, sql)` runs more on an open one."""

    def __init__(self, dsn: str):
        self.dsn = dsn
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.conns: dict[int, asyncpg.Connection] = {}
        self.tasks: dict[int, asyncio.Future] = {}

    def _call(self, coro, timeout: float = 30.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def open(self, dsn: str | None = None, *setup: str) -> int:
        """A new idle session (after running each of `setup`); returns its pid."""

        async def go() -> int:
            conn = await asyncpg.connect(dsn or self.dsn, server_settings={"application_name": "agis-bot"})
            for sql in setup:
                await conn.execute(sql)
            pid = conn.get_server_pid()
            self.conns[pid] = conn
            return pid

        return self._call(go())

    def send(self, pid: int, sql: str) -> None:
        """Send `sql` on session `pid` without waiting for it to end (its error is kept)."""

        async def go() -> None:
            self.tasks[pid] = asyncio.ensure_future(self.conns[pid].execute(sql))

        self._call(go())

    def start(self, sql: str, dsn: str | None = None, *setup: str, wait_state: str = "active") -> int:
        """A new session running `sql` (not awaited); returns its pid once pg_stat_activity
        shows it in `wait_state`."""
        pid = self.open(dsn, *setup)
        self.send(pid, sql)
        self.wait_for(pid, wait_state)
        return pid

    def state(self, pid: int) -> tuple[str | None, str | None]:
        async def go():
            conn = await asyncpg.connect(self.dsn)
            try:
                row = await conn.fetchrow(
                    "SELECT state, wait_event_type FROM pg_stat_activity WHERE pid = $1", pid
                )
            finally:
                await conn.close()
            return (row["state"], row["wait_event_type"]) if row else (None, None)

        return self._call(go())

    def wait_for(self, pid: int, state: str, timeout: float = 15.0) -> None:
        """Until session `pid` is in `state` ('active', 'idle in transaction', 'Lock' for a
        lock wait, 'gone')."""
        deadline = time.monotonic() + timeout
        while True:
            now, wait = self.state(pid)
            if (state == "gone" and now is None) or now == state or (state == "Lock" and wait == "Lock"):
                return
            assert time.monotonic() < deadline, f"session {pid} never became {state!r} (is {now!r}/{wait!r})"
            time.sleep(0.05)

    def outcome(self, pid: int, timeout: float = 15.0) -> BaseException | str:
        """What the statement sent on `pid` ended with: its status, or the error it raised."""

        async def go():
            try:
                return await asyncio.wait_for(asyncio.shield(self.tasks[pid]), timeout)
            except BaseException as exc:
                return exc

        return self._call(go(), timeout + 5)

    def close(self) -> None:
        async def go() -> None:
            for conn in self.conns.values():
                with contextlib.suppress(Exception):
                    conn.terminate()
            for task in self.tasks.values():
                task.cancel()
            await asyncio.sleep(0)

        with contextlib.suppress(Exception):
            self._call(go(), 10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def __enter__(self) -> Sessions:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
