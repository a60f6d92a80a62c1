"""Payments: webhook deliveries and the reconciliation of paid checkout sessions against
credit_transactions, on the real PostgreSQL and the fake Stripe through the stripe library.
The reconcile list equals an independent computation (plain SQL and the fake's own store);
a credit is applied once, whatever happens: two consoles at once, a retry after a timeout,
a resend landing after the manual credit; unpaid async sessions are not owed; the roles and
read-only hold; Stripe down fails the read, not the process."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import pytest

from console.sandbox.fake_stripe import FakeStripe
from console.settings import Settings
from console.wiring import build_services
from services.errors import ServiceError
from services.payment_actions import CREDIT, RESEND
from services.runbook import Actor, Confirmation, Runbook

KEY = "sk_test_payments_0123456789"
NOW = int(time.time())
WEBHOOK_INSERT = """
INSERT INTO credit_transactions (user_id, amount, transaction_type, description, stripe_payment_intent_id)
VALUES ($1::uuid, $2, 'purchase', 'Credit pack', $3)
ON CONFLICT (stripe_payment_intent_id)
    WHERE transaction_type = 'purchase' AND stripe_payment_intent_id IS NOT NULL
DO NOTHING
"""


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
            DATABASE_URL=seeded_runtime_db,
            STRIPE_SECRET_KEY=KEY,
            OPSCONSOLE_STRIPE_API_BASE=stripe_fake.url,
        ).resolved()
    )
    yield made
    await made.close()


def book(services, operator: str = "alice", role: str = "oncall", **actor) -> Runbook:
    return Runbook(services, Actor(operator, role, f"test-{operator}-{uuid.uuid4().hex[:4]}", **actor))


async def fetch(dsn: str, sql: str, *args):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def users(dsn: str, n: int) -> list[str]:
    return [
        str(r["id"]) for r in await fetch(dsn, "SELECT id FROM users ORDER BY created_at, id LIMIT $1", n)
    ]


async def webhook(dsn: str, session: dict) -> None:
    """What the bot's webhook handler does with a checkout event it accepts."""
    credits = int(session["metadata"]["credits"])
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(WEBHOOK_INSERT, session["metadata"]["user_id"], credits, session["payment_intent"])
    finally:
        await conn.close()


async def seed(dsn: str, store, *, credited: int, owed: int, unpaid: int = 0, spread: int = 3600) -> dict:
    """An endpoint and paid sessions: `credited` delivered and credited by the webhook, `owed`
    undelivered (the endpoint failed), `unpaid` async ones not cleared yet."""
    people = await users(dsn, 20)
    store.add_endpoint("https://bot.example/api/stripe/webhook")
    made: dict[str, list[dict]] = {"credited": [], "owed": [], "unpaid": []}
    n = 0
    for kind, count in (("credited", credited), ("owed", owed), ("unpaid", unpaid)):
        for _ in range(count):
            n += 1
            session, _ev = store.add_paid_session(
                people[n % len(people)],
                2500,
                credits=2500,
                created=NOW - spread + n,
                delivered=kind != "owed",
                async_payment=kind == "unpaid",
            )
            if kind == "credited":
                await webhook(dsn, session)
            made[kind].append(session)
    return made


async def independent_owed(dsn: str, store, since: int) -> set[str]:
    """Paid sessions since `since` (from the fake's own store) whose payment intent has no
    purchase credit (plain SQL): what reconcile must list."""
    paid = {
        s["id"]: s["payment_intent"]
        for s in store.sessions.values()
        if s["payment_status"] == "paid" and s["created"] >= since
    }
    rows = await fetch(
        dsn,
        "SELECT stripe_payment_intent_id FROM credit_transactions "
        "WHERE transaction_type = 'purchase' AND stripe_payment_intent_id = ANY($1)",
        list(paid.values()),
    )
    credited = {r[0] for r in rows}
    return {sid for sid, pi in paid.items() if pi not in credited}


# -- reading -------------------------------------------------------------------------------


