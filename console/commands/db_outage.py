"""`opsconsole db outage`: the AGIS manual's Database Outage runbook, one confirmed step at a
time, every step on the open incident's timeline: the scaling through the runbook actions
(audited, so on the timeline), what was found, fixed, verified and watched as its notes."""

from __future__ import annotations

from typing import Annotated

import typer

from console.commands.common import (
    ConfigOption,
    DryRunOption,
    echo,
    fail,
    run_action,
    settings_or_exit,
    with_services,
)


def _action(name: str):
    from services.actions import ALL_ACTIONS

    return ALL_ACTIONS[name]


def _step_ran(
    ctx, name: str, target: str, raw: dict[str, str], *, config, dry_run: bool, confirm=None
) -> None:
    """Run one action of a step (its confirmation was the step's); stop the runbook when it
    did not go through."""
    try:
        run_action(ctx, _action(name), target, raw, config=config, yes=True, dry_run=dry_run, confirm=confirm)
    except typer.Exit as done:
        if done.exit_code:
            said = f"the runbook stopped: {name} did not go through (the steps before are on the timeline)"
            raise fail([said], done.exit_code) from None


def _ask(question: str) -> bool:
    try:
        return typer.confirm(question, default=False)
    except typer.Abort:
        return False


def outage(
    ctx: typer.Context,
    bot: Annotated[str, typer.Option("--bot", help="The bot's deployment, scaled to 0 first.")] = "agis-bot",
    namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="The bot's namespace.")] = None,
    bot_replicas: Annotated[
        int | None, typer.Option("--bot-replicas", min=1, help="Replicas to scale back to (default: as now).")
    ] = None,
    incident: Annotated[
        int | None, typer.Option("--incident", help="The open incident (default: the only one).")
    ] = None,
    watch_seconds: Annotated[
        float, typer.Option("--watch-seconds", min=1, max=3600, help="How long the last step watches.")
    ] = 120.0,
    config: ConfigOption = None,
    dry_run: DryRunOption = False,
) -> None:
    """The Database Outage runbook: scale the bot to 0, investigate, fix, verify, scale back, watch."""
    from services.db_outage import STEPS, investigate, verify, watch

    settings = settings_or_exit(ctx, config)
    if settings.read_only:
        raise fail(["db outage: refused, the console is read-only: no action can run"], 1)

    async def where(services):
        open_ = await services.incidents.open_incidents()
        if incident is not None:
            found = await services.incidents.get(incident)
            chosen = [found] if found is not None and found.open else []
        else:
            chosen = open_
        replicas = None
        if services.kube.configured:
            ns = namespace or services.kube.where(None)[1]
            found = await services.kube.read_deployment(ns, bot, None)
            if found is None:
                raise fail([f"there is no deployment {bot} in namespace {ns}: give --bot / --namespace"], 2)
            replicas = int(found.desired)
        return chosen, replicas

    chosen, before = with_services(settings, where)
    if incident is not None and not chosen:
        raise fail([f"INC-{incident} is not an open incident"], 2)
    if len(chosen) > 1:
        raise fail(["several incidents are open: pass --incident ID (" +
                    ", ".join(f"INC-{i.id} {i.title}" for i in chosen) + ")"], 2)  # fmt: skip
    if not chosen:
        echo("No incident is open: the runbook's steps go on an incident's timeline.")
        if not _ask("Declare a P0 incident 'Database outage' now?"):
            raise fail(["nothing done"], 1)
        _step_ran(
            ctx, "declare_incident", "Database outage", {"severity": "P0"}, config=config, dry_run=dry_run
        )
        chosen, _ = with_services(settings, where)
        if not chosen:
            raise fail(["the incident was not declared (a dry run declares nothing)"], 1)
    inc = chosen[0]
    after = bot_replicas or before or 1
    where_raw = {"namespace": namespace} if namespace else {}

    def note(text: str) -> None:
        _step_ran(ctx, "incident_note", str(inc.id), {"text": text}, config=config, dry_run=dry_run)

    echo(f"Database outage runbook (AGIS manual) on INC-{inc.id} {inc.title} ({inc.severity}); "
         "each step asks once and goes on its timeline:")  # fmt: skip
    for number, (_key, title) in enumerate(STEPS, start=1):
        echo(f"  {number}. {title}")

    echo("\n— step 1: scale the bot to 0")
    if before is None:
        echo("Kubernetes is not configured (KUBECONFIG): scale the bot to 0 by hand.")
        if not _ask("Is the bot at 0 replicas?"):
            raise fail(["stopped before step 1"], 1)
        note("step 1: the bot was scaled to 0 by hand (stop new writes)")
    elif before == 0:
        echo(f"deployment {bot} is already at 0: skipped")
    else:
        typed = (
            ""
            if dry_run
            else typer.prompt(f"type {bot} to scale it to 0 (anything else stops here)", default="")
        )
        if not dry_run and typed.strip() != bot:
            raise fail(["stopped before step 1: not confirmed"], 1)
        to_zero = {**where_raw, "replicas": "0"}
        _step_ran(
            ctx, "scale_deployment", bot, to_zero, config=config, dry_run=dry_run, confirm=typed or None
        )

    echo("\n— step 2: investigate (disk? connection limit?)")
    try:
        figures = with_services(settings, investigate).lines()
    except typer.Exit:
        figures = ["the database does not answer (see the line above): that is the finding"]
    for line in figures:
        echo(f"  {line}")
    if not _ask(f"Put these figures on INC-{inc.id}'s timeline?"):
        raise fail(["stopped at step 2"], 1)
    note("step 2, investigated: " + "; ".join(figures))

    echo("\n— step 3: fix the root cause")
    echo("  (expand the disk, raise max_connections, or end runaway sessions: opsconsole db terminate PID)")
    fixed = typer.prompt("What was done? (it goes on the timeline; empty stops here)", default="").strip()
    if not fixed:
        raise fail(["stopped at step 3"], 1)
    note(f"step 3, fixed: {fixed}")

    echo("\n— step 4: verify the database's health")
    verdict = with_services(settings, verify)
    for line in verdict.lines:
        echo(f"  {line}")
    if not verdict.ok:
        note("step 4, verify FAILED: " + "; ".join(verdict.lines))
        raise fail(["the database is not healthy yet: fix it and run the runbook again"], 1)
    if not _ask(f"Healthy. Put the checks on INC-{inc.id}'s timeline and go on?"):
        raise fail(["stopped at step 4"], 1)
    note("step 4, verified: " + "; ".join(verdict.lines))

    echo(f"\n— step 5: scale the bot back up to {after}")
    if before is None:
        echo("Kubernetes is not configured: scale the bot back up by hand.")
        if not _ask("Is the bot back up?"):
            raise fail(["stopped at step 5"], 1)
        note("step 5: the bot was scaled back up by hand")
    else:
        if not _ask(f"Scale deployment {bot} to {after}?"):
            raise fail(["stopped at step 5"], 1)
        _step_ran(ctx, "scale_deployment", bot, {**where_raw, "replicas": str(after)}, config=config,
                  dry_run=dry_run)  # fmt: skip

    echo(f"\n— step 6: watch for errors ({watch_seconds:g} s)")
    if not _ask("Watch now?"):
        raise fail(["stopped at step 6"], 1)
    watched = with_services(
        settings, lambda s: watch(s, watch_seconds, say=lambda m: echo(f"  … {m}", err=True))
    )
    for line in watched.lines:
        echo(f"  {line}")
    note("step 6, watched: " + "; ".join(watched.lines))
    echo(f"\nthe runbook is done; INC-{inc.id} stays open until it is resolved and its post-mortem written")
    if not watched.ok:
        raise fail(["errors while watching: look at them before resolving the incident"], 1)
