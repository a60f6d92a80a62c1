"""The nodes area under a busy cluster: 5,000 pods and 500 gameservers, the API server
(in its own process) streaming 50 watch events a second. Prints the time to show the first
list, keypress to frame on the 5,000-row pods table (200 presses each of down and page
down), and the console process's CPU while it just watches. Asserts nothing about time."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from screens.live_table import LiveTable
from tests.bench.frames import FrameClock
from tests.conftest import wait_until
from tests.helpers import make_app

PODS, GAMESERVERS, RATE = 5000, 500, 50
PRESSES = int(os.environ.get("KUBE_BENCH_PRESSES", "200"))


@pytest.fixture
def busy_cluster(tmp_path):
    config = tmp_path / "kubeconfig"
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("kube_server.py")), str(config), str(PODS),
         str(GAMESERVERS)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )  # fmt: skip
    assert server.stdout.readline().strip() == "ready"
    try:
        yield server, config
    finally:
        server.stdin.close()
        server.wait(20)


def _command(server, line: str) -> str:
    server.stdin.write(line + "\n")
    server.stdin.flush()
    return server.stdout.readline().strip()


async def test_nodes_area_under_50_events_a_second(seeded_db, busy_cluster):
    server, config = busy_cluster
    app = make_app(seeded_db, refresh=3600, KUBECONFIG=str(config))
    async with app.run_test(size=(120, 40)) as pilot:
        clock = FrameClock(app)
        started = time.perf_counter()
        await pilot.press("3", "p")
        screen = app.screen
        table = screen.query_one("#pods-table", LiveTable)
        await wait_until(pilot, lambda: len(table.shown) == PODS, timeout=60)
        print(f"\n{PODS:,} pods and {GAMESERVERS} gameservers listed and shown in "
              f"{(time.perf_counter() - started) * 1000:.0f} ms")  # fmt: skip
        await pilot.pause(1.0)
        _command(server, f"churn {RATE}")
        events_before = sum(s.events for s in screen.watch.state.values())
        await pilot.pause(2.0)
        for key in ("down", "pagedown"):
            median, p95 = await clock.sample(pilot, key, PRESSES)
            print(f"{key:9} keypress to frame, {PODS:,}-row pods table at {RATE} events/s: "
                  f"median {median:.2f} ms, p95 {p95:.2f} ms")  # fmt: skip
        await pilot.press("home")
        # CPU of this process (the console; the API server runs in its own) while it watches.
        for label, tab in (("pods tab", "p"), ("agones tab", "g"), ("capacity tab", "c")):
            await pilot.press(tab)
            await pilot.pause(1.0)
            wall, cpu = time.perf_counter(), time.process_time()
            seen = sum(s.events for s in screen.watch.state.values())
            await asyncio.sleep(10)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            got = sum(s.events for s in screen.watch.state.values()) - seen
            print(f"CPU while watching ({label} shown): {100 * cpu / wall:.1f}% of one core, "
                  f"{got / wall:.0f} events/s received")  # fmt: skip
        total = sum(s.events for s in screen.watch.state.values()) - events_before
        assert total > 0
