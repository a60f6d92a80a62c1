"""What the orders area draws, as pure functions of the services' dataclasses: a table
row, the header figures, the detail pane with Stripe's answer. Every value from the
database or a backend is shown inert (screens.shown), never read as markup."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rich.text import Text

from screens.overview import STATUS_STYLE
from screens.shown import fill, plain
from services.audit import AuditRow
from services.orders import Order, OrderDetail, OrderFigures
from services.payments import PaymentState

VIEW_TITLES = {"stuck": "Stuck > 10 min", "errors": "Errors", "recent": "All orders", "search": "Search"}
COLUMNS = ("", "order", "status", "waiting / created", "server", "customer")


def order_row(order: Order, marked: bool = False) -> tuple:
    """One table row: mark, short id, status, server, email, minutes waiting or age. What
    the customer chose (server name, email) is shown inert and never read as markup."""
    when = (
        f"{order.minutes_waiting:,.0f} min"
        if order.minutes_waiting is not None
        else order.created_at.strftime("%Y-%m-%d %H:%M")
    )
    return (
        "●" if marked else " ",
        plain(order.id[:8]),
        plain(order.status, STATUS_STYLE.get(order.status, "")),
        when,
        plain(order.server_name, limit=60),
        plain(order.email, limit=60),
    )


def figure_values(f: OrderFigures) -> dict[str, tuple[str, bool, str]]:
    """tile id -> (value, alert, note) for the header figures."""
    rate = "no orders" if f.success_rate is None else f"{f.success_rate:.1f}%"
    note = f"{f.provisioned_1h} of {f.considered_1h}" if f.considered_1h else "in the last hour"
    avg = "—" if f.avg_provision_minutes is None else f"{f.avg_provision_minutes:.1f} min"
    return {
        "of-stuck": (str(f.stuck), f.stuck > 0, ""),
        "of-errors": (str(f.errors), f.errors > 0, ""),
        "of-rate": (rate, f.success_rate is not None and f.success_rate < 95, note),
        "of-avg": (avg, (f.avg_provision_minutes or 0) > 5, "24 h"),
    }


@dataclass(frozen=True)
class StripeShown:
    """What Stripe said about an order's payment when `$` asked, or why it could not say."""

    at: datetime
    state: PaymentState | None
    error: str | None = None


PAYMENT_STYLE = {"succeeded": "green", "canceled": "dim", "requires_payment_method": "bold red"}
SUBSCRIPTION_STYLE = {"active": "green", "trialing": "green", "past_due": "bold red", "unpaid": "bold red"}


def stripe_lines(shown: StripeShown) -> list[Text]:
    """The detail pane's Stripe section: payment intent status, charged, refunded and the
    subscription's status as Stripe said them, and when it was asked."""
    lines = [fill(f"[b]Stripe[/b] [dim]asked at {shown.at.astimezone():%H:%M:%S} ($ asks again)[/dim]")]
    s = shown.state
    if s is None:
        return [*lines, fill("[red]{}[/]", shown.error or "no answer", limit=300)]
    currency = s.currency.upper()
    refunded = "yellow" if 0 < s.refunded < s.amount else ("bold" if s.refunded else "")
    sub = s.subscription_status
    sub_style = SUBSCRIPTION_STYLE.get(sub, "yellow") if sub else "dim"
    return [
        *lines,
        fill("payment     {} {}", plain(s.status, PAYMENT_STYLE.get(s.status, "yellow")), s.payment_intent),
        fill("charged     {} {}", f"{s.amount / 100:,.2f}", currency),
        fill("refunded    {} {}", plain(f"{s.refunded / 100:,.2f}", refunded), currency),
        fill("subscription {} {}", plain(sub or "—", sub_style), s.subscription or ""),
    ]


def detail_text(d: OrderDetail, history: list[AuditRow], stripe: StripeShown | None = None) -> Text:
    """The detail pane: every field, the plan, node, customer, panel account, what Stripe
    said when last asked (`$`), audit history. Our markup around; every value from the
    database or a backend goes in as inert text."""
    money = f"${d.amount_cents / 100:.2f}" if d.amount_cents is not None else "—"
    panel = (
        fill("{} ({})", d.pterodactyl_user_id, d.panel_username or "")
        if d.has_panel_account
        else fill("[b red]none[/] (P syncs it)")
    )
    node = "—" if d.node_name is None else fill("{}" + ("" if d.node_enabled else " (disabled)"), d.node_name)
    plan = (d.plan_id, d.game, d.ram_gb, d.egg_id, d.price_monthly)
    payment = (d.stripe_subscription_id or "—", d.stripe_payment_intent_id or "—", money)
    lines = [
        fill("[b]{}[/b]", d.id),
        fill("status      {}", plain(d.status, STATUS_STYLE.get(d.status, ""))),
        fill("server      {}", d.server_name),
        fill("server id   {} {}", d.pterodactyl_server_id or "—", d.pterodactyl_server_identifier or ""),
        fill("plan        {} · {} · {} GB · egg {} · ${}/mo", *plan),
        fill("node        {}", node),
        fill("customer    {} · {}", d.email, d.user_id),
        fill("panel       {}", panel),
        fill("stripe      {} · {} · {}", *payment),
        fill(f"created     {d.created_at:%Y-%m-%d %H:%M:%S} · updated {d.updated_at:%Y-%m-%d %H:%M:%S}"),
    ]
    if d.error_message:
        lines.append(fill("[b red]error       {}[/]", d.error_message, limit=1000))
    if stripe is not None:
        lines += [Text(""), *stripe_lines(stripe)]
    lines.append(Text(""))
    lines.append(fill("[b]History[/b]" if history else "[dim]no runbook actions on this order[/dim]"))
    for row in history[:12]:
        err = fill(" — {}", row.error, limit=300) if row.error else ""
        what = row.outcome or "started"
        lines.append(fill(f"{row.at:%m-%d %H:%M:%S} {{}} {{}} {{}}{{}}", row.operator, row.action, what, err))
    return Text("\n").join(lines)
