"""What the payments area draws, as pure functions of services.payments_model's dataclasses:
an owed session's row and detail, a checkout event's row, a webhook endpoint's row, the
status lines (success rate, oldest undelivered against Stripe's 30 days, the bot's failure
rate, the runbook's advice). Emails, urls and ids come from customers and Stripe: inert."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from rich.table import Table
from rich.text import Text

from screens.backups_render import Row
from screens.shown import fill, plain
from screens.widgets import short_age
from services.payment_actions import CREDIT, RESEND
from services.payments_model import (
    RESEND_WINDOW,
    Deliveries,
    Delivery,
    Owed,
    Reconciliation,
    WebhookEndpoint,
)
from services.polling import format_age
from services.text import mask_url

OWED_COLUMNS = ("customer", "paid", "credits", "age", "event")
DELIVERY_COLUMNS = ("time (UTC)", "age", "type", "state", "session", "event")
ENDPOINT_COLUMNS = ("status", "url", "events", "api version")
NOT_CONFIGURED = "Stripe is not configured (STRIPE_SECRET_KEY)"
EVENT_TYPES = {
    "checkout.session.completed": "completed",
    "checkout.session.async_payment_succeeded": "async paid",
}


def money(cents: int, currency: str) -> str:
    """'25.00 USD'."""
    return f"{cents / 100:,.2f} {currency.upper()}"


def left(span: timedelta) -> str:
    """'29d', '5h', '12m': how long until a deadline (never negative)."""
    seconds = max(span.total_seconds(), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def customer(owed: Owed, limit: int = 40) -> Text:
    """The user's email; their id when the database has no email; 'no user' in red."""
    if owed.email:
        return plain(owed.email, limit=limit)
    if owed.session.user_id:
        return plain(f"user {owed.session.user_id}", "yellow", limit=limit)
    return Text("no user named", style="bold red")


def event_cell(owed: Owed) -> Text:
    """Whether a resend can still credit it: 'undelivered' (it can), 'past 30d' (Stripe no
    longer resends it), 'delivered' (the bot took it and did not credit), 'no event'."""
    if owed.resendable:
        return Text("undelivered", style="yellow")
    if owed.undelivered is not None:
        return Text("past 30d", style="bold red")
    if owed.events:
        return Text("delivered", style="dim")
    return Text("no event", style="dim")


def owed_row(owed: Owed, *, marked: bool = False) -> tuple:
    """One owed session: (• when marked) email, amount paid, credits owed, age, its event."""
    s = owed.session
    who = Text("•" if marked else " ", style="bold cyan")
    who.append_text(customer(owed, 26))
    credits = Text(f"{s.credits:>6,}" + ("~" if s.credits_from_amount else " "))
    return (
        who,
        Text(f"{money(s.amount, s.currency):>10}"),
        credits,
        Text(short_age(s.created, owed.now), style="yellow" if owed.age > timedelta(days=1) else ""),
        event_cell(owed),
    )


def _when(at: datetime, now: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({short_age(at, now)} ago)"


def resend_text(owed: Owed, *, can_credit: bool = True) -> Text:
    """What to do about this session: resend its event while Stripe allows, else credit."""
    credit = f"credit it ({CREDIT.key})" if can_credit else f"on-call credits it ({CREDIT.key})"
    if owed.resendable:
        until = owed.session.created + RESEND_WINDOW - owed.now
        said = "[green]resend it ({})[/], {} left of Stripe's 30 days; or {}"
        return fill(said, RESEND.key, left(until), credit)
    if owed.undelivered is not None:
        return fill("[bold red]past Stripe's 30 days, no resend[/]: {}", credit)
    if owed.events:
        return fill("[yellow]its event was delivered, yet no credit[/]: {}", credit)
    return fill("[yellow]no checkout event in the period[/]: {}", credit)


def grid(rows: list[Row]) -> Table:
    """Rows as a label column and a value column (a long value wraps under its own column);
    labels are short here, so the values get the width of a side pane."""
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True, min_width=7)
    table.add_column(ratio=1, overflow="fold")
    for label, value in rows:
        table.add_row(Text(label, style="bold" if label[:1].isupper() else "dim"), value)
    return table


