"""PaymentsService: Stripe through the stripe library's async methods, with idempotency
keys on every write. `stripe` is imported where first used (it is slow to import)."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from services.errors import BackendFailed, NotConfigured, Unreachable
from services.health import Ping
from services.text import mask_url, mask_urls_in

T = TypeVar("T")
PAGE_SIZE = 100  # Stripe's largest page
MAX_PAGES = 500  # 50,000 items: beyond that the period is too wide to read on every poll


@dataclass(frozen=True)
class PaymentState:
    """An order's payment as Stripe sees it now."""

    payment_intent: str
    status: str
    amount: int  # cents charged
    refunded: int  # cents refunded so far
    currency: str
    subscription: str | None
    subscription_status: str | None

    @property
    def refundable(self) -> int:
        return max(0, self.amount - self.refunded)


def idempotency_key(action: str, order_id: str, *parts: object) -> str:
    """The same key for the same action on the same order (and amount): Stripe replays
    the first response instead of acting twice when a timed-out call is retried."""
    return ":".join(["opsconsole", action, order_id, *(str(p) for p in parts)])


class PaymentsService:
    backend = "stripe"

    def __init__(self, secret_key: str | None, api_base: str | None = None, timeout: float = 10.0):
        self._secret_key = secret_key
        self.api_base = api_base
        self.timeout = timeout
        self._client = None

    @property
    def configured(self) -> bool:
        return bool(self._secret_key)

    @property
    def where(self) -> str:
        """Where the API is, fit to show (OPSCONSOLE_STRIPE_API_BASE masked)."""
        return mask_url(self.api_base) or "api.stripe.com"

    def client(self):  # -> stripe.StripeClient
        import stripe

        if not self._secret_key:
            raise NotConfigured("Stripe is not configured (STRIPE_SECRET_KEY)")
        if self._client is None:
            kwargs = {"base_addresses": {"api": self.api_base}} if self.api_base else {}
            self._client = stripe.StripeClient(
                self._secret_key,
                http_client=stripe.HTTPXClient(timeout=self.timeout),
                max_network_retries=0,
                **kwargs,
            )
        return self._client

    async def _call(self, what: str, request: Awaitable[T]) -> T:
        import stripe

        try:
            return await request
        except stripe.AuthenticationError as exc:
            raise BackendFailed(f"Stripe at {self.where} rejected the secret key", backend="stripe") from exc
        except stripe.APIConnectionError as exc:
            raise Unreachable(f"Stripe at {self.where} did not answer ({what})", backend="stripe") from exc
        except stripe.StripeError as exc:
            message = mask_urls_in(exc.user_message or str(exc) or type(exc).__name__, self.api_base)
            raise BackendFailed(f"Stripe refused to {what}: {message}", backend="stripe") from exc

    async def payment_state(self, payment_intent: str, subscription: str | None = None) -> PaymentState:
        """The payment intent's amount and refunds, and the subscription's status."""
        client = self.client()
        intent: Any = await self._call(
            f"read {payment_intent}", client.v1.payment_intents.retrieve_async(payment_intent)
        )
        refunds: Any = await self._call(
            f"list refunds of {payment_intent}",
            client.v1.refunds.list_async(params={"payment_intent": payment_intent, "limit": 100}),
        )
        refunded = sum(r.amount for r in refunds.data if r.status in ("succeeded", "pending"))
        sub_status = None
        if subscription:
            sub: Any = await self._call(
                f"read {subscription}", client.v1.subscriptions.retrieve_async(subscription)
            )
            sub_status = sub.status
        return PaymentState(
            payment_intent,
            intent.status,
            int(intent.amount_received or intent.amount),
            refunded,
            intent.currency,
            subscription,
            sub_status,
        )

    async def cancel_subscription(self, subscription: str, key: str) -> str:
        """Cancel now; returns the subscription's status. Raises ServiceError."""
        sub: Any = await self._call(
            f"cancel {subscription}",
            self.client().v1.subscriptions.cancel_async(subscription, options={"idempotency_key": key}),
        )
        return sub.status

    async def refund(self, payment_intent: str, amount: int, key: str) -> str:
        """Refund `amount` cents of the payment intent; returns the refund id."""
        refund: Any = await self._call(
            f"refund {payment_intent}",
            self.client().v1.refunds.create_async(
                params={"payment_intent": payment_intent, "amount": amount},
                options={"idempotency_key": key},
            ),
        )
        return refund.id

    # -- webhooks, events and checkout sessions (the payments area) ----------------------

    async def _all(self, what: str, lister, params: dict[str, Any]) -> list[Any]:
        """Every item of a Stripe list, page after page (`starting_after` the last id) until
        `has_more` is false; never one page only. Raises BackendFailed past MAX_PAGES."""
        items: list[Any] = []
        page_params = {**params, "limit": PAGE_SIZE}
        for _ in range(MAX_PAGES):
            page: Any = await self._call(what, lister(params=page_params))
            items.extend(page.data)
            if not page.has_more or not page.data:
                return items
            page_params = {**page_params, "starting_after": page.data[-1].id}
        raise BackendFailed(
            f"Stripe: more than {MAX_PAGES * PAGE_SIZE:,} items to {what}; narrow the period",
            backend="stripe",
        )

    async def webhook_endpoints(self) -> list[Any]:
        """Every webhook endpoint of the account (`/v1/webhook_endpoints`)."""
        client = self.client()
        return await self._all("list webhook endpoints", client.v1.webhook_endpoints.list_async, {})

    async def events(
        self, types: tuple[str, ...], since: int, *, delivery_success: bool | None = None
    ) -> list[Any]:
        """Every event of `types` created at or after `since` (unix seconds), newest first;
        with `delivery_success=False` only those some endpoint has not accepted yet."""
        client = self.client()
        params: dict[str, Any] = {"types": list(types), "created": {"gte": since}}
        if delivery_success is not None:
            params["delivery_success"] = delivery_success
        what = "list failed deliveries" if delivery_success is False else "list events"
        return await self._all(what, client.v1.events.list_async, params)

    async def checkout_sessions(self, since: int) -> list[Any]:
        """Every complete checkout session created at or after `since`, newest first."""
        client = self.client()
        params = {"created": {"gte": since}, "status": "complete"}
        return await self._all("list checkout sessions", client.v1.checkout.sessions.list_async, params)

    async def checkout_session(self, session_id: str) -> Any:
        """One checkout session as Stripe has it now."""
        return await self._call(
            f"read {session_id}", self.client().v1.checkout.sessions.retrieve_async(session_id)
        )

    async def event(self, event_id: str) -> Any:
        return await self._call(f"read {event_id}", self.client().v1.events.retrieve_async(event_id))

    async def resend(self, event_id: str, endpoint_id: str) -> None:
        """Send the event to the endpoint again (what the Dashboard's "Resend" and `stripe
        events resend` do: POST /v1/events/{id}/retry; stripe-python has no method for it).
        No idempotency key: a resend is safe to repeat (a purchase is credited once)."""
        client = self.client()
        await self._call(
            f"resend {event_id}",
            client.raw_request_async("post", f"/v1/events/{event_id}/retry", webhook_endpoint=endpoint_id),
        )

    async def ping(self) -> Ping:
        """Retrieves the balance to prove the key works; raises ServiceError."""
        import stripe

        client = self.client()
        started = time.perf_counter()
        try:
            balance = await client.v1.balance.retrieve_async()
        except stripe.AuthenticationError as exc:
            raise BackendFailed(f"Stripe at {self.where} rejected the secret key") from exc
        except stripe.APIConnectionError as exc:
            raise Unreachable(f"Stripe at {self.where} cannot be reached") from exc
        except stripe.StripeError as exc:
            said = mask_urls_in(exc.user_message or type(exc).__name__, self.api_base)
            raise BackendFailed(f"Stripe at {self.where}: {said}") from exc
        rtt = (time.perf_counter() - started) * 1000
        mode = "live" if getattr(balance, "livemode", False) else "test"
        return Ping(self.backend, f"Stripe API ({mode} mode)", rtt, self.where)
