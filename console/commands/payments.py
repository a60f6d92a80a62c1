"""`opsconsole payments`: the Payments area headless. Stripe's webhook endpoints, the checkout
events of a period with the webhook success rate, and the reconciliation of paid checkout
sessions against credit_transactions (the AGIS manual's "Payment Webhook Failure"); `resend`
and `credit` through the same runbook actions as the screen, `credit --all` for everything
owed with one confirmation."""

from __future__ import annotations

import json
import os
import uuid
from typing import TYPE_CHECKING, Annotated

import typer

from console.commands.common import (
    ConfigOption,
    ConfirmOption,
    DryRunOption,
    JsonOption,
    YesOption,
    echo,
    fail,
    globals_of,
    run_action,
    settings_or_exit,
    with_services,
)

if TYPE_CHECKING:
    from services.payments_model import Deliveries, Reconciliation

payments_cli = typer.Typer(
    help="Stripe webhooks and payments: endpoints, events, reconcile, resend, credit.", no_args_is_help=True
)

SinceOption = Annotated[
    str, typer.Option("--since", help="The period: 24h, 7d or 30d (Stripe keeps events 30 days).")
]


def _period(value: str) -> str:
    from services.payments_model import parse_since

    try:
        return parse_since(value)
    except ValueError as exc:
        raise fail([f"payments: {exc}"], 2) from None


def _age(seconds: float) -> str:
    from datetime import timedelta

    from services.text import human_age

    return human_age(timedelta(seconds=seconds))