async def test_reconcile_pages_through_everything_and_equals_an_independent_computation(
    seeded_db, stripe_fake, services
):
    made = await seed(seeded_db, stripe_fake.events, credited=90, owed=65, unpaid=4)
    deliveries = await services.reconcile.deliveries("24h")
    # 159 events: more than one page of 100 (the stripe library would stop at one).
    assert len(deliveries.events) == 159 and len(deliveries.failed) == 65
    assert sum(1 for m, p in stripe_fake.requests if p == "/v1/events") >= 3
    assert deliveries.success_rate == pytest.approx(100 * 94 / 159)
    assert deliveries.oldest_undelivered.session.id == made["owed"][0]["id"]
    found = await services.reconcile.reconciliation("24h", deliveries)
    expected = await independent_owed(seeded_db, stripe_fake.events, NOW - 86400)
    assert {o.session.id for o in found.owed} == expected == {s["id"] for s in made["owed"]}
    assert found.path == "credit" and found.credits_owed == 65 * 2500
    # The async sessions not cleared yet are waiting, not owed.
    assert {s.id for s in found.awaiting} == {s["id"] for s in made["unpaid"]}
    owed = found.owed[0]
    assert owed.email and owed.undelivered and owed.resendable


async def test_an_async_session_is_owed_only_once_its_payment_succeeded(seeded_db, stripe_fake, services):
    made = await seed(seeded_db, stripe_fake.events, credited=1, owed=0, unpaid=1)
    session = made["unpaid"][0]
    assert not (await services.reconcile.reconciliation("24h")).owed
    plan = await book(services).plan(CREDIT, session["id"], {})
    assert plan.refusal and "not paid" in plan.refusal
    stripe_fake.events.succeed_async_payment(session["id"], delivered=False)
    found = await services.reconcile.reconciliation("24h")
    assert [o.session.id for o in found.owed] == [session["id"]]
    assert found.owed[0].undelivered  # the async_payment_succeeded event, which a resend sends


async def test_stripe_down_is_a_service_error_not_a_crash(seeded_db, services, stripe_fake):
    stripe_fake.stop()
    with pytest.raises(ServiceError, match="Stripe"):
        await services.reconcile.reconciliation("24h")


# -- the credit, once ----------------------------------------------------------------------


async def credit_rows(dsn: str, pi: str) -> int:
    rows = await fetch(
        dsn,
        "SELECT count(*) FROM credit_transactions WHERE stripe_payment_intent_id = $1 "
        "AND transaction_type = 'purchase'",
        pi,
    )
    return rows[0][0]


async def credit(services, session_id: str, **actor):
    runbook = book(services, **actor)
    given = {}
    for name, s in (await runbook.suggest(CREDIT, session_id, {})).items():
        if s.default is not None:
            given[name] = s.default
    plan = await runbook.plan(CREDIT, session_id, CREDIT.parse(given))
    return plan, await runbook.run(plan, confirmed=plan.typed_word)


async def test_a_credit_is_typed_with_its_credits_and_applied_once(seeded_db, stripe_fake, services):
    made = await seed(seeded_db, stripe_fake.events, credited=0, owed=1)
    session = made["owed"][0]
    plan, outcome = await credit(services, session["id"])
    assert plan.confirmation is Confirmation.TYPED and plan.typed_word == "2500"
    assert "2,500 credits" in plan.preview.summary and session["id"] in plan.preview.summary
    assert outcome.ok, outcome.message
    assert await credit_rows(seeded_db, session["payment_intent"]) == 1
    audit = await fetch(
        seeded_db,
        "SELECT target, detail FROM ops.audit_log WHERE action = 'credit_payment' AND phase = 'outcome'",
    )
    assert [r["target"] for r in audit] == [session["id"]]
    assert not (await services.reconcile.reconciliation("24h")).owed
    # A retry (the answer was lost) is refused, and changes nothing.
    _, again = await credit(services, session["id"])
    assert again.status == "refused" and "already credited" in again.message
    assert await credit_rows(seeded_db, session["payment_intent"]) == 1


