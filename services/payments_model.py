"""What the payments area shows, without I/O: webhook endpoints, deliveries of the checkout
events over a period with the success rate and the oldest undelivered event, and the
reconciliation of paid checkout sessions against `credit_transactions` (the AGIS manual's
"Payment Webhook Failure" runbook: resend under 50, otherwise reconcile and credit)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

PERIODS: dict[str, timedelta] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
CHECKOUT_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
RESEND_LIMIT = 50  # the runbook: "retry failed webhooks manually if <50"
RESEND_WINDOW = timedelta(days=30)  # Stripe resends events of the last 30 days only
CREDITS_PER_USD = 100  # when a session does not say how many credits it bought
FAILURE_RATE_QUERY = "sum(rate(agis_bot_stripe_webhook_failures_total[1h]))"
SESSION_ID = re.compile(r"^cs_[A-Za-z0-9_]{1,200}$")
EVENT_ID = re.compile(r"^evt_[A-Za-z0-9_]{1,200}$")


def parse_since(value: str) -> str:
    """A period as the operator types it: 24h, 7d or 30d."""
    key = value.strip().lower()
    if key not in PERIODS:
        raise ValueError(f"the period is one of {', '.join(PERIODS)}, not {value!r}")
    return key


def session_id(value: str) -> str:
    """A checkout session id (cs_...)."""
    value = value.strip()
    if not SESSION_ID.match(value):
        raise ValueError(f"{value[:80]!r} is not a checkout session id (cs_...)")
    return value


def event_id(value: str) -> str:
    """An event id (evt_...)."""
    value = value.strip()
    if not EVENT_ID.match(value):
        raise ValueError(f"{value[:80]!r} is not an event id (evt_...)")
    return value


def _get(obj: Any, key: str, default: Any = None) -> Any:
    """A field of a StripeObject or of a plain dict (the fake's and the tests' data)."""
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    try:
        return obj[key]
    except (KeyError, TypeError):
        return getattr(obj, key, default)


def _when(unix: Any) -> datetime:
    return datetime.fromtimestamp(int(unix or 0), UTC)


@dataclass(frozen=True)
class WebhookEndpoint:
    id: str
    url: str
    status: str  # enabled | disabled
    enabled_events: tuple[str, ...]
    api_version: str | None

    @property
    def disabled(self) -> bool:
        return self.status != "enabled"

    def wants(self, event_type: str) -> bool:
        return "*" in self.enabled_events or event_type in self.enabled_events

    @classmethod
    def of(cls, obj: Any) -> WebhookEndpoint:
        return cls(
            str(_get(obj, "id")),
            str(_get(obj, "url") or ""),
            str(_get(obj, "status") or "?"),
            tuple(_get(obj, "enabled_events") or ()),
            _get(obj, "api_version"),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "status": self.status,
            "enabled_events": list(self.enabled_events),
            "api_version": self.api_version,
        }


@dataclass(frozen=True)
class Session:
    """A checkout session, as Stripe has it (the event's snapshot or the session itself)."""

    id: str
    payment_intent: str | None
    payment_status: str  # paid | unpaid | no_payment_required
    amount: int  # cents
    currency: str
    user_id: str | None
    credits: int
    credits_from_amount: bool  # the session's metadata did not say: counted from the amount
    created: datetime

    @classmethod
    def of(cls, obj: Any) -> Session:
        metadata = _get(obj, "metadata") or {}
        user = _get(metadata, "user_id") or _get(obj, "client_reference_id")
        amount = int(_get(obj, "amount_total") or 0)
        said = _get(metadata, "credits")
        try:
            credits, counted = int(str(said)), False
        except (TypeError, ValueError):
            credits, counted = amount * CREDITS_PER_USD // 100, True
        return cls(
            str(_get(obj, "id")),
            _get(obj, "payment_intent"),
            str(_get(obj, "payment_status") or "?"),
            amount,
            str(_get(obj, "currency") or "usd"),
            str(user) if user else None,
            credits,
            counted,
            _when(_get(obj, "created")),
        )

    @property
    def paid(self) -> bool:
        return self.payment_status == "paid"


@dataclass(frozen=True)
class Delivery:
    """One checkout event and whether every endpoint that wanted it accepted it."""

    event_id: str
    type: str
    created: datetime
    pending: int  # endpoints still without a 2xx
    session: Session

    @property
    def delivered(self) -> bool:
        return self.pending == 0

    @classmethod
    def of(cls, obj: Any) -> Delivery:
        data = _get(obj, "data") or {}
        return cls(
            str(_get(obj, "id")),
            str(_get(obj, "type")),
            _when(_get(obj, "created")),
            int(_get(obj, "pending_webhooks") or 0),
            Session.of(_get(data, "object") or {}),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "event": self.event_id,
            "type": self.type,
            "created": self.created.isoformat(),
            "delivered": self.delivered,
            "pending_webhooks": self.pending,
            "session": self.session.id,
        }


@dataclass(frozen=True)
class Deliveries:
    """The checkout events of a period: all of them, those not delivered, and the rate."""

    period: str
    events: tuple[Delivery, ...]
    failed: tuple[Delivery, ...]
    now: datetime
    failure_rate: float | None = None  # agis_bot_stripe_webhook_failures_total per second (1h rate)
    failure_rate_error: str | None = None  # why Prometheus could not say

    @property
    def success_rate(self) -> float | None:
        """Delivered / all, in percent; None without events."""
        if not self.events:
            return None
        failed = {d.event_id for d in self.failed}
        return 100.0 * sum(1 for d in self.events if d.event_id not in failed) / len(self.events)

    @property
    def oldest_undelivered(self) -> Delivery | None:
        return min(self.failed, key=lambda d: d.created, default=None)

    def resend_left(self, delivery: Delivery) -> timedelta:
        """How long Stripe still lets the event be resent."""
        return delivery.created + RESEND_WINDOW - self.now

    def as_json(self) -> dict[str, Any]:
        oldest = self.oldest_undelivered
        return {
            "period": self.period,
            "events": len(self.events),
            "undelivered": len(self.failed),
            "success_rate_pct": None if self.success_rate is None else round(self.success_rate, 2),
            "oldest_undelivered": None
            if oldest is None
            else {**oldest.as_json(), "resend_left_seconds": int(self.resend_left(oldest).total_seconds())},
            "webhook_failures_per_second": self.failure_rate,
            "webhook_failures_error": self.failure_rate_error,
            "failed": [d.as_json() for d in self.failed],
        }


@dataclass(frozen=True)
class Owed:
    """A paid checkout session with no matching purchase credit: the user paid and was not
    credited. `event` is its newest checkout event still undelivered (what a resend sends)."""

    session: Session
    email: str | None
    events: tuple[str, ...]
    undelivered: str | None
    now: datetime

    @property
    def age(self) -> timedelta:
        return self.now - self.session.created

    @property
    def resendable(self) -> bool:
        return self.undelivered is not None and self.age < RESEND_WINDOW

    def as_json(self) -> dict[str, Any]:
        s = self.session
        return {
            "session": s.id,
            "payment_intent": s.payment_intent,
            "user_id": s.user_id,
            "email": self.email,
            "amount_cents": s.amount,
            "currency": s.currency,
            "credits": s.credits,
            "credits_from_amount": s.credits_from_amount,
            "created": s.created.isoformat(),
            "age_seconds": int(self.age.total_seconds()),
            "events": list(self.events),
            "undelivered_event": self.undelivered,
            "resendable": self.resendable,
        }


@dataclass(frozen=True)
class Reconciliation:
    """Paid sessions of a period against the credits: what is owed, what waits for a bank."""

    period: str
    sessions: int  # complete checkout sessions in the period
    paid: int
    owed: tuple[Owed, ...]
    awaiting: tuple[Session, ...]  # unpaid (async payment not cleared yet): not owed
    now: datetime
    matched_by: Mapping[str, str] = field(default_factory=dict)  # session -> how it was matched

    @property
    def credits_owed(self) -> int:
        return sum(o.session.credits for o in self.owed)

    @property
    def path(self) -> str:
        """The runbook's choice: resend under 50, otherwise credit (the bulk path)."""
        return "resend" if len(self.owed) < RESEND_LIMIT else "credit"

    def advice(self) -> str:
        n = len(self.owed)
        if not n:
            return f"every paid session of the last {self.period} has its credits"
        if n == 1:
            return (
                "1 paid session without credits: resend its event (once the endpoint is fixed), or credit it"
            )
        if self.path == "resend":
            return (
                f"{n} paid sessions without credits, under the runbook's {RESEND_LIMIT}: resend their "
                "events (once the endpoint is fixed), or credit them"
            )
        return (
            f"{n} paid sessions without credits, over the runbook's {RESEND_LIMIT}: credit them "
            "(all shown at once), then fix the endpoint"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "sessions": self.sessions,
            "paid": self.paid,
            "owed": len(self.owed),
            "credits_owed": self.credits_owed,
            "path": self.path,
            "advice": self.advice(),
            "sessions_owed": [o.as_json() for o in self.owed],
            "awaiting_payment": [s.id for s in self.awaiting],
        }


def reconcile(
    period: str,
    sessions: Iterable[Session],
    events: Iterable[Delivery],
    failed: Iterable[Delivery],
    credited: Mapping[str, str],
    emails: Mapping[str, str],
    now: datetime,
) -> Reconciliation:
    """Which paid sessions are owed: `credited` maps what a credit matched on (a payment
    intent, a session id or an event id) to how; a session matched on any is not owed."""
    undelivered = {d.event_id for d in failed}
    by_session: dict[str, list[Delivery]] = {}
    for d in events:
        by_session.setdefault(d.session.id, []).append(d)
    owed, awaiting, matched, count, paid = [], [], {}, 0, 0
    for s in sorted(sessions, key=lambda s: s.created):
        count += 1
        if not s.paid:
            awaiting.append(s)
            continue
        paid += 1
        mine = sorted(by_session.get(s.id, ()), key=lambda d: d.created, reverse=True)
        keys = [k for k in (s.payment_intent, s.id, *(d.event_id for d in mine)) if k]
        how = next((credited[k] for k in keys if k in credited), None)
        if how is not None:
            matched[s.id] = how
            continue
        pending = next((d.event_id for d in mine if d.event_id in undelivered), None)
        owed.append(Owed(s, emails.get(s.user_id or ""), tuple(d.event_id for d in mine), pending, now))
    return Reconciliation(period, count, paid, tuple(owed), tuple(awaiting), now, matched)
