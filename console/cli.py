"""The command line: the root command (the TUI when no command is given) with its global
flags, and one sub-command module per area under console/commands."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from console.commands import (
    actions,
    backup,
    board,
    check,
    db,
    incidents,
    nodes,
    orders,
    payments,
    pricing,
    sandbox,
    saves,
    system,
)
from console.commands.common import ConfigOption, Globals, settings_or_exit

cli = typer.Typer(
    name="opsconsole",
    help="Ops console for a game-server hosting business: orders, nodes, backups, incidents.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@cli.callback(invoke_without_command=True)
def main_command(
    ctx: typer.Context,
    config: ConfigOption = None,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Hide and block every action (every command honours it).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show previews and check preconditions; change nothing.")
    ] = False,
) -> None:
    """Open the console (the TUI) when no command is given."""
    ctx.obj = Globals(config, read_only, dry_run)
    if ctx.invoked_subcommand is None:
        from console.tui import run_tui

        run_tui(settings_or_exit(ctx), read_only=read_only, dry_run=dry_run)


for module in (
    system,
    orders,
    nodes,
    incidents,
    actions,
    sandbox,
    backup,
    saves,
    pricing,
    payments,
    db,
    check,
    board,
):
    module.register(cli)


def _register_audit() -> None:
    from console.commands.audit import audit_cli

    cli.add_typer(audit_cli, name="audit")


_register_audit()


def main() -> None:
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)
