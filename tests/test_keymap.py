"""The [keymap] table rebinds the console's keys: an area switch and help move to the keys
the operator chose, the old keys stop doing it, and the header names the new key."""

from __future__ import annotations

from console.app import OpsConsole
from console.settings import Settings
from console.wiring import build_services
from screens.backends import BackendsScreen
from screens.base import ShellContext
from screens.help import HelpScreen
from screens.overview import OverviewScreen
from tests.conftest import wait_until


def app_with_keymap(dsn: str, keymap: dict[str, str]) -> OpsConsole:
    resolved = Settings.isolated(DATABASE_URL=dsn, keymap=keymap).resolved()
    context = ShellContext(environment="staging", colour="yellow", operator="alice", role="oncall")
    return OpsConsole(build_services(resolved), context, keymap=resolved.keymap)


async def test_a_keymap_rebinds_an_area_switch_and_help(empty_db):
    app = app_with_keymap(empty_db, {"area.backends": "b", "help": "f1"})
    # 160 columns: the header has room for every area's name (narrower, only the keys and this area's).
    async with app.run_test(size=(160, 40)) as pilot:
        overview = app.screen
        assert isinstance(overview, OverviewScreen)
        await wait_until(pilot, lambda: overview.overview is not None)
        assert "b Backends" in str(overview.query_one("#shell-identity").render())
        await pilot.press("minus")  # the default key no longer switches
        assert app.screen is overview
        await pilot.press("question_mark")  # nor opens help
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("b")
        assert isinstance(app.screen, BackendsScreen)
        await pilot.press("1")  # the keys not rebound still work
        assert app.screen is overview
