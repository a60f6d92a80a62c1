"""A loopback Stripe for what the console uses: payment intents, refunds (idempotency keys
honoured, over-refunds refused), subscriptions (retrieve, cancel), balance. Form-encoded
requests, JSON responses with `object` fields and Stripe's error shape, as stripe-python
expects. `delay_next(prefix, s)` acts on the next matching request but answers late: the
"refund went through, the client timed out" case. Events, webhook endpoints and checkout
sessions live in `self.events` (console/sandbox/fake_stripe_events.py); other threads change
them through `call`. `bot_webhook` is the bot's webhook handler, for the sandbox's deliveries."""

from __future__ import annotations

import asyncio
import inspect
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import asyncpg
from aiohttp import web

from console.sandbox.fake_stripe_events import Endpoint, Event, StripeEventStore
from console.sandbox.loopback import LoopbackServer

CREDITS_PER_USD = 100
# The bot's webhook handler: one purchase per payment intent (migration 0018's partial index).
BOT_CREDIT = """
INSERT INTO credit_transactions (user_id, amount, transaction_type, description, stripe_payment_intent_id)
VALUES ($1::uuid, $2, 'purchase', 'Credit pack', $3)
ON CONFLICT (stripe_payment_intent_id)
    WHERE transaction_type = 'purchase' AND stripe_payment_intent_id IS NOT NULL
DO NOTHING
"""


def _error(status: int, message: str, code: str | None = None, kind: str = "invalid_request_error"):
    body = {"error": {"type": kind, "message": message, **({"code": code} if code else {})}}
    return web.json_response(body, status=status)


