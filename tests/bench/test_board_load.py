"""The served board's load on the database: transactions committed (pg_stat_database) in a
fixed window with 1 browser session open against 20 (each a websocket to `opsconsole serve
--board`, so each a tab process drawing the board). The issue's target: 20 sessions add at most
10 % to the load of one, because only the one data process polls. Prints medians and the ratio."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import statistics
import subprocess
import sys
import time

import aiohttp
import asyncpg

from tests.conftest import SEEDED_TEMPLATE, _clone, as_runtime
from tests.test_serve import descendants

COMMITS = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
WINDOW = 20.0  # seconds measured, once every session has drawn the board (the data process polls each second)
RUNS = 3
SESSIONS = (1, 20)


async def commits(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(COMMITS)
    finally:
        await conn.close()


async def drawn(http: aiohttp.ClientSession, base: str) -> aiohttp.ClientWebSocketResponse:
    """One session: a websocket whose tab process has drawn the board's tiles."""
    ws = await http.ws_connect(f"{base}/ws?width=120&height=40")
    screen = b""
    deadline = time.monotonic() + 120
    while b"CONSOLES" not in screen or b"stuck" not in screen:
        message = await ws.receive(timeout=max(deadline - time.monotonic(), 0.1))
        if message.type == aiohttp.WSMsgType.BINARY:
            screen += message.data
        elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            raise AssertionError("a session closed before it drew")

    async def drain() -> None:  # keep reading, as a browser does, so the tab never blocks
        async for _ in ws:
            pass

    ws._drain = asyncio.get_running_loop().create_task(drain())  # type: ignore[attr-defined]
    return ws


async def measure(base: str, url: str, owner_dsn: str, sessions: int) -> tuple[float, float]:
    """(commits per second in the window, seconds it took to open the sessions)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        await (await http.get(url)).read()  # the cookie
        started = time.monotonic()
        sockets = await asyncio.gather(*(drawn(http, base) for _ in range(sessions)))
        opened = time.monotonic() - started
        await asyncio.sleep(2.0)  # the tabs' start-up settles
        before = await commits(owner_dsn)
        await asyncio.sleep(WINDOW)
        after = await commits(owner_dsn)
        for ws in sockets:
            await ws.close()
            ws._drain.cancel()
    return (after - before - 1) / WINDOW, opened  # the first read's own transaction is in `after`


def test_twenty_served_sessions_against_one(pg_cluster, tmp_path):
    clone = _clone(pg_cluster, SEEDED_TEMPLATE)
    owner = next(clone)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSCONSOLE_", "DATABASE_URL"))}
    token = os.urandom(16).hex()
    config = tmp_path / "config.toml"
    config.write_text("[refresh]\nboard = 1.0\n")  # each source polled every second: 20 polls a window
    env.update(DATABASE_URL=as_runtime(owner), OPSCONSOLE_CONFIG=str(config), OPSCONSOLE_SERVE_TOKEN=token)
    proc = subprocess.Popen([sys.executable, "-m", "console", "serve", "--board", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        found = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=", proc.stdout.readline())
        assert found
        base, url = found[1], f"{found[1]}/?token={token}"
        results: dict[int, list[float]] = {n: [] for n in SESSIONS}
        opening: dict[int, list[float]] = {n: [] for n in SESSIONS}
        for run in range(RUNS):
            for n in SESSIONS:
                rate, opened = asyncio.run(measure(base, url, owner, n))
                deadline = time.monotonic() + 30
                while descendants(proc.pid) and time.monotonic() < deadline:  # every tab gone first
                    time.sleep(0.2)
                results[n].append(rate)
                opening[n].append(opened)
                print(f"\nrun {run + 1}: {n:>2} sessions: {rate:6.2f} commits/s over {WINDOW:.0f} s "
                      f"(opened and drawn in {opened:.1f} s)", end="")  # fmt: skip
        one, twenty = (statistics.median(results[n]) for n in SESSIONS)
        print(f"\nmedian of {RUNS}: 1 session {one:.2f} commits/s, 20 sessions {twenty:.2f} commits/s; "
              f"ratio {twenty / one:.3f} ({(twenty / one - 1) * 100:+.1f} %; target ≤ +10 %); "
              f"20 sessions opened in {statistics.median(opening[20]):.1f} s (median)")  # fmt: skip
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        next(clone, None)