async def test_two_consoles_crediting_at_once_give_one_credit(seeded_db, stripe_fake, seeded_runtime_db):
    made = await seed(seeded_db, stripe_fake.events, credited=0, owed=1)
    session = made["owed"][0]
    consoles = [
        build_services(
            Settings.isolated(
                DATABASE_URL=seeded_runtime_db,
                STRIPE_SECRET_KEY=KEY,
                OPSCONSOLE_STRIPE_API_BASE=stripe_fake.url,
            ).resolved()
        )
        for _ in range(2)
    ]
    try:
        results = await asyncio.gather(
            *(credit(s, session["id"], operator=f"op{i}") for i, s in enumerate(consoles))
        )
    finally:
        for s in consoles:
            await s.close()
    statuses = sorted(o.status for _, o in results)
    assert "ok" in statuses and statuses.count("ok") == 1, statuses
    assert await credit_rows(seeded_db, session["payment_intent"]) == 1


async def test_the_database_itself_refuses_a_second_credit_of_a_session(
    seeded_db, seeded_runtime_db, stripe_fake, services
):
    """Below the claims and the lock: the keys. Another purchase row for the payment intent, or
    another ops.payment_credits row for the session, is a unique violation."""
    made = await seed(seeded_db, stripe_fake.events, credited=0, owed=1)
    session = made["owed"][0]
    _, outcome = await credit(services, session["id"])
    assert outcome.ok
    conn = await asyncpg.connect(seeded_runtime_db)
    try:
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "INSERT INTO credit_transactions (user_id, amount, transaction_type, "
                "stripe_payment_intent_id) VALUES ($1::uuid, 1, 'purchase', $2)",
                session["metadata"]["user_id"],
                session["payment_intent"],
            )
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "INSERT INTO ops.payment_credits (session_id, payment_intent, user_id, credits, "
                "amount_cents, currency, credit_transaction_id, operator) "
                "VALUES ($1, 'pi_other', 'u', 1, 1, 'usd', 1, 'mallory')",
                session["id"],
            )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM ops.payment_credits")
    finally:
        await conn.close()
    assert await credit_rows(seeded_db, session["payment_intent"]) == 1


async def test_a_resend_landing_after_a_manual_credit_adds_nothing(seeded_db, stripe_fake, services):
    made = await seed(seeded_db, stripe_fake.events, credited=0, owed=1)
    session = made["owed"][0]
    _, outcome = await credit(services, session["id"])
    assert outcome.ok
    await webhook(seeded_db, session)  # the resend lands: the bot's insert conflicts
    assert await credit_rows(seeded_db, session["payment_intent"]) == 1
    # And the resend itself is refused once the session is credited.
    event = stripe_fake.events.events[-1].id
    plan = await book(services).plan(RESEND, event, {})
    assert plan.refusal and "already credited" in plan.refusal


async def test_a_webhook_credit_landing_first_makes_the_manual_credit_refuse(
    seeded_db, stripe_fake, services
):
    made = await seed(seeded_db, stripe_fake.events, credited=0, owed=1)
    session = made["owed"][0]
    runbook = book(services)
    plan = await runbook.plan(CREDIT, session["id"], {"credits": 2500})
    assert plan.refusal is None
    await webhook(seeded_db, session)  # between the preview and the confirmation
    outcome = await runbook.run(plan, confirmed="2500")
    assert outcome.status == "refused" and "already credited" in outcome.message
    assert await credit_rows(seeded_db, session["payment_intent"]) == 1


# -- resend ----------------------------------------------------------------------------------


async def test_resend_under_fifty_delivers_and_over_fifty_is_refused(seeded_db, stripe_fake, services):
    made = await seed(seeded_db, stripe_fake.events, credited=2, owed=3)
    event = next(e for e in stripe_fake.events.events if e.obj["id"] == made["owed"][0]["id"])
    support = book(services, role="support")
    plan = await support.plan(RESEND, event.id, {})
    assert plan.refusal is None and plan.preview.calls[0].startswith(f"POST /v1/events/{event.id}/retry")
    outcome = await support.run(plan)
    assert outcome.ok, outcome.message
    assert stripe_fake.events.resends[-1][0] == event.id and not event.pending
    for _ in range(50):
        stripe_fake.events.add_paid_session(str(uuid.uuid4()), 100, delivered=False)
    other = next(e for e in stripe_fake.events.events if e.obj["id"] == made["owed"][1]["id"])
    refused = await book(services).plan(RESEND, other.id, {})
    assert refused.refusal and "not under the runbook's 50" in refused.refusal


