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
