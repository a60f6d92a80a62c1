"""Building the app the way console.cli does, for Pilot tests."""

from __future__ import annotations

from console.app import OpsConsole
from console.settings import Settings
from console.wiring import build_services
from screens.base import ShellContext


def make_app(
    dsn: str | None,
    *,
    refresh: float = 5.0,
    health: float = 15.0,
    operator: str = "alice",
    role: str = "oncall",
    environment: str = "staging",
    colour: str = "yellow",
    **settings: object,
) -> OpsConsole:
    values = {"DATABASE_URL": dsn} if dsn else {}
    services = build_services(Settings.isolated(**values, **settings).resolved())
    context = ShellContext(
        environment=environment,
        colour=colour,
        operator=operator,
        role=role,
        refresh=lambda _area: refresh,
    )
    return OpsConsole(services, context, health_interval=health)


def text_of(widget) -> str:
    """What a Static shows, as plain text (rich tables included)."""
    import io

    from rich.console import Console

    console = Console(width=200, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()