def owed_rows(owed: Owed, *, can_credit: bool = True) -> list[Row]:
    """The selected owed session, what matters first (at 80x24 only the first lines show):
    the session, the user, what was paid and is owed, what to do; then its ids and events."""
    s = owed.session
    rows: list[Row] = [
        ("Session", fill("[b]{}[/b]", s.id, limit=80)),
        ("email", fill("{}", owed.email or "(no such user here)", limit=100)),
        ("paid", fill("[b]{}[/b] · owed [b]{}[/b] credits", money(s.amount, s.currency), f"{s.credits:,}")),
    ]
    if s.credits_from_amount:
        rows.append(("", fill("[dim]credits counted from the amount paid[/]")))
    rows.append(("next", resend_text(owed, can_credit=can_credit)))
    rows.append(("created", fill("{}", _when(s.created, owed.now))))
    if not owed.events:
        rows.append(("events", fill("[dim]none in the period[/]")))
    for n, event in enumerate(owed.events):
        said = "{} [yellow]undelivered[/]" if event == owed.undelivered else "{} [dim]delivered[/]"
        rows.append(("events" if n == 0 else "", fill(said, event, limit=80)))
    rows.append(("intent", fill("{}", s.payment_intent or "(none)", limit=80)))
    rows.append(("user id", fill("{}", s.user_id or "(none)", limit=80)))
    return rows


def delivery_row(d: Delivery, now: datetime) -> tuple:
    """One checkout event: when, age, type, delivered or pending, its session, its id."""
    state = (
        Text("delivered", style="green")
        if d.delivered
        else Text(f"pending {d.pending}" if d.pending > 1 else "pending", style="bold red")
    )
    return (
        f"{d.created.astimezone(UTC):%m-%d %H:%M}",
        short_age(d.created, now),
        plain(EVENT_TYPES.get(d.type, d.type), limit=24),
        state,
        plain(d.session.id, "dim", limit=40),
        plain(d.event_id, "dim", limit=40),
    )


def endpoint_row(e: WebhookEndpoint) -> tuple:
    """One webhook endpoint: its status (DISABLED loud), url (secrets masked), events, API version."""
    status = Text(" DISABLED ", style="bold white on red") if e.disabled else Text("enabled", style="green")
    events = "all events" if "*" in e.enabled_events else ", ".join(
        EVENT_TYPES.get(t, t) for t in e.enabled_events
    )  # fmt: skip
    return (
        status,
        plain(mask_url(e.url), "bold" if e.disabled else "", limit=60),
        plain(events or "none", limit=60),
        plain(e.api_version or "account default", "dim", limit=20),
    )


def rate_text(d: Deliveries) -> Text:
    """The bot's webhook failures over the last hour (Prometheus), or why it cannot say."""
    if d.failure_rate is None:
        return fill("[dim]bot failures/h: {}[/]", d.failure_rate_error or "no data", limit=80)
    per_hour = d.failure_rate * 3600
    shown = f"{per_hour:,.0f}" if per_hour >= 1 or per_hour == 0 else f"{per_hour:.2g}"
    return fill(f"bot [{'green' if per_hour == 0 else 'bold red'}]{{}} failures/h[/]", shown)


