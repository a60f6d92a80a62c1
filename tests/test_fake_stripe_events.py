"""The fake Stripe's events, webhook endpoints, checkout sessions and resends, read through
the real stripe library the way the payments area will."""

from __future__ import annotations

import threading
import time
from functools import partial

import pytest
import stripe

from console.sandbox.fake_stripe import FakeStripe

KEY = "sk_test_events"
NOW = int(time.time())


@pytest.fixture
def fake():
    server = FakeStripe(KEY)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(fake):
    return stripe.StripeClient(KEY, base_addresses={"api": fake.url}, max_network_retries=0,
                               http_client=stripe.HTTPXClient(timeout=5))  # fmt: skip


def seed(store, n_ok=7, n_failed=5):
    """An endpoint, `n_ok` delivered and `n_failed` undelivered paid sessions, one a minute."""
    we = store.add_endpoint("https://bot.example/api/stripe/webhook")
    ok = [store.add_paid_session(100 + i, 499, created=NOW - 3600 + 60 * i) for i in range(n_ok)]
    failed = [store.add_paid_session(200 + i, 999, created=NOW - 1800 + 60 * i, delivered=False)
              for i in range(n_failed)]  # fmt: skip
    return we, ok, failed


async def all_pages(client, **params):
    """Every event, paging with starting_after until has_more is false; and the page count."""
    seen, pages, cursor = [], 0, None
    while True:
        page = await client.v1.events.list_async({**params, **({"starting_after": cursor} if cursor else {})})
        pages += 1
        seen += page.data
        if not page.has_more:
            return seen, pages
        cursor = page.data[-1].id


async def test_events_page_through_newest_first_until_has_more_is_false(fake, client):
    _, ok, failed = seed(fake.events)
    events, pages = await all_pages(client, type="checkout.session.completed", limit=5)
    assert pages == 3  # 12 events, 5 a page
    expected = [ev.id for _, ev in reversed(ok + failed)]
    assert [e.id for e in events] == expected
    assert [e.created for e in events] == sorted((e.created for e in events), reverse=True)
    first = events[0]
    assert first.object == "event" and first.data.object.object == "checkout.session"
    assert first.data.object.payment_status == "paid" and first.data.object.metadata["user_id"] == "204"
    assert first.pending_webhooks == 1 and first.request.id is None


async def test_delivery_success_types_and_created_filters(fake, client):
    _, ok, failed = seed(fake.events)
    session, _ = fake.events.add_paid_session(300, 1999, created=NOW - 100, async_payment=True)
    paid = fake.events.succeed_async_payment(session["id"], created=NOW - 50)
    fake.events.add_event("charge.refunded", {"id": "ch_1", "object": "charge"}, created=NOW - 10)

    undelivered, _ = await all_pages(client, delivery_success=False, limit=2)
    assert {e.id for e in undelivered} == {ev.id for _, ev in failed}
    delivered, _ = await all_pages(client, delivery_success=True, type="checkout.session.completed")
    assert len(delivered) == len(ok) + 1

    both, _ = await all_pages(client, types=["checkout.session.completed",
                                             "checkout.session.async_payment_succeeded"])  # fmt: skip
    assert len(both) == 14 and both[0].id == paid.id and both[0].data.object.payment_status == "paid"
    assert all(e.type != "charge.refunded" for e in both)

    recent, _ = await all_pages(client, created={"gte": NOW - 1800})
    # the undelivered five, the async session's two events and the refund; not the older seven
    assert len(recent) == 8 and not {e.id for e in recent} & {ev.id for _, ev in ok}


async def test_events_older_than_30_days_are_not_listed_nor_resent(fake, client):
    we = fake.events.add_endpoint("https://bot.example/hook", status="disabled")
    _, old = fake.events.add_paid_session(1, 500, created=NOW - 31 * 86400)
    assert (await client.v1.events.list_async()).data == []
    with pytest.raises(stripe.InvalidRequestError, match="30 days"):
        await client.raw_request_async("post", f"/v1/events/{old.id}/retry", webhook_endpoint=we)


