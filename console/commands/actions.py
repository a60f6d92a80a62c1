"""`opsconsole actions` (every runbook action, from its declaration) and `opsconsole act
ACTION TARGET` (any of them, headless, with the same preview, role check, claim and audit
as the console)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from console.commands.common import (
    ConfigOption,
    ConfirmOption,
    DryRunOption,
    JsonOption,
    YesOption,
    echo,
    fail,
    parse_sets,
    run_action,
)


def actions_list(as_json: JsonOption = False) -> None:
    """Every runbook action: name, area, key, role, target, inputs, confirmation."""
    from services.actions import ALL_ACTIONS, AREA_OF

    if as_json:
        typer.echo(
            json.dumps([{**a.as_json(), "area": AREA_OF[n]} for n, a in ALL_ACTIONS.items()], indent=2)
        )
        return
    for name, a in ALL_ACTIONS.items():
        inputs = " ".join(f"{i.name}=" + ("…" if i.default is None else repr(i.default)) for i in a.inputs)
        echo(f"{name:<22} {AREA_OF[name]:<10} {a.key:<2} {a.role:<7} {a.selection_kind:<11} "
             f"{a.confirmation_for({}).value:<6} {inputs}")  # fmt: skip
        echo(f"{'':<22} {a.help}")


def act(
    ctx: typer.Context,
    action: Annotated[str, typer.Argument(help="The action's name (see `opsconsole actions`).")],
    target: Annotated[str, typer.Argument(help="What it acts on: an order id, a node, a deployment…")],
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="An input, NAME=VALUE (repeat for several).")
    ] = None,
    config: ConfigOption = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    confirm: ConfirmOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run one runbook action: preview, confirmation, role check, claim and audit as in the console."""
    from services.actions import ALL_ACTIONS

    declared = ALL_ACTIONS.get(action)
    if declared is None:
        raise fail([f"no action {action!r}; `opsconsole actions` lists them"], 2)
    run_action(ctx, declared, target, parse_sets(set_), config=config, yes=yes, dry_run=dry_run,
               confirm=confirm, as_json=as_json)  # fmt: skip


def register(cli: typer.Typer) -> None:
    cli.command("actions")(actions_list)
    cli.command("act")(act)