@payments_cli.command("endpoints")
def payments_endpoints(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every webhook endpoint: url, status, the events it gets, API version. Exits 1 when one
    is disabled (Stripe stopped delivering to it)."""
    settings = settings_or_exit(ctx, config)
    endpoints = with_services(settings, lambda s: s.reconcile.endpoints())
    if as_json:
        typer.echo(json.dumps([e.as_json() for e in endpoints], indent=2))
    else:
        if not endpoints:
            echo("no webhook endpoint: Stripe delivers no event to the bot")
        for e in endpoints:
            state = "DISABLED" if e.disabled else e.status
            echo(f"{e.id}  {state:<8}  {e.url}")
            echo(f"    events: {', '.join(e.enabled_events)} · API {e.api_version or '(account default)'}")
    raise typer.Exit(1 if any(e.disabled for e in endpoints) or not endpoints else 0)


def _print_deliveries(d: Deliveries) -> None:
    rate = "no events" if d.success_rate is None else f"{d.success_rate:.1f} %"
    echo(
        f"checkout events, last {d.period}: {len(d.events):,} · undelivered {len(d.failed):,} · "
        f"webhook success rate {rate}"
    )
    oldest = d.oldest_undelivered
    if oldest is not None:
        left = d.resend_left(oldest).total_seconds()
        window = f"resendable for {_age(left)} more" if left > 0 else "past Stripe's 30-day resend window"
        echo(
            f"oldest undelivered: {oldest.event_id} ({_age((d.now - oldest.created).total_seconds())} ago; "
            f"{window})"
        )
    if d.failure_rate is not None:
        echo(f"bot webhook failures (Prometheus, 1 h rate): {d.failure_rate * 3600:.1f}/hour")
    else:
        echo(f"bot webhook failures (Prometheus): unknown: {d.failure_rate_error}")


@payments_cli.command("events")
def payments_events(
    ctx: typer.Context,
    since: SinceOption = "24h",
    config: ConfigOption = None,
    as_json: JsonOption = False,
    failed_only: Annotated[bool, typer.Option("--failed", help="Only the undelivered events.")] = False,
) -> None:
    """The period's checkout.session.completed and async_payment_succeeded events, every page,
    with their delivery state, the success rate and the bot's failure rate beside it."""
    period = _period(since)
    settings = settings_or_exit(ctx, config)
    found = with_services(settings, lambda s: s.reconcile.deliveries(period))
    if as_json:
        body = found.as_json()
        if not failed_only:
            body["events_list"] = [e.as_json() for e in found.events]
        typer.echo(json.dumps(body, indent=2))
        return
    _print_deliveries(found)
    failed = {d.event_id for d in found.failed}
    for d in found.failed if failed_only else found.events:
        state = "UNDELIVERED" if d.event_id in failed else "delivered"
        echo(
            f"{d.created:%Y-%m-%d %H:%M}  {state:<11}  {d.event_id}  {d.type.rpartition('.')[2]:<24} "
            f"{d.session.id}"
        )


def _print_reconciliation(r: Reconciliation) -> None:
    echo(
        f"last {r.period}: {r.sessions:,} checkout sessions, {r.paid:,} paid, "
        f"{len(r.owed):,} without credits ({r.credits_owed:,} credits owed), "
        f"{len(r.awaiting):,} awaiting an async payment"
    )
    if r.owed:
        echo(f"{'session':<34} {'user':<28} {'amount':>13} {'credits':>8} {'age':>10}  event")
    for o in r.owed:
        s = o.session
        who = o.email or s.user_id or "?"
        event = o.undelivered or "(none undelivered)"
        if o.undelivered and not o.resendable:
            event += " (past 30 days)"
        echo(
            f"{s.id[:34]:<34} {who[:28]:<28} {s.amount / 100:>9,.2f} {s.currency.upper()[:3]:<3} "
            f"{s.credits:>8,} {_age(o.age.total_seconds()):>10}  {event}"
        )
    echo(r.advice())


@payments_cli.command("reconcile")
def payments_reconcile(
    ctx: typer.Context, since: SinceOption = "24h", config: ConfigOption = None, as_json: JsonOption = False
) -> None:
    """Every paid checkout session of the period with no matching purchase credit (matched on
    the payment intent or a recorded session/event id); unpaid async sessions are not owed.
    Exits 1 when anything is owed."""
    period = _period(since)
    settings = settings_or_exit(ctx, config)
    found = with_services(settings, lambda s: s.reconcile.reconciliation(period))
    if as_json:
        typer.echo(json.dumps(found.as_json(), indent=2))
    else:
        _print_reconciliation(found)
    raise typer.Exit(1 if found.owed else 0)


@payments_cli.command("resend")
def payments_resend(
    ctx: typer.Context,
    event_id: Annotated[str, typer.Argument(help="The event (evt_...) to send to its endpoint again.")],
    config: ConfigOption = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Resend a checkout event to the endpoints that want it (the runbook: under 50
    undelivered, within Stripe's 30 days); the same action as > in the console."""
    from services.actions import ALL_ACTIONS
    from services.payments_model import event_id as parse_event

    try:
        event = parse_event(event_id)
    except ValueError as exc:
        raise fail([f"payments resend: {exc}"], 2) from None
    run_action(
        ctx,
        ALL_ACTIONS["resend_webhook"],
        event,
        {},
        config=config,
        yes=yes,
        dry_run=dry_run,
        as_json=as_json,
    )


@payments_cli.command("credit")
def payments_credit(
    ctx: typer.Context,
    session_id: Annotated[
        str | None, typer.Argument(help="The paid checkout session (cs_...) to credit its user for.")
    ] = None,
    all_owed: Annotated[
        bool, typer.Option("--all", help="Credit every session `reconcile --since` lists, each on its own.")
    ] = False,
    since: SinceOption = "24h",
    config: ConfigOption = None,
    confirm: ConfirmOption = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Credit a user who paid and was not credited: the credits the session bought, once per
    session, ever (typed: --confirm CREDITS; with --all, --confirm COUNT). The same action as
    $ in the console."""
    from services.actions import ALL_ACTIONS
    from services.payments_model import session_id as parse_session

    action = ALL_ACTIONS["credit_payment"]
    if all_owed == (session_id is not None):
        raise fail(["payments credit: give one SESSION_ID, or --all"], 2)
    if session_id is not None:
        try:
            target = parse_session(session_id)
        except ValueError as exc:
            raise fail([f"payments credit: {exc}"], 2) from None
        run_action(
            ctx, action, target, {}, config=config, yes=yes, dry_run=dry_run, confirm=confirm, as_json=as_json
        )
        return
    _credit_all(ctx, _period(since), config=config, confirm=confirm, dry_run=dry_run, as_json=as_json)


def _credit_all(
    ctx: typer.Context, period: str, *, config, confirm: str | None, dry_run: bool, as_json: bool
) -> None:
    """Every owed session planned, one confirmation (the count typed), each credited and
    audited on its own; a summary naming every failure. Exit 1 if any did not go through."""
    from services.actions import ALL_ACTIONS
    from services.runbook import Actor, Runbook

    action = ALL_ACTIONS["credit_payment"]
    settings = settings_or_exit(ctx, config)
    dry_run = dry_run or globals_of(ctx).dry_run
    if settings.read_only:
        raise fail(["credit_payment: refused, the console is read-only: no action can run"], 1)
    actor = Actor(
        settings.operator,
        settings.role,
        f"cli-{os.getpid()}-{uuid.uuid4().hex[:6]}",
        read_only=settings.read_only,
        dry_run=dry_run,
    )

    async def work(services):
        owed = (await services.reconcile.reconciliation(period)).owed
        if not owed:
            return []
        book = Runbook(services, actor, outcome_retry=30.0)
        plans = []
        for o in owed:
            plans.append(await book.plan(action, o.session.id, {"credits": o.session.credits}))
        if not as_json:
            echo(
                f"{action.title} — {len(plans)} checkout sessions of the last {period} "
                f"(as {actor.operator}, {actor.role}), each:"
            )
            for call in plans[0].preview.calls:
                echo("  " + call.replace("\n", "\n  "))
            for p in plans:
                echo(
                    f"  · {p.preview.summary.split('. ')[0]}"
                    + (f"  (cannot run: {p.refusal})" if p.refusal else "")
                )
        word = str(len(plans))
        if not dry_run and (confirm or "").strip() != word:
            raise fail([f"crediting {word} sessions needs the count typed: pass --confirm {word}"], 2)
        outcomes = []
        for n, plan in enumerate(plans, start=1):
            if not as_json:
                echo(f"… {n}/{len(plans)} {plan.target}", err=True)
            outcomes.append(await book.run(plan, confirmed=plan.typed_word))
        return outcomes

    outcomes = with_services(settings, work)
    bad = [o for o in outcomes if o.status not in ("ok", "dry-run")]
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {"target": o.target, "status": o.status, "message": o.message, "detail": dict(o.detail)}
                    for o in outcomes
                ],
                default=str,
                indent=2,
            )
        )
    elif not outcomes:
        echo(f"nothing owed in the last {period}: every paid session has its credits")
    else:
        echo(
            f"credited {len(outcomes) - len(bad)} of {len(outcomes)}" + ("" if bad else ": all went through")
        )
        for o in bad:
            echo(f"  {o.target} {o.status}: {o.message}")
    raise typer.Exit(1 if bad else 0)


def register(cli: typer.Typer) -> None:
    cli.add_typer(payments_cli, name="payments")
