"""Opening the TUI: the terminal check and the App built from resolved settings (used by
the fast path in console.main, the root command in console.cli and the demo)."""

from __future__ import annotations

import sys

from console.resolved import Resolved


class NoTerminal(SystemExit):
    """The TUI was started without a terminal to read keys from."""


def require_terminal() -> None:
    """Exit 2 with a pointer to the headless commands when stdin is not a terminal: with no
    keys to read the app could neither be used nor quit, and would only burn CPU."""
    if not sys.stdin.isatty():
        print(
            "opsconsole: the console needs a terminal (stdin is not one); "
            "for scripts use the headless commands, e.g. `opsconsole orders --json`",
            file=sys.stderr,
        )
        raise NoTerminal(2)


def run_tui(settings: Resolved, *, read_only: bool, dry_run: bool) -> None:
    require_terminal()
    from services.text import mask_logs

    mask_logs(*settings.urls())
    from console.app import OpsConsole
    from console.wiring import build_services
    from screens.base import ShellContext

    context = ShellContext(
        environment=settings.environment_name,
        colour=settings.environment_colour,
        operator=settings.operator,
        role=settings.role,
        read_only=read_only or settings.read_only,
        dry_run=dry_run,
        refresh=settings.refresh_for,
    )
    health = settings.refresh_for("health")
    OpsConsole(build_services(settings), context, health_interval=health, keymap=settings.keymap).run()
