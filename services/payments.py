"""PaymentsService: Stripe through the stripe library's async methods, with idempotency
keys on every write. `stripe` is imported where first used (it is slow to import)."""

from __future__ import annotations

import time

from services.errors import BackendFailed, NotConfigured, Unreachable
from services.health import Ping


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
        return self.api_base or "api.stripe.com"

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
            raise BackendFailed(f"Stripe at {self.where}: {exc.user_message or type(exc).__name__}") from exc
        rtt = (time.perf_counter() - started) * 1000
        mode = "live" if getattr(balance, "livemode", False) else "test"
        return Ping(self.backend, f"Stripe API ({mode} mode)", rtt, self.where)
