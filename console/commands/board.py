"""`opsconsole board` (the incident commander's read-only board; `--json`, its tiles once) and
`opsconsole serve` (the board, or the whole console, in a browser behind a token)."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from console.commands.common import ConfigOption, JsonOption, echo, fail, globals_of, settings_or_exit

if TYPE_CHECKING:
    from console.resolved import Resolved
    from services.board import BoardFeed
    from services.bundle import Services


def _feed(services: Services, settings: Resolved) -> BoardFeed:
    from services.board import BoardFeed

    return BoardFeed(services, environment=settings.environment_name, colour=settings.environment_colour,
                     interval=settings.refresh_for("board"))  # fmt: skip


def board(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """The incident commander's board: firing alerts, open incidents and their clocks, stuck and
    error orders, node headroom, webhooks, backups, the database, other consoles' actions; each
    tile with its data age. Read-only (q quits, r refreshes). --json prints the tiles once."""
    settings = settings_or_exit(ctx, config)
    if as_json:
        from console.commands.common import with_services

        snapshot = with_services(settings, lambda services: _feed(services, settings).once())
        typer.echo(json.dumps(snapshot.as_json(), indent=2, default=str))
        return
    from console.board_app import BoardApp
    from console.tui import require_terminal
    from console.wiring import build_services

    require_terminal()
    services = build_services(settings)
    BoardApp(_feed(services, settings), services=services).run()


def serve(
    ctx: typer.Context,
    board_only: Annotated[
        bool, typer.Option("--board", help="Serve the board (viewer role) instead of the whole console.")
    ] = False,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (other machines: only behind TLS).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0: any free one).")] = 8000,
    max_sessions: Annotated[
        int, typer.Option("--max-sessions", min=1, max=500, help="Browser tabs served at once.")
    ] = 32,
    config: ConfigOption = None,
) -> None:
    """Serve the board (or, for an operator configured in [operators], the whole console) to a
    browser with textual-serve. Nothing is served without the token (printed once at start, or
    OPSCONSOLE_SERVE_TOKEN): a tab's process starts only after it was checked. Board tabs run as
    viewers with no secret in their environment and read one data process, never the backends.
    When the output is not a terminal (a service, a log) the token must come from
    OPSCONSOLE_SERVE_TOKEN and is not printed."""
    import asyncio

    from console.serve import (
        TOKEN_ENV,
        TokenError,
        board_child_env,
        board_command,
        console_child_env,
        console_command,
        loopback,
        serve_async,
        serve_token,
    )

    settings = settings_or_exit(ctx, config)
    try:
        token = serve_token()
    except TokenError as exc:
        raise fail([f"serve: {exc}"], 2) from None
    # A start line printed to a file or a journal would keep the token there: the token is
    # printed only to a terminal; otherwise it must come from the environment.
    on_terminal = sys.stdout.isatty()
    if not on_terminal and not os.environ.get(TOKEN_ENV):
        raise fail([f"serve: the output is not a terminal, so a new token would be printed into a log: "
                    f"set {TOKEN_ENV} (16 or more characters) instead"], 2)  # fmt: skip
    if not board_only and settings.role == "viewer":
        said = (
            f"serve: the whole console is served only for an operator in [operators] "
            f"({settings.operator} is a viewer); `opsconsole serve --board` serves the board"
        )
        raise fail([said], 2)
    what = "the board" if board_only else f"the console as {settings.operator} ({settings.role})"

    def started(url: str, _server) -> None:
        # The one line that shows the token.
        shown = url if on_terminal else url.replace(token, f"<{TOKEN_ENV}>")
        echo(f"opsconsole: serving {what} on {shown}  (Ctrl+C stops)")
        if not loopback(host):
            echo("opsconsole: warning: listening beyond this machine over plain HTTP: the token "
                 "crosses the network in clear; put TLS in front", err=True)  # fmt: skip

    extra = {}
    flags = globals_of(ctx)
    if config or flags.config:
        extra["OPSCONSOLE_CONFIG"] = os.path.abspath(config or flags.config)
    if settings.read_only:
        extra["OPSCONSOLE_READ_ONLY"] = "1"

    async def run() -> None:
        if board_only:
            from console.wiring import build_services

            services = build_services(settings)
            await services.open()
            try:
                await serve_async(board_command(), board_child_env(), token=token, host=host, port=port,
                                  title="opsconsole board", max_sessions=max_sessions,
                                  feed=_feed(services, settings), started=started)  # fmt: skip
            finally:
                await services.close()
            return
        await serve_async(console_command(), console_child_env(**extra), token=token, host=host, port=port,
                          title="opsconsole", max_sessions=max_sessions, started=started)  # fmt: skip

    import logging

    logging.basicConfig(level=logging.WARNING, format="opsconsole: %(message)s")
    try:
        asyncio.run(run())
    except OSError as exc:
        raise fail([f"serve: cannot listen on {host}:{port}: {exc.strerror or exc}"], 1) from None
    except KeyboardInterrupt:
        pass


def register(cli: typer.Typer) -> None:
    cli.command()(board)
    cli.command()(serve)
