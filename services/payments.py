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
                self._secret_key, http_client=stripe.HTTPXClient(timeout=self.timeout),
                max_network_retries=0, **kwargs,
            )  # fmt: skip
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
            payment_intent, intent.status, int(intent.amount_received or intent.amount), refunded,
            intent.currency, subscription, sub_status,
        )  # fmt: skip

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