class FakeStripe(LoopbackServer):
    name = "fake-stripe"

    def __init__(self, secret_key: str = "sk_test_fake", dsn: str | None = None):
        super().__init__()
        self.secret_key = secret_key
        self.dsn = dsn
        self.intents: dict[str, int] = {}  # payment intent -> amount (cents)
        self.refunds: list[dict] = []
        self.canceled: set[str] = set()
        self._replies: dict[str, tuple[int, dict]] = {}  # idempotency key -> reply
        self._delays: list[tuple[str, float]] = []
        self._pool: asyncpg.Pool | None = None
        self.events = StripeEventStore()  # seed with add_endpoint / add_paid_session

    def add_payment_intent(self, pi: str, amount: int) -> None:
        self.intents[pi] = amount

    def delay_next(self, path_prefix: str, seconds: float) -> None:
        self._delays.append((path_prefix, seconds))

    def refunded_total(self, pi: str) -> int:
        return sum(r["amount"] for r in self.refunds if r["payment_intent"] == pi)

    @property
    def pool(self) -> asyncpg.Pool:
        """The owner's pool on the business database (opened in setup, on the server's loop)."""
        if self._pool is None:
            raise RuntimeError(f"{self.name} has no database: give it a dsn and start it")
        return self._pool

    def call(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        """Run `fn(*args)` on the server's loop (awaiting what it returns when awaitable),
        then the webhook deliveries it queued, and return its result: how another thread (a
        scenario, the sandbox's seed) changes the store while the server reads it. Raises
        what fn raises, and RuntimeError when the server is not running."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not loop.is_running():
            raise RuntimeError(f"{self.name} is not running")
        if threading.current_thread() is thread:
            raise RuntimeError(f"{self.name}.call from its own loop would wait on itself")

        async def run() -> Any:
            result = fn(*args)
            if inspect.isawaitable(result):
                result = await result
            await self.events.flush()
            return result

        return asyncio.run_coroutine_threadsafe(run(), loop).result(60)

    async def bot_webhook(self, event: Event, endpoint: Endpoint) -> bool:
        """What the bot's webhook handler does with an event delivered to it: a paid
        checkout.session.completed, or an async_payment_succeeded, credits the session's
        metadata.credits to metadata.user_id, once per payment intent (ON CONFLICT DO NOTHING);
        other events are acknowledged. Returns True (its 2xx); raises when the database
        refuses (a 500: the delivery failed)."""
        session = event.obj
        paid = event.type == "checkout.session.async_payment_succeeded" or (
            event.type == "checkout.session.completed" and session.get("payment_status") == "paid"
        )
        if not paid:
            return True
        metadata = session.get("metadata") or {}
        said = metadata.get("credits")
        credits = int(said) if said is not None else session["amount_total"] * CREDITS_PER_USD // 100
        user = metadata.get("user_id") or session.get("client_reference_id")
        await self.pool.execute(BOT_CREDIT, user, credits, session["payment_intent"])
        return True

    async def setup(self) -> None:
        if self.dsn:
            self._pool = await asyncpg.create_pool(self.dsn, min_size=0, max_size=2)

    async def teardown(self) -> None:
        if self._pool:
            await self._pool.close()

    def routes(self, app: web.Application) -> None:
        app.middlewares.append(self._middleware)
        app.router.add_get("/v1/balance", self._balance)
        app.router.add_get("/v1/payment_intents/{id}", self._intent)
        app.router.add_get("/v1/subscriptions/{id}", self._subscription)
        app.router.add_delete("/v1/subscriptions/{id}", self._cancel)
        app.router.add_post("/v1/refunds", self._refund)
        app.router.add_get("/v1/refunds", self._list_refunds)
        self.events.routes(app)

    @web.middleware
    async def _middleware(self, request: web.Request, handler):
        if request.headers.get("Authorization") != f"Bearer {self.secret_key}":
            return _error(401, "Invalid API Key provided: sk_****")
        key = request.headers.get("Idempotency-Key")
        if key and request.method != "GET" and f"{request.path}:{key}" in self._replies:
            status, body = self._replies[f"{request.path}:{key}"]
            return web.json_response(body, status=status, headers={"Idempotent-Replayed": "true"})
        response = await handler(request)
        if key and request.method != "GET":
            import json

            self._replies[f"{request.path}:{key}"] = (response.status, json.loads(response.text))
        for i, (prefix, seconds) in enumerate(self._delays):
            if request.path.startswith(prefix):
                del self._delays[i]
                await asyncio.sleep(seconds)
                break
        return response

    async def _amount(self, pi: str) -> int | None:
        for session in self.events.sessions.values():
            if session["payment_intent"] == pi and session["payment_status"] == "paid":
                return self.intents.setdefault(pi, session["amount_total"])
        if pi not in self.intents and self._pool:
            amount = await self._pool.fetchval(
                "SELECT amount_cents FROM orders WHERE stripe_payment_intent_id = $1", pi
            )
            if amount is not None:
                self.intents[pi] = amount
        return self.intents.get(pi)

    async def _balance(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "balance", "livemode": False,
                                  "available": [{"amount": 0, "currency": "usd"}], "pending": []})  # fmt: skip

    async def _intent(self, request: web.Request) -> web.Response:
        pi = request.match_info["id"]
        amount = await self._amount(pi)
        if amount is None:
            return _error(404, f"No such payment_intent: '{pi}'", "resource_missing")
        return web.json_response({"id": pi, "object": "payment_intent", "amount": amount,
                                  "amount_received": amount, "currency": "usd", "status": "succeeded",
                                  "livemode": False, "latest_charge": f"ch_{pi[3:]}"})  # fmt: skip

    def _sub(self, sub: str) -> dict:
        canceled = sub in self.canceled
        return {"id": sub, "object": "subscription", "status": "canceled" if canceled else "active",
                "canceled_at": int(time.time()) if canceled else None, "livemode": False}  # fmt: skip

    async def _subscription(self, request: web.Request) -> web.Response:
        return web.json_response(self._sub(request.match_info["id"]))

    async def _cancel(self, request: web.Request) -> web.Response:
        sub = request.match_info["id"]
        if sub in self.canceled:
            return _error(400, "This subscription is already canceled.")
        self.canceled.add(sub)
        return web.json_response(self._sub(sub))

    async def _refund(self, request: web.Request) -> web.Response:
        form = await request.post()
        pi = str(form.get("payment_intent", ""))
        paid = await self._amount(pi)
        if paid is None:
            return _error(400, f"No such payment_intent: '{pi}'", "resource_missing")
        left = paid - self.refunded_total(pi)
        amount = int(form.get("amount", left))
        if amount <= 0 or amount > left:
            return _error(400, f"Refund amount (${amount / 100:.2f}) is greater than unrefunded amount "
                               f"on charge (${left / 100:.2f})", "amount_too_large")  # fmt: skip
        refund = {"id": f"re_{secrets.token_hex(12)}", "object": "refund", "amount": amount,
                  "payment_intent": pi, "status": "succeeded", "currency": "usd"}  # fmt: skip
        self.refunds.append(refund)
        return web.json_response(refund)

    async def _list_refunds(self, request: web.Request) -> web.Response:
        pi = request.query.get("payment_intent")
        data = [r for r in self.refunds if pi is None or r["payment_intent"] == pi]
        return web.json_response({"object": "list", "data": data, "has_more": False, "url": "/v1/refunds"})
