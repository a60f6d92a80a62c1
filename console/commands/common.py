"""What every headless command shares: the global flags, settings or exit 2, services on a
fresh event loop (a ServiceError exits 1 with its message), output made inert, and the one
way an action runs from the command line (`act` and the per-area aliases)."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from console.resolved import Resolved
from console.settings import ConfigError, load_settings
from services.text import inert

if TYPE_CHECKING:
    from services.runbook import Action

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="TOML config file (default: the user's config dir).", show_default=False
    ),
]
YesOption = Annotated[bool, typer.Option("--yes", help="Confirm without asking.")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Preview and check; change nothing.")]
ConfirmOption = Annotated[
    str | None, typer.Option("--confirm", help="The target typed out: needed for destructive actions.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]

EXIT_UNKNOWN = 3  # the call was sent and its result is unknown


@dataclass(frozen=True)
class Globals:
    """The flags given before the command (`opsconsole --read-only orders retry ...`)."""

    config: Path | None = None
    read_only: bool = False
    dry_run: bool = False


def globals_of(ctx: typer.Context) -> Globals:
    root = ctx.find_root()
    return root.obj if isinstance(root.obj, Globals) else Globals()


def echo(text: object = "", *, err: bool = False) -> None:
    """Print a line whose text may come from a backend: control characters shown, never
    interpreted by the terminal."""
    typer.echo("\n".join(inert(line) for line in str(text).split("\n")), err=err)


def fail(lines: list[str], code: int) -> typer.Exit:
    for line in lines:
        echo(f"opsconsole: {line}", err=True)
    return typer.Exit(code)


def settings_or_exit(ctx: typer.Context, config: Path | None = None) -> Resolved:
    """Settings with the global flags applied, or exit 2 with one line per problem."""
    flags = globals_of(ctx)
    try:
        settings = load_settings(config or flags.config).resolved()
    except ConfigError as exc:
        raise fail([f"config: {line}" for line in exc.problems], 2) from None
    from services.text import mask_logs

    mask_logs(*settings.urls())
    return replace(settings, read_only=settings.read_only or flags.read_only)


def refuse_if_read_only(ctx: typer.Context, settings: Resolved, what: str) -> None:
    if settings.read_only:
        raise fail([f"{what}: refused, the console is read-only (--read-only or OPSCONSOLE_READ_ONLY)"], 1)


def with_services(settings: Resolved, work):
    """Run `work(services)` on a fresh event loop; a ServiceError exits with its message, 2
    when it is a setting to correct (a DSN asyncpg cannot use), else 1."""
    from console.wiring import build_services
    from services.errors import ServiceError

    services = build_services(settings)

    async def go():
        try:
            return await work(services)
        finally:
            await services.close()

    try:
        return asyncio.run(go())
    except ServiceError as exc:
        raise fail([str(exc)], 2 if getattr(exc, "invalid_setting", False) else 1) from None


def parse_sets(values: list[str] | None) -> dict[str, str]:
    """--set NAME=VALUE ... as a dict; exit 2 for one without '='."""
    raw: dict[str, str] = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise fail([f"--set {item!r}: expected NAME=VALUE"], 2)
        raw[name.strip()] = value
    return raw


def run_action(
    ctx: typer.Context,
    action: Action,
    selected: str,
    raw: dict[str, str],
    *,
    config: Path | None = None,
    yes: bool = False,
    dry_run: bool = False,
    confirm: str | None = None,
    as_json: bool = False,
) -> None:
    """Ask nothing that was not given; plan with the parsed inputs, show the preview, ask
    (unless --yes), run exactly that plan with the role check, claim and audit the TUI
    uses. Exit 0 when it went through (or the dry run held), 1 when it failed or was
    refused, 2 for bad input, 3 when the call was sent and its result is unknown."""
    from services.runbook import Actor, Confirmation, InputError, Runbook

    settings = settings_or_exit(ctx, config)
    dry_run = dry_run or globals_of(ctx).dry_run
    if settings.read_only:
        raise fail([f"{action.name}: refused, the console is read-only: no action can run"], 1)
    actor = Actor(settings.operator, settings.role, f"cli-{os.getpid()}-{uuid.uuid4().hex[:6]}",
                  read_only=settings.read_only, dry_run=dry_run)  # fmt: skip

    async def work(services):
        book = Runbook(services, actor, outcome_retry=30.0)
        target = await book.locate(action, selected)
        given = dict(raw)
        if action.target_input and action.target_input not in given:
            given[action.target_input] = selected
        for name, suggestion in (await book.suggest(action, target, given)).items():
            if name not in given and suggestion.default is not None:
                given[name] = suggestion.default
        try:
            params = action.parse(given)
        except InputError as exc:
            raise fail([f"{action.name}: {exc}"], 2) from None
        plan = await book.plan(action, target, params)
        out = not as_json
        if out:
            echo(f"{action.title} — {action.target_kind} {plan.target} (as {actor.operator}, {actor.role})")
            if plan.params:
                echo("with " + ", ".join(f"{k} = {v}" for k, v in action.shown_params(plan.params)))
            echo(plan.preview.summary)
            for call in plan.preview.calls:
                echo("  " + call.replace("\n", "\n  "))
            for warning in plan.preview.warnings:
                echo(f"! {warning}")
            if plan.refusal:
                echo(f"cannot run: {plan.refusal}")
        typed = plan.confirmation is Confirmation.TYPED
        if typed and not dry_run and not plan.refusal and (confirm or "").strip() != plan.typed_word:
            word = plan.typed_word
            said = f"{action.title} of {plan.target} needs its confirmation typed: pass --confirm {word}"
            raise fail([said], 2)
        if not (yes or dry_run or typed or plan.refusal):
            try:
                if not typer.confirm(f"{action.title}: {plan.target}?"):
                    return None
            except typer.Abort:
                return None
        progress = (lambda m: echo(f"… {m}", err=True)) if out else None
        return await book.run(plan, confirmed=confirm, progress=progress)

    outcome = with_services(settings, work)
    if outcome is None:
        raise fail(["nothing done"], 1)
    if as_json:
        typer.echo(json.dumps({"action": outcome.action, "target": outcome.target, "status": outcome.status,
                               "message": outcome.message, "detail": dict(outcome.detail)},
                              default=str, indent=2))  # fmt: skip
    else:
        echo(f"{outcome.status}: {outcome.message}")
        if outcome.secret:
            echo(f"shown once, not stored: {outcome.secret}")
    codes: dict[str, Any] = {"ok": 0, "dry-run": 0, "unknown": EXIT_UNKNOWN}
    raise typer.Exit(codes.get(outcome.status, 1))
