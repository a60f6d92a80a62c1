"""The demo database's other clients, so the Database area has something to show: the bot's
idle connection pool, a nightly report running a long query, and a psql session someone
left idle in a transaction. Each comes back a while after it is cancelled or terminated
(the report restarts its query, the forgotten session is opened again), as real ones do."""

from __future__ import annotations

import asyncio
import contextlib
import threading

import asyncpg

BOT_LOGIN = "agis_bot"
POOL = 6
REPORT = "SELECT pg_sleep(900) /* nightly revenue report: orders by game and plan */"
FORGOTTEN = ("BEGIN", "SELECT count(*) FROM orders WHERE status = 'active'")


async def bot_login(owner_dsn: str, password: str) -> None:
    """The bot's login (not a superuser: the console may signal it), reading the orders."""
    conn = await asyncpg.connect(owner_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", BOT_LOGIN)
        verb = "ALTER" if exists else "CREATE"
        # Role statements take no parameters: format() quotes the name and the password.
        statement = await conn.fetchval("SELECT format($1, $2::text, $3::text)",
                                        f"{verb} ROLE %I LOGIN PASSWORD %L", BOT_LOGIN, password)  # fmt: skip
        await conn.execute(statement)
        await conn.execute(f"GRANT SELECT ON orders TO {BOT_LOGIN}")
    finally:
        await conn.close()


class DbClients:
    """The clients, on an event loop of their own in a daemon thread; `stop()` closes them."""

    def __init__(self, dsn: str, *, comeback: float = 30.0):
        self.dsn = dsn
        self.comeback = comeback
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="demo-db-clients", daemon=True)
        self.tasks: list[asyncio.Future] = []
        self.conns: list[asyncpg.Connection] = []

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)

    async def _connect(self, application: str) -> asyncpg.Connection:
        conn = await asyncpg.connect(self.dsn, server_settings={"application_name": application})
        self.conns.append(conn)
        return conn

    async def _start(self) -> None:
        for _ in range(POOL):
            await (await self._connect("agis-bot")).execute("SELECT 1")
        self.tasks += [asyncio.ensure_future(self._report()), asyncio.ensure_future(self._forgotten())]

    async def _report(self) -> None:
        conn = None
        while True:
            with contextlib.suppress(asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
                if conn is None or conn.is_closed():
                    conn = await self._connect("agis-reports")
                await conn.execute(REPORT)
            await asyncio.sleep(self.comeback)  # cancelled or terminated: the report runs again later

    async def _forgotten(self) -> None:
        while True:
            with contextlib.suppress(asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
                conn = await self._connect("psql")
                ended = asyncio.Event()
                conn.add_termination_listener(lambda _conn, ended=ended: ended.set())
                for sql in FORGOTTEN:
                    await conn.execute(sql)
                await ended.wait()  # until someone terminates it
            await asyncio.sleep(self.comeback * 2)

    def stop(self) -> None:
        async def close() -> None:
            for task in self.tasks:
                task.cancel()
            for conn in self.conns:
                conn.terminate()

        if self.thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
