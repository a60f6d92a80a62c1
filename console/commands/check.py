"""`opsconsole check`: the checklists headless. `check daily|weekly|monthly|quarterly` walks
the checklist (its open run, stored with the evidence as seen; a read-only console only looks)
and exits 1 when an automatic item fails, so cron and CI can run it; `answer` and `sign-off`
are the checklist actions; `handover` prints the Markdown for the team channel; `status` says
which checklist is due."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from console.commands.common import (
    ConfigOption,
    DryRunOption,
    JsonOption,
    YesOption,
    echo,
    fail,
    run_action,
    settings_or_exit,
    with_services,
)

if TYPE_CHECKING:
    from services.checklists import Run

check_cli = typer.Typer(
    help="The operations checklists: daily, weekly, monthly, quarterly; answer, sign-off, handover.",
    no_args_is_help=True,
)
MARK = {
    "pass": "✓ pass",
    "warn": "! warn",
    "fail": "✗ FAIL",
    "not available": "? n/a",
    "open": "· open",
    "manual": "· manual",
}


def _print_run(run: Run) -> None:
    from services.checklist_items import find_item

    where = f"run {run.id}" if run.stored else "not recorded (read-only)"
    signed = f", signed off by {run.signed_off_by}" if run.signed else ""
    echo(f"{run.checklist.capitalize()} checklist ({where}, started by {run.started_by}{signed})")
    for i in run.items:
        echo(f"  {MARK.get(i.shown_state, i.shown_state):<8}  {i.title}")
        if i.figure:
            echo(f"            {i.figure}")
        if i.note:
            echo(f"            {i.answered_by}: {i.note}")
        if i.carried_from:
            echo(f"            carried over since run {i.carried_from}")
        item = find_item(run.checklist, i.item)
        if i.state == "fail" and item is not None and item.fix:
            echo(f"            fix: the {item.fix[0]} area: {item.fix[1]}")
    failed, manual = len(run.failed), sum(1 for i in run.items if i.shown_state == "manual")
    echo(
        f"{len(run.items)} items: {failed} failed, {len(run.unresolved)} unresolved, "
        f"{manual} for you to answer (opsconsole check answer {run.checklist}/ITEM)"
    )


def _walker(checklist: str):
    def command(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
        settings = settings_or_exit(ctx, config)
        run = with_services(
            settings, lambda s: s.checklists.walk(checklist, settings.operator, store=not settings.read_only)
        )
        if as_json:
            typer.echo(json.dumps(run.as_json(), indent=2, default=str))
        else:
            _print_run(run)
        raise typer.Exit(1 if run.failed else 0)

    command.__doc__ = (
        f"Walk the {checklist} checklist: every automatic item checked now and stored with its "
        "evidence in the open run (started if none, unresolved items carried over). Exit 1 when "
        "an automatic item fails; manual items are reported as `manual` and never fail it."
    )
    return command


for _name in ("daily", "weekly", "monthly", "quarterly"):
    check_cli.command(_name)(_walker(_name))


@check_cli.command("answer")
def check_answer(
    ctx: typer.Context,
    item: Annotated[str, typer.Argument(help="CHECKLIST/ITEM, e.g. weekly/support-tickets.")],
    not_done: Annotated[
        bool, typer.Option("--not-done", help="It was not done (say why in --note).")
    ] = False,
    note: Annotated[str, typer.Option("--note", help="A note for the run and the handover.")] = "",
    config: ConfigOption = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
) -> None:
    """Answer a manual item of the open run: done (the default) or --not-done, with a note."""
    from services.actions import ALL_ACTIONS
    from services.checklist_actions import parse_target

    try:
        parse_target(item)
    except ValueError as exc:
        raise fail([f"check answer: {exc}"], 2) from None
    raw = {"done": "no" if not_done else "yes", "note": note}
    run_action(ctx, ALL_ACTIONS["checklist_answer"], item, raw, config=config, yes=yes, dry_run=dry_run)


@check_cli.command("sign-off")
def check_sign_off(
    ctx: typer.Context,
    checklist: Annotated[str, typer.Argument(help="daily, weekly, monthly or quarterly.")],
    note: Annotated[str, typer.Option("--note", help="A note for the handover.")] = "",
    config: ConfigOption = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
) -> None:
    """Sign the open run off: it cannot change afterwards; unresolved items carry over."""
    from services.actions import ALL_ACTIONS
    from services.checklist_items import CHECKLISTS

    if checklist not in CHECKLISTS:
        raise fail([f"check sign-off: no checklist {checklist!r}: {', '.join(CHECKLISTS)}"], 2)
    run_action(
        ctx,
        ALL_ACTIONS["checklist_sign_off"],
        checklist,
        {"note": note},
        config=config,
        yes=yes,
        dry_run=dry_run,
    )


@check_cli.command("handover")
def check_handover(ctx: typer.Context, config: ConfigOption = None) -> None:
    """The handover in Markdown, to paste into the team channel: which checklist is due, and every
    unresolved item of each checklist's latest run with its evidence and notes."""
    settings = settings_or_exit(ctx, config)
    typer.echo(with_services(settings, lambda s: s.checklists.handover()), nl=False)


@check_cli.command("status")
def check_status(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Which checklist is due or overdue (from its last sign-off). Exit 1 when one is overdue."""
    settings = settings_or_exit(ctx, config)
    dues = with_services(settings, lambda s: s.checklists.due())
    if as_json:
        typer.echo(json.dumps([d.as_json() for d in dues], indent=2))
    else:
        for d in dues:
            echo(d.line())
    raise typer.Exit(1 if any(d.state == "overdue" for d in dues) else 0)


def register(cli: typer.Typer) -> None:
    cli.add_typer(check_cli, name="check")
