"""Cancel and refund through the real stripe library against the loopback Stripe: the
order is canceled and refunded once, a refund retried after a timeout is not paid twice
(idempotency keys), an over-refund is refused before anything happens."""

from __future__ import annotations

import asyncpg
import pytest

from console.sandbox.fake_stripe import FakeStripe
from console.settings import Settings
from console.wiring import build_services
from services.order_actions import CANCEL, parse_refund
from services.payments import PaymentsService
from services.runbook import Actor, Runbook

KEY = "sk_test_console"


@pytest.fixture
def stripe_fake(seeded_db):
    fake = FakeStripe(KEY, dsn=seeded_db)
    fake.start()
    yield fake
    fake.stop()


def book(dsn, fake, timeout=10.0) -> Runbook:
    services = build_services(Settings.isolated(DATABASE_URL=dsn).resolved())
    services.payments = PaymentsService(KEY, fake.url, timeout=timeout)
    return Runbook(services, Actor("sue", "support", "c1"))


async def _active_order(dsn):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchrow(
            "SELECT id::text, stripe_subscription_id, stripe_payment_intent_id, amount_cents"
            " FROM orders WHERE status = 'active' ORDER BY created_at LIMIT 1"
        )
    finally:
        await conn.close()


async def _status(dsn, order_id):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT status FROM orders WHERE id = $1::uuid", order_id)
    finally:
        await conn.close()


async def test_cancel_with_a_partial_refund(seeded_db, stripe_fake):
    order = await _active_order(seeded_db)
    runbook = book(seeded_db, stripe_fake)
    plan = await runbook.plan(CANCEL, order["id"], {"refund": 500, "confirm": order["id"]})
    assert plan.refusal is None
    assert any(f"POST /v1/refunds payment_intent={order['stripe_payment_intent_id']} amount=500" in c
               for c in plan.preview.calls)  # fmt: skip
    outcome = await runbook.execute(CANCEL, order["id"], {"refund": 500, "confirm": order["id"]})
    assert outcome.ok, outcome.message
    assert "refunded $5.00" in outcome.message
    assert await _status(seeded_db, order["id"]) == "canceled"
    assert order["stripe_subscription_id"] in stripe_fake.canceled
    assert stripe_fake.refunded_total(order["stripe_payment_intent_id"]) == 500


async def test_a_refund_retried_after_a_timeout_is_not_paid_twice(seeded_db, stripe_fake):
    order = await _active_order(seeded_db)
    stripe_fake.delay_next("/v1/refunds", 2.5)  # Stripe refunds, but answers too late
    first = await book(seeded_db, stripe_fake, timeout=1.0).execute(
        CANCEL, order["id"], {"refund": -1, "confirm": order["id"]}
    )
    assert first.status == "failed"
    assert await _status(seeded_db, order["id"]) != "canceled"  # nothing half-done in the database
    second = await book(seeded_db, stripe_fake).execute(
        CANCEL, order["id"], {"refund": -1, "confirm": order["id"]}
    )
    assert second.ok, second.message
    assert stripe_fake.refunded_total(order["stripe_payment_intent_id"]) == order["amount_cents"]
    assert len(stripe_fake.refunds) == 1
    assert await _status(seeded_db, order["id"]) == "canceled"


async def test_an_over_refund_is_refused_before_anything_happens(seeded_db, stripe_fake):
    order = await _active_order(seeded_db)
    outcome = await book(seeded_db, stripe_fake).execute(
        CANCEL, order["id"], {"refund": order["amount_cents"] + 1, "confirm": order["id"]}
    )
    assert outcome.status == "refused" and "more than the" in outcome.message
    assert stripe_fake.canceled == set() and stripe_fake.refunds == []
    assert await _status(seeded_db, order["id"]) == "active"


def test_refund_amounts_typed_by_an_operator():
    assert parse_refund("") is None and parse_refund("all") == -1
    assert parse_refund("12.50") == 1250 and parse_refund("$3") == 300
    for bad in ("ten", "-5", "1.234"):
        with pytest.raises(ValueError):
            parse_refund(bad)


async def test_cancel_can_delete_the_panel_server_too(seeded_db, stripe_fake):
    from console.sandbox.fake_panel import FakePanel
    from services.panel import PanelService

    order = await _active_order(seeded_db)
    conn = await asyncpg.connect(seeded_db)
    server_id = await conn.fetchval(
        "SELECT pterodactyl_server_id FROM orders WHERE id = $1::uuid", order["id"]
    )
    await conn.close()
    with FakePanel("ptla_test") as panel:
        runbook = book(seeded_db, stripe_fake)
        runbook.services.panel = PanelService(panel.url, "ptla_test")
        plan = await runbook.plan(CANCEL, order["id"], {"delete_server": True, "confirm": order["id"]})
        assert f"DELETE {panel.url}/api/application/servers/{server_id}" in "\n".join(plan.preview.calls)
        assert "ptla_test" not in "\n".join(plan.preview.calls)
        outcome = await runbook.execute(CANCEL, order["id"], {"delete_server": True, "confirm": order["id"]})
        assert outcome.ok and outcome.detail["server_deleted"] == server_id
        assert int(server_id) in panel.deleted


async def test_cancel_without_the_typed_order_id_is_refused(seeded_db, stripe_fake):
    order = await _active_order(seeded_db)
    outcome = await book(seeded_db, stripe_fake).execute(CANCEL, order["id"], {"confirm": "yes"})
    assert outcome.status == "refused" and "type the order id" in outcome.message
    assert stripe_fake.canceled == set()
    assert await _status(seeded_db, order["id"]) == "active"