async def test_endpoints_list_with_disabled_status_and_update(fake, client):
    we_ok = fake.events.add_endpoint("https://bot.example/a")
    we_off = fake.events.add_endpoint("https://bot.example/b", ["*"], status="disabled")
    listed = {e.id: e for e in (await client.v1.webhook_endpoints.list_async()).data}
    assert listed[we_ok].status == "enabled" and listed[we_off].status == "disabled"
    assert listed[we_off].enabled_events == ["*"] and listed[we_ok].url == "https://bot.example/a"
    assert listed[we_ok].object == "webhook_endpoint" and listed[we_ok].api_version

    fake.events.set_endpoint_status(we_ok, enabled=False)
    assert (await client.v1.webhook_endpoints.retrieve_async(we_ok)).status == "disabled"
    updated = await client.v1.webhook_endpoints.update_async(we_ok, {"disabled": False})
    assert updated.status == "enabled"


async def test_disabled_endpoint_leaves_events_pending_and_resend_delivers(fake, client):
    we, _, _ = seed(fake.events, n_ok=0, n_failed=0)
    fake.events.set_endpoint_status(we, enabled=False)
    _, ev = fake.events.add_paid_session(7, 499)
    assert (await client.v1.events.retrieve_async(ev.id)).pending_webhooks == 1

    resent = await client.raw_request_async("post", f"/v1/events/{ev.id}/retry", webhook_endpoint=we)
    assert client.deserialize(resent, api_mode="V1").pending_webhooks == 1  # still disabled
    fake.events.set_endpoint_status(we, enabled=True)
    await client.raw_request_async("post", f"/v1/events/{ev.id}/retry", webhook_endpoint=we)
    assert (await client.v1.events.retrieve_async(ev.id)).pending_webhooks == 0
    assert fake.events.resends == [(ev.id, we), (ev.id, we)]
    assert (await client.v1.events.list_async({"delivery_success": False})).data == []


async def test_checkout_session_retrieved_and_listed(fake, client):
    seed(fake.events, n_ok=3, n_failed=0)
    session, _ = fake.events.add_paid_session(42, 1299, async_payment=True)
    got = await client.v1.checkout.sessions.retrieve_async(session["id"])
    assert got.id.startswith("cs_") and got.object == "checkout.session"
    assert got.payment_status == "unpaid" and got.amount_total == 1299 and got.currency == "usd"
    assert got.client_reference_id == "42" and got.metadata["user_id"] == "42"
    assert got.payment_intent.startswith("pi_") and got.created > 0

    by_pi = await client.v1.checkout.sessions.list_async({"payment_intent": got.payment_intent})
    assert [s.id for s in by_pi.data] == [got.id] and not by_pi.has_more
    page = await client.v1.checkout.sessions.list_async({"limit": 2})
    assert len(page.data) == 2 and page.has_more
    with pytest.raises(stripe.InvalidRequestError, match=r"No such checkout\.session"):
        await client.v1.checkout.sessions.retrieve_async("cs_test_missing")


async def test_creation_time_delivery_through_the_hook_and_a_failed_one_stays_pending(fake, client):
    tried: list[str] = []

    async def deliver(ev, ep):  # the endpoint answers 500 for user 13
        tried.append(ev.id)
        if ev.obj["metadata"]["user_id"] == "13":
            raise RuntimeError("500")
        return True

    fake.events.deliver = deliver
    we = fake.call(fake.events.add_endpoint, "https://bot.example/webhooks/stripe")
    _, ok = fake.call(fake.events.add_paid_session, 12, 499)
    _, bad = fake.call(fake.events.add_paid_session, 13, 499)
    _, forced = fake.call(partial(fake.events.add_paid_session, 14, 499, delivered=False))
    assert tried == [ok.id, bad.id]  # delivered=False: a failure recorded, nothing tried
    pending = {e.id for e in (await client.v1.events.list_async({"delivery_success": False})).data}
    assert pending == {bad.id, forced.id}

    fake.call(fake.events.set_endpoint_status, we, False)
    _, off = fake.call(fake.events.add_paid_session, 12, 499)
    await client.raw_request_async("post", f"/v1/events/{off.id}/retry", webhook_endpoint=we)
    assert tried == [ok.id, bad.id] and off.pending == {we}  # a disabled endpoint is never tried
    fake.call(fake.events.set_endpoint_status, we, True)
    await client.raw_request_async("post", f"/v1/events/{forced.id}/retry", webhook_endpoint=we)
    assert tried[-1] == forced.id and not forced.pending


def test_call_runs_on_the_server_loop_and_says_when_the_server_is_not_running(fake):
    assert fake.call(lambda: threading.current_thread().name) == fake.name
    with pytest.raises(KeyError):
        fake.call(fake.events.set_endpoint_status, "we_missing", True)
    fake.stop()
    with pytest.raises(RuntimeError, match="not running"):
        fake.call(fake.events.add_endpoint, "https://bot.example/hook")
