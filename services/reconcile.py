"""ReconcileService: the payments area's reads. Webhook endpoints and checkout events from
Stripe (every page), the bot's webhook failure rate from Prometheus, and the paid checkout
sessions matched against `credit_transactions` in PostgreSQL: who paid and was not credited.
The resend and the manual credit are runbook actions (services.payment_actions)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from services.alerts import AlertsService
from services.errors import NotConfigured, ServiceError
from services.payments import PaymentsService
from services.payments_model import (
    CHECKOUT_EVENTS,
    FAILURE_RATE_QUERY,
    PERIODS,
    Deliveries,
    Delivery,
    Reconciliation,
    Session,
    WebhookEndpoint,
    reconcile,
)
from services.postgres import PostgresService


def _uuid_or_none(value: str | None) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


class ReconcileService:
    def __init__(self, payments: PaymentsService, postgres: PostgresService, alerts: AlertsService):
        self.payments = payments
        self.postgres = postgres
        self.alerts = alerts

    @property
    def configured(self) -> bool:
        return self.payments.configured

    async def endpoints(self) -> list[WebhookEndpoint]:
        """Every webhook endpoint, disabled first; raises ServiceError."""
        found = [WebhookEndpoint.of(e) for e in await self.payments.webhook_endpoints()]
        return sorted(found, key=lambda e: (not e.disabled, e.url))

    async def failure_rate(self) -> tuple[float | None, str | None]:
        """agis_bot_stripe_webhook_failures_total's rate over the last hour, or why not."""
        try:
            return await self.alerts.scalar(FAILURE_RATE_QUERY, "the webhook failure rate"), None
        except NotConfigured:
            return None, "Prometheus is not configured (PROMETHEUS_URL)"
        except ServiceError as exc:
            return None, str(exc)

    async def deliveries(self, period: str, now: datetime | None = None) -> Deliveries:
        """The period's checkout events, the undelivered ones (delivery_success=false) and
        the bot's failure rate beside them; raises ServiceError when Stripe cannot say."""
        now = now or datetime.now(UTC)
        since = int((now - PERIODS[period]).timestamp())
        events, failed, (rate, rate_error) = await asyncio.gather(
            self.payments.events(CHECKOUT_EVENTS, since),
            self.payments.events(CHECKOUT_EVENTS, since, delivery_success=False),
            self.failure_rate(),
        )
        return Deliveries(
            period,
            tuple(Delivery.of(e) for e in events),
            tuple(Delivery.of(e) for e in failed),
            now,
            rate,
            rate_error,
        )

    async def reconciliation(
        self, period: str, deliveries: Deliveries | None = None, now: datetime | None = None
    ) -> Reconciliation:
        """Every paid checkout session of the period without a matching purchase credit."""
        deliveries = deliveries or await self.deliveries(period, now)
        now = deliveries.now
        since = now - PERIODS[period]
        sessions = [Session.of(s) for s in await self.payments.checkout_sessions(int(since.timestamp()))]
        paid = [s for s in sessions if s.paid]
        intents = [s.payment_intent for s in paid if s.payment_intent]
        refs = [s.id for s in paid] + [d.event_id for d in deliveries.events]
        rows = await self.postgres.run(
            "purchase_credits_matching", payment_intents=intents, refs=refs, since=since
        )
        credited = {r["matched"]: r["how"] for r in rows}
        users = sorted({u for s in paid if (u := _uuid_or_none(s.user_id))})
        emails = {r["id"]: r["email"] for r in await self.postgres.run("user_emails", user_ids=users)}
        emails = {
            s.user_id: emails[u] for s in paid if (u := _uuid_or_none(s.user_id)) in emails if s.user_id
        }
        return reconcile(period, sessions, deliveries.events, deliveries.failed, credited, emails, now)
