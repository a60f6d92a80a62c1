"""The shell's resting state, as SVG snapshots, at 80x24 (an SSH window) and 120x40."""

from __future__ import annotations

import pytest

from tests.conftest import wait_until
from tests.helpers import make_app


async def settled(pilot) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: getattr(app.screen, "overview", None) is not None)
    await wait_until(
        pilot, lambda: "pg ●" in str(app.screen.query_one("#shell-badges").render()).replace("pg●", "pg ●")
    )
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_overview_shell(snap_compare, empty_db, size):
    assert snap_compare(make_app(empty_db), terminal_size=size, run_before=settled)


def _settled_on(key: str, ready):
    async def run_before(pilot) -> None:
        await settled(pilot)
        await pilot.press(key)
        await wait_until(pilot, lambda: ready(pilot.app.screen))
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_nodes_capacity(snap_compare, empty_db, size):
    import asyncio

    from screens.live_table import LiveTable
    from tests.test_nodes import _small_world

    asyncio.run(_small_world(empty_db))  # three nodes, two plans: every number hand-checkable
    ready = _settled_on("3", lambda s: len(s.query_one("#capacity-table", LiveTable).shown) == 3)
    assert snap_compare(make_app(empty_db), terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_incidents_without_alerts(snap_compare, empty_db, size):
    ready = _settled_on("4", lambda s: s._source_pollers["console"].freshness().age is not None)
    assert snap_compare(make_app(empty_db), terminal_size=size, run_before=ready)