async def test_resend_of_an_event_older_than_thirty_days_is_refused(seeded_db, stripe_fake, services):
    people = await users(seeded_db, 1)
    stripe_fake.events.add_endpoint("https://bot.example/hook")
    _, event = stripe_fake.events.add_paid_session(
        people[0], 500, created=NOW - 30 * 86400 - 60, delivered=False
    )
    plan = await book(services).plan(RESEND, event.id, {})
    assert plan.refusal and "last 30 days only" in plan.refusal


# -- who may ---------------------------------------------------------------------------------


async def test_support_may_resend_but_not_credit_and_read_only_blocks_both(seeded_db, stripe_fake, services):
    made = await seed(seeded_db, stripe_fake.events, credited=0, owed=1)
    session = made["owed"][0]
    event = stripe_fake.events.events[-1].id
    support = await book(services, role="support").plan(CREDIT, session["id"], {})
    assert support.refusal and "oncall" in support.refusal
    assert (await book(services, role="support").plan(RESEND, event, {})).refusal is None
    for action, target in ((CREDIT, session["id"]), (RESEND, event)):
        reader = book(services, role="admin", read_only=True)
        plan = await reader.plan(action, target, {})
        assert plan.refusal and "read-only" in plan.refusal
        assert (await reader.run(plan, confirmed=plan.typed_word)).status == "refused"
    assert await credit_rows(seeded_db, session["payment_intent"]) == 0
    assert not stripe_fake.events.resends


async def test_a_disabled_webhook_endpoint_is_a_critical_alert(seeded_db, stripe_fake, services):
    await seed(seeded_db, stripe_fake.events, credited=1, owed=0)
    assert not [a for a in (await services.alerts.snapshot()).firing() if a.name.startswith("StripeWebhook")]
    endpoint = next(iter(stripe_fake.events.endpoints))
    stripe_fake.events.set_endpoint_status(endpoint, False)
    services.alerts._read_at.clear()  # past the minute the endpoints are cached for
    firing = [a for a in (await services.alerts.snapshot()).firing() if a.name == "StripeWebhookDisabled"]
    assert [(a.severity, a.labels["endpoint"]) for a in firing] == [("critical", endpoint)]
    assert "https://bot.example/api/stripe/webhook" in firing[0].summary
    stripe_fake.stop()  # Stripe away: the other sources still answer
    services.alerts._read_at.clear()
    snapshot = await services.alerts.snapshot()
    assert any(f.startswith("payments:") for f in snapshot.failed)


async def test_without_the_unique_purchase_index_the_credit_preview_warns(seeded_db, stripe_fake, services):
    session = (await seed(seeded_db, stripe_fake.events, credited=0, owed=1))["owed"][0]
    plan = await book(services).plan(CREDIT, session["id"], {})
    assert not [w for w in plan.preview.warnings if "unique purchase" in w]
    await fetch(seeded_db, "DROP INDEX credit_transactions_purchase_once")
    plan = await book(services).plan(CREDIT, session["id"], {})
    assert [w for w in plan.preview.warnings if "a webhook resend that lands after this credit" in w]


async def test_resend_to_a_disabled_endpoint_is_refused_and_the_url_shown_masked(
    seeded_db, stripe_fake, services
):
    await seed(seeded_db, stripe_fake.events, credited=0, owed=1)
    endpoint = next(iter(stripe_fake.events.endpoints.values()))
    endpoint.url = "https://bot.example/api/stripe/webhook?token=s3cr3t-value"
    event = stripe_fake.events.events[-1].id
    plan = await book(services).plan(RESEND, event, {})
    assert plan.refusal is None and "s3cr3t-value" not in "".join(plan.preview.calls)
    stripe_fake.events.set_endpoint_status(endpoint.id, False)
    plan = await book(services).plan(RESEND, event, {})
    assert plan.refusal and "endpoint is disabled" in plan.refusal
    assert any("disabled" in w for w in plan.preview.warnings) and not stripe_fake.events.resends
