"""The sandbox's Stripe side: the bot's webhook endpoint (its handler crediting what is
delivered), a paid checkout session for each purchase credit of the last 30 days and a few
the runbook's "<50: resend" path owes; and the calls the webhook-failure scenario makes."""

from __future__ import annotations

import random
from typing import Any

from console.sandbox.fake_stripe import CREDITS_PER_USD, FakeStripe
from console.sandbox.fake_stripe_events import Event, StripeEventStore

WEBHOOK_PATH = "/webhooks/stripe"
CHECKOUT_EVENTS = ["checkout.session.completed", "checkout.session.async_payment_succeeded"]
PACKS = (1000, 2500, 5000, 10000)  # credits, as the seed's purchases buy them
OWED = 3  # paid in the last 24 h, their deliveries failed: under the runbook's 50
_PURCHASES = """
SELECT user_id::text AS user_id, amount, stripe_payment_intent_id AS payment_intent, created_at
FROM credit_transactions
WHERE transaction_type = 'purchase' AND stripe_payment_intent_id IS NOT NULL
  AND created_at >= now() - interval '30 days'
ORDER BY created_at, id
"""
_USERS = "SELECT id::text FROM users ORDER BY created_at, id LIMIT $1"


def seed_stripe(payments: FakeStripe, bot_url: str, *, seed: int = 13) -> str:
    """Seed a running FakeStripe (with a dsn) from its database, in one call on its loop;
    returns what it made, for the sandbox to say. Raises what the database raises."""
    return payments.call(_seed, payments, bot_url, random.Random(seed))


def bot_endpoint(payments: FakeStripe, bot_url: str) -> str:
    """The id of the bot's webhook endpoint, registered (and the bot's handler hooked up to
    the deliveries) when it is not yet."""
    return payments.call(_bot_endpoint, payments, bot_url)


def set_endpoint(payments: FakeStripe, endpoint_id: str, *, enabled: bool) -> None:
    """Enable or disable a webhook endpoint (as the Dashboard does); raises KeyError for another id."""
    payments.call(payments.events.set_endpoint_status, endpoint_id, enabled)


def user_ids(payments: FakeStripe, limit: int = 500) -> list[str]:
    """Up to `limit` users of the business database, oldest first."""
    return payments.call(_users, payments, limit)


def add_paid_sessions(
    payments: FakeStripe, users: list[str], rng: random.Random, *, within: float = 0.0
) -> list[tuple[dict, Event]]:
    """A paid credit pack for each of `users`, created over the last `within` seconds (oldest
    first), delivered as its endpoint's state allows: an enabled endpoint's bot credits it.
    Returns the (session, event) pairs, their deliveries done."""
    return payments.call(_add_sessions, payments.events, users, rng, within)


async def _seed(payments: FakeStripe, bot_url: str, rng: random.Random) -> str:
    store = payments.events
    _bot_endpoint(payments, bot_url)
    rows = await payments.pool.fetch(_PURCHASES)
    for row in rows:  # the bot credited these when it got their events: delivered, untried
        at = int(row["created_at"].timestamp())
        store.add_paid_session(row["user_id"], _cents(row["amount"]), created=at, delivered=True,
                               credits=row["amount"], payment_intent=row["payment_intent"])  # fmt: skip
    users = await _users(payments, 500)
    if not users:
        return f"{len(rows)} checkout sessions (no users to owe)"
    now = store.now()
    for _ in range(OWED):  # the bot answered 500 then: paid, no credit
        pack = rng.choice(PACKS)
        at = int(now - rng.uniform(3600, 20 * 3600))
        store.add_paid_session(rng.choice(users), _cents(pack), created=at, delivered=False, credits=pack)
    pack = rng.choice(PACKS)  # a bank debit not cleared yet: its completed event was accepted
    at = int(now - rng.uniform(600, 6 * 3600))
    store.add_paid_session(rng.choice(users), _cents(pack), created=at, delivered=True, async_payment=True,
                           credits=pack)  # fmt: skip
    return f"{len(rows) + OWED + 1} checkout sessions, {OWED} undelivered, 1 awaiting its bank"


def _bot_endpoint(payments: FakeStripe, bot_url: str) -> str:
    store = payments.events
    store.deliver = payments.bot_webhook
    url = f"{bot_url}{WEBHOOK_PATH}"
    found = next((ep.id for ep in store.endpoints.values() if ep.url == url), None)
    return found or store.add_endpoint(url, list(CHECKOUT_EVENTS))


async def _users(payments: FakeStripe, limit: int) -> list[str]:
    return [r[0] for r in await payments.pool.fetch(_USERS, limit)]


def _add_sessions(
    store: StripeEventStore, users: list[str], rng: random.Random, within: float
) -> list[tuple[dict, Event]]:
    now = store.now()
    made: list[tuple[dict[str, Any], Event]] = []
    for at, user in zip(sorted(now - rng.uniform(0, within) for _ in users), users, strict=True):
        pack = rng.choice(PACKS)
        made.append(store.add_paid_session(user, _cents(pack), created=int(at), credits=pack))
    return made


def _cents(credits: int) -> int:
    return credits * 100 // CREDITS_PER_USD
