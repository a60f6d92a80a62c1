"""The sandbox's Stripe side on the real PostgreSQL: the bot's webhook handler credits what
is delivered to it, once per payment intent, and nothing while its endpoint is disabled; the
seed mirrors the purchases of the last 30 days and owes the runbook's few; the
webhook-failure scenario leaves more than 50 owed, and once fixed credits what comes."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from types import SimpleNamespace

import asyncpg
import pytest

from console.sandbox.fake_bot import FakeBot
from console.sandbox.fake_stripe import FakeStripe
from console.sandbox.scenarios import WebhookFailure
from console.sandbox.stripe_seed import seed_stripe
from console.settings import Settings
from console.wiring import build_services

KEY = "sk_test_stripe_sandbox_0123"
BOT_URL = "http://127.0.0.1:9"  # the endpoint's url; the handler is called in process


@pytest.fixture
def stripe_fake(seeded_db):
    server = FakeStripe(KEY, dsn=seeded_db)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def services(seeded_runtime_db, stripe_fake):
    made = build_services(
        Settings.isolated(
            DATABASE_URL=seeded_runtime_db, STRIPE_SECRET_KEY=KEY, OPSCONSOLE_STRIPE_API_BASE=stripe_fake.url
        ).resolved()
    )
    yield made
    await made.close()


@pytest.fixture
def bot():
    with FakeBot() as server:
        yield server


class NoPods:
    """Kubernetes as the scenario sees it, without bot pods to log to (tests/test_sandbox.py
    reads the bot's log on a FakeKube)."""

    def objects(self, kind: str, namespace: str) -> list[dict]:
        return []


async def fetch(dsn: str, sql: str, *args) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def purchases(dsn: str, payment_intent: str) -> list[tuple[str, int, str]]:
    """The purchase credits of a payment intent: (user, credits, description)."""
    rows = await fetch(
        dsn,
        "SELECT user_id::text, amount, description FROM credit_transactions "
        "WHERE transaction_type = 'purchase' AND stripe_payment_intent_id = $1",
        payment_intent,
    )
    return [tuple(r) for r in rows]


async def some_users(dsn: str, n: int) -> list[str]:
    return [r[0] for r in await fetch(dsn, "SELECT id::text FROM users ORDER BY created_at, id LIMIT $1", n)]


def bot_endpoint(fake: FakeStripe) -> str:
    """The bot's endpoint, its handler hooked up, as the sandbox has it."""
    fake.events.deliver = fake.bot_webhook
    return fake.call(fake.events.add_endpoint, "http://127.0.0.1:9/webhooks/stripe")


def paid(fake: FakeStripe, user: str, credits: int = 2500, **kwargs):
    return fake.call(partial(fake.events.add_paid_session, user, credits, credits=credits, **kwargs))


async def test_a_delivered_event_credits_the_user_once_however_often_it_is_resent(
    seeded_db, stripe_fake, services
):
    user = (await some_users(seeded_db, 1))[0]
    we = bot_endpoint(stripe_fake)
    session, event = paid(stripe_fake, user, 5000)
    assert not event.pending  # delivered at creation
    assert await purchases(seeded_db, session["payment_intent"]) == [(user, 5000, "Credit pack")]
    for _ in range(2):  # a resend of a delivered event, twice: the bot's insert conflicts
        await services.payments.resend(event.id, we)
    assert stripe_fake.events.resends == [(event.id, we)] * 2
    assert await purchases(seeded_db, session["payment_intent"]) == [(user, 5000, "Credit pack")]


async def test_an_async_session_is_credited_on_its_success_and_a_disabled_endpoint_gets_nothing(
    seeded_db, stripe_fake, services
):
    user, other = await some_users(seeded_db, 2)
    we = bot_endpoint(stripe_fake)
    session, completed = paid(stripe_fake, user, async_payment=True)
    assert not completed.pending and await purchases(seeded_db, session["payment_intent"]) == []
    succeeded = stripe_fake.call(stripe_fake.events.succeed_async_payment, session["id"])
    assert not succeeded.pending
    assert await purchases(seeded_db, session["payment_intent"]) == [(user, 2500, "Credit pack")]

    stripe_fake.call(stripe_fake.events.set_endpoint_status, we, False)
    off, event = paid(stripe_fake, other)
    await services.payments.resend(event.id, we)
    assert event.pending == {we} and await purchases(seeded_db, off["payment_intent"]) == []
    stripe_fake.call(stripe_fake.events.set_endpoint_status, we, True)
    await services.payments.resend(event.id, we)
    assert not event.pending
    assert await purchases(seeded_db, off["payment_intent"]) == [(other, 2500, "Credit pack")]


async def test_a_delivery_the_bot_fails_leaves_the_event_pending(seeded_db, stripe_fake):
    bot_endpoint(stripe_fake)
    session, event = paid(stripe_fake, "00000000-0000-4000-8000-000000000000")  # no such user
    assert event.pending and await purchases(seeded_db, session["payment_intent"]) == []


async def test_the_seed_mirrors_the_purchases_and_owes_exactly_three_and_awaits_one(
    seeded_db, stripe_fake, services
):
    recent = await fetch(
        seeded_db,
        "SELECT stripe_payment_intent_id FROM credit_transactions WHERE transaction_type = 'purchase' "
        "AND stripe_payment_intent_id IS NOT NULL AND created_at >= now() - interval '30 days'",
    )
    rows_before = (await fetch(seeded_db, "SELECT count(*) FROM credit_transactions"))[0][0]
    said = seed_stripe(stripe_fake, BOT_URL)
    assert said == f"{len(recent) + 4} checkout sessions, 3 undelivered, 1 awaiting its bank"

    (endpoint,) = await services.reconcile.endpoints()
    assert endpoint.url == f"{BOT_URL}/webhooks/stripe" and not endpoint.disabled
    assert set(endpoint.enabled_events) == {"checkout.session.completed",
                                            "checkout.session.async_payment_succeeded"}  # fmt: skip
    found = await services.reconcile.reconciliation("30d")
    assert len(found.owed) == 3 and found.path == "resend"
    assert all(o.resendable and o.age < timedelta(hours=24) and o.email for o in found.owed)
    assert len(found.awaiting) == 1 and found.paid == len(recent) + 3
    # Every mirrored purchase matches its own credit, on its payment intent.
    assert len(found.matched_by) == len(recent) >= 6
    assert all("(payment intent)" in how for how in found.matched_by.values())
    assert (await fetch(seeded_db, "SELECT count(*) FROM credit_transactions"))[0][0] == rows_before


async def test_webhook_failure_leaves_over_fifty_owed_until_fixed_then_credits_and_a_resend_lands_once(
    seeded_db, stripe_fake, bot, services
):
    seed_stripe(stripe_fake, bot.url)
    sandbox = SimpleNamespace(payments=stripe_fake, bot=bot, kube=NoPods(), owner_dsn=seeded_db)
    scenario = WebhookFailure(sandbox)
    scenario.setup()
    for tick in range(1, 600):  # the ten minutes of the outage, a paid session every 30 s
        scenario.step(tick)
    (endpoint,) = await services.reconcile.endpoints()
    assert endpoint.disabled and bot.webhook_failures_per_second > 0
    during = await services.reconcile.reconciliation("24h")
    assert len(during.owed) == 3 + 60 + 19 and during.path == "credit"
    assert all(o.undelivered and o.resendable for o in during.owed)

    for tick in range(600, 661):  # fixed at 600 s; sessions at 600, 630 and 660 are credited
        scenario.step(tick)
    (endpoint,) = await services.reconcile.endpoints()
    assert not endpoint.disabled and bot.webhook_failures_per_second == 0
    after = await services.reconcile.reconciliation("24h")
    assert {o.session.id for o in after.owed} == {o.session.id for o in during.owed}
    latest = list(stripe_fake.events.sessions.values())[-3:]
    for session in latest:
        meta = session["metadata"]
        assert await purchases(seeded_db, session["payment_intent"]) == [
            (meta["user_id"], int(meta["credits"]), "Credit pack")
        ]

    owed = after.owed[-1]
    for _ in range(2):  # the resend, and a second click: one credit
        await services.payments.resend(owed.undelivered, endpoint.id)
    assert await purchases(seeded_db, owed.session.payment_intent) == [
        (owed.session.user_id, owed.session.credits, "Credit pack")
    ]
    left = await services.reconcile.reconciliation("24h")
    assert len(left.owed) == len(after.owed) - 1 and owed.session.id not in {o.session.id for o in left.owed}

    again = WebhookFailure(sandbox)
    again.setup()
    assert stripe_fake.events.endpoints[endpoint.id].status == "disabled"
    again.teardown()
    assert stripe_fake.events.endpoints[endpoint.id].status == "enabled"