def delivery_text(d: Deliveries) -> Text:
    """'24h  94.1 % delivered (94/159) · 65 undelivered, oldest 5h (resend 29d left) · bot …'."""
    line = fill("[b reverse] {} [/] ", d.period)
    if d.success_rate is None:
        line.append(f"no checkout events in {d.period}", style="dim")
    else:
        style = "green" if not d.failed else "bold red"
        ok = len(d.events) - len({x.event_id for x in d.failed})
        line.append_text(fill(f"[{style}]{{}} % delivered[/] ({{}}/{{}})", f"{d.success_rate:.1f}", f"{ok:,}",
                              f"{len(d.events):,}"))  # fmt: skip
    oldest = d.oldest_undelivered
    if oldest is not None:
        remaining = d.resend_left(oldest)
        late = f"resend {left(remaining)} left"
        if remaining <= timedelta(0):
            late = "[bold red]past Stripe's 30 days[/]"
        line.append_text(fill(f" · [bold red]{{}} undelivered[/], oldest {{}} ({late})", f"{len(d.failed):,}",
                              short_age(oldest.created, d.now)))  # fmt: skip
    line.append(" · ")
    line.append_text(rate_text(d))
    return line


def advice_text(r: Reconciliation) -> Text:
    """The runbook's advice: resend under 50, else credit them all."""
    if not r.owed:
        style = "green"
    else:
        style = "yellow" if r.path == "resend" else "bold red"
    return fill(f"[{style}]{{}}[/]", r.advice())


def disabled_text(endpoints: Sequence[WebhookEndpoint]) -> Text | None:
    off = [e for e in endpoints if e.disabled]
    if not off:
        return None
    line = Text(" ENDPOINT DISABLED ", style="bold white on red")
    line.append_text(fill(" {} [dim](e)[/]", ", ".join(mask_url(e.url) for e in off), limit=120))
    return line


def status_text(d: Deliveries, r: Reconciliation, endpoints: Sequence[WebhookEndpoint],
                reading: str | None = None) -> Text:  # fmt: skip
    """The area's status lines: deliveries and the bot's failures, the advice, a disabled
    endpoint; `reading` names a period asked for and not read yet."""
    first = delivery_text(d)
    if reading is not None and reading != d.period:
        first.append(f" (reading {reading}…)", style="dim italic")
    lines = [first, advice_text(r)]
    off = disabled_text(endpoints)
    if off is not None:
        lines.append(off)
    return Text("\n").join(lines)


def failing_text(error: str, age: float | None, *, not_configured: bool = False) -> Text:
    """What the status says when Stripe cannot be read: not configured (dim), or the error
    and the age of what is still shown."""
    if not_configured:
        return fill("[dim]{}: nothing to show[/]", error, limit=300)
    held = "nothing read yet" if age is None else f"what is shown is {format_age(age)} old"
    return fill("[bold red]{}[/] [dim]({}; tried again with every poll, r now)[/]", error, held, limit=300)


def owed_title(r: Reconciliation, marked: int) -> str:
    """The owed list's title: '62 owed · 123,479 credits · 1 awaiting payment · 3 marked'."""
    if not r.owed:
        title = f"Nothing owed: {r.paid:,} paid in {r.period}, all credited"
    else:
        title = f"{len(r.owed):,} paid, not credited · {r.credits_owed:,} credits"
    if r.awaiting:
        title += f" · {len(r.awaiting):,} awaiting payment"
    if marked:
        title += f" · {marked:,} marked"
    return title


def deliveries_about(d: Deliveries) -> Text:
    if not d.events:
        return Text(f"no checkout events in {d.period}", style="dim")
    return fill("{} checkout events in {}, newest first · {} undelivered", f"{len(d.events):,}", d.period,
                f"{len(d.failed):,}")  # fmt: skip


def endpoints_about(endpoints: Sequence[WebhookEndpoint]) -> Text:
    if not endpoints:
        return fill("[bold red]no webhook endpoint: Stripe delivers checkout events to nobody[/]")
    off = sum(1 for e in endpoints if e.disabled)
    text = fill("{} webhook endpoint{}", len(endpoints), "" if len(endpoints) == 1 else "s")
    if off:
        text.append_text(fill(" · [bold red]{} DISABLED: its deliveries fail until it is enabled[/]", off))
    else:
        text.append(" · every one enabled", style="green")
    return text
