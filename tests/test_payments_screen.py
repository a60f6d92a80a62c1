"""The payments area as an operator sees it, on the seeded business and the fake Stripe: the
paid sessions never credited with their emails, a credit typed with its credits, every owed
session marked and credited with one confirmation, support resending but not crediting,
Stripe going away and coming back while the console keeps running, a customer's escape
sequence shown as text, and all of it at 80x24. Rows and status lines are pure functions."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from textual.widgets import Input
from textual.widgets._footer import FooterKey

from console.sandbox.fake_stripe import FakeStripe
from screens.action_modal import ActionConfirmScreen
from screens.live_table import LiveTable
from screens.payments import PaymentsScreen
from screens.payments_render import delivery_row, endpoint_row, owed_row, owed_rows, status_text
from screens.widgets import Panel
from services.payment_actions import CREDIT, RESEND
from services.payments_model import Deliveries, Delivery, Owed, Reconciliation, Session, WebhookEndpoint
from tests.conftest import wait_until
from tests.helpers import make_app, text_of
from tests.tcp_proxy import TcpProxy
from tests.test_inert_screens import EVIL_EMAIL, assert_inert, drawn
from tests.test_small_terminal import on_screen, screen_text

KEY = "sk_test_payments_screen_0123"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOOK = "https://bot.example/api/stripe/webhook"


def cells(row: tuple) -> list[str]:
    return [str(c) for c in row]


def session(**kw) -> Session:
    values = dict(id="cs_test_1", payment_intent="pi_1", payment_status="paid", amount=2500, currency="usd",
                  user_id="8de6e6b3-bb27-46bc-9888-f0d99423251e", credits=2500, credits_from_amount=False,
                  created=NOW - timedelta(hours=5))  # fmt: skip
    return Session(**{**values, **kw})


def owed(events=("evt_1",), undelivered="evt_1", **kw) -> Owed:
    return Owed(session(**kw), "ada@example.com", tuple(events), undelivered, NOW)


# -- pure rendering ------------------------------------------------------------------------


def test_an_owed_row_says_who_paid_what_is_owed_and_whether_a_resend_can_help():
    assert [c.strip() for c in cells(owed_row(owed()))] == ["ada@example.com", "25.00 USD", "2,500", "5h",
                                                            "undelivered"]  # fmt: skip
    assert str(owed_row(owed(), marked=True)[0]).startswith("•")
    old = owed(created=NOW - timedelta(days=31))
    assert str(owed_row(old)[4]) == "past 30d" and not old.resendable
    assert str(owed_row(owed(undelivered=None))[4]) == "delivered"  # the bot took it and did not credit
    assert str(owed_row(owed(events=(), undelivered=None))[4]) == "no event"
    counted = owed_row(owed(credits=999, amount=999, credits_from_amount=True))
    assert str(counted[2]).strip() == "999~"
    nobody = Owed(session(user_id=None), None, ("evt_1",), "evt_1", NOW)
    assert str(owed_row(nobody)[0]).strip() == "no user named"


def test_the_selected_session_says_what_to_do_next():
    rows = {label: value.plain for label, value in owed_rows(owed())}
    assert rows["Session"] == "cs_test_1" and rows["email"] == "ada@example.com"
    assert rows["paid"] == "25.00 USD · owed 2,500 credits"
    assert rows["next"].startswith(f"resend it ({RESEND.key}), 29d left of Stripe's 30 days")  # 30d - 5h
    assert rows["events"] == "evt_1 undelivered" and rows["intent"] == "pi_1"
    past = dict((k, v.plain) for k, v in owed_rows(owed(created=NOW - timedelta(days=40))))
    assert past["next"] == f"past Stripe's 30 days, no resend: credit it ({CREDIT.key})"
    support = dict((k, v.plain) for k, v in owed_rows(owed(undelivered=None), can_credit=False))
    assert support["next"] == f"its event was delivered, yet no credit: on-call credits it ({CREDIT.key})"


def test_rows_of_events_and_endpoints_show_state_and_disabled_loudly():
    event = Delivery("evt_9", "checkout.session.completed", NOW - timedelta(minutes=12), 1, session())
    assert cells(delivery_row(event, NOW)) == [
        "03-01 11:48",
        "12m",
        "completed",
        "pending",
        "cs_test_1",
        "evt_9",
    ]
    off = WebhookEndpoint("we_1", "https://h.example/hook?token=s3cret\x1b[2J", "disabled", ("*",), None)
    row = endpoint_row(off)
    assert str(row[0]).strip() == "DISABLED" and "red" in str(row[0].style)
    assert "s3cret" not in str(row[1]) and "\x1b" not in str(row[1]) and str(row[2]) == "all events"


def test_the_status_lines_say_rate_undelivered_resend_window_bot_failures_and_advice():
    events = tuple(Delivery(f"evt_{n}", "checkout.session.completed", NOW - timedelta(hours=n), 0, session())
                   for n in range(1, 5))  # fmt: skip
    failed = (Delivery("evt_4", "checkout.session.completed", NOW - timedelta(days=2), 1, session()),)
    deliveries = Deliveries("7d", events, failed, NOW, failure_rate=2 / 3600)
    owed_now = (owed(),)
    reconciliation = Reconciliation("7d", 5, 4, owed_now, (), NOW)
    endpoints = [WebhookEndpoint("we_1", HOOK, "disabled", ("checkout.session.completed",), "2024-06-20")]
    text = status_text(deliveries, reconciliation, endpoints, reading="30d").plain
    assert (
        "7d  75.0 % delivered (3/4) · 1 undelivered, oldest 2d (resend 28d left) · bot 2 failures/h" in text
    )
    assert "(reading 30d…)" in text
    assert "1 paid session without credits: resend its event" in text
    assert f"ENDPOINT DISABLED  {HOOK}" in text
    unknown = Deliveries(
        "24h", (), (), NOW, failure_rate_error="Prometheus is not configured (PROMETHEUS_URL)"
    )
    line = status_text(unknown, Reconciliation("24h", 0, 0, (), (), NOW), []).plain
    assert "no checkout events in 24h · bot failures/h: Prometheus is not configured" in line
    assert "every paid session of the last 24h has its credits" in line


# -- the screen ----------------------------------------------------------------------------


@pytest.fixture
def stripe_fake(seeded_db):
    server = FakeStripe(KEY, dsn=seeded_db)
    server.start()
    yield server
    server.stop()


def stripe(url: str) -> dict[str, str]:
    return {"STRIPE_SECRET_KEY": KEY, "OPSCONSOLE_STRIPE_API_BASE": url}


async def fetch(dsn: str, sql: str, *args):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def seed_owed(dsn: str, fake: FakeStripe, n: int) -> list[dict]:
    """An endpoint and `n` paid sessions of real users whose event it never accepted."""
    people = await fetch(dsn, "SELECT id FROM users ORDER BY created_at, id LIMIT $1", n)
    fake.events.add_endpoint(HOOK)
    now = int(time.time())
    return [
        fake.events.add_paid_session(
            str(p["id"]), 2500, credits=2500, created=now - 3600 + i, delivered=False
        )[0]
        for i, p in enumerate(people)
    ]


async def open_payments(pilot) -> PaymentsScreen:
    await pilot.press("0")
    screen = pilot.app.screen
    assert isinstance(screen, PaymentsScreen)
    await wait_until(pilot, lambda: screen.view is not None or screen.error is not None, timeout=15)
    return screen


def owed_table(screen) -> LiveTable:
    return screen.query_one("#owed-table", LiveTable)


async def credit_rows(dsn: str, payment_intents: list[str]) -> int:
    rows = await fetch(dsn, "SELECT count(*) FROM credit_transactions WHERE transaction_type = 'purchase' "
                            "AND stripe_payment_intent_id = ANY($1)", payment_intents)  # fmt: skip
    return rows[0][0]


async def test_the_owed_sessions_and_a_credit_typed_with_its_credits(
    seeded_db, seeded_runtime_db, stripe_fake
):
    made = await seed_owed(seeded_db, stripe_fake, 3)
    emails = {
        str(r["id"]): r["email"]
        for r in await fetch(
            seeded_db,
            "SELECT id, email FROM users WHERE id = ANY($1::uuid[])",
            [s["metadata"]["user_id"] for s in made],
        )
    }
    app = make_app(seeded_runtime_db, **stripe(stripe_fake.url))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_payments(pilot)
        table = owed_table(screen)
        assert list(table.shown) == [s["id"] for s in made]  # oldest first
        first = made[0]
        assert str(table.shown[first["id"]][0]).strip() == emails[first["metadata"]["user_id"]]
        assert "3 paid, not credited · 7,500 credits" in str(
            screen.query_one("#owed-panel", Panel).border_title
        )
        detail = text_of(screen.query_one("#session"))
        assert first["id"] in detail and first["payment_intent"] in detail and "undelivered" in detail
        status = text_of(screen.query_one("#payments-status"))
        assert "0.0 % delivered (0/3) · 3 undelivered" in status and "under the runbook's 50" in status

        await pilot.press(CREDIT.key)
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen), timeout=15)
        confirm = app.screen
        assert confirm.typed and confirm.plan.typed_word == "2500" and confirm.plan.target == first["id"]
        await pilot.press("enter")  # nothing typed: nothing runs
        assert app.screen is confirm
        await pilot.press(*"2500", "enter")
        await wait_until(pilot, lambda: first["id"] not in table.shown and len(table.shown) == 2, timeout=20)
    assert await credit_rows(seeded_db, [first["payment_intent"]]) == 1
    assert await credit_rows(seeded_db, [s["payment_intent"] for s in made[1:]]) == 0


async def answer_bulk(pilot, count: int) -> None:
    """The one confirmation of a bulk action: its count typed when it asks for it, else y."""
    app = pilot.app
    await wait_until(pilot, lambda: not isinstance(app.screen, PaymentsScreen), timeout=20)
    await pilot.pause(0.2)
    if app.screen.query(Input):
        await pilot.press(*str(count), "enter")
    else:
        await pilot.press("y")


async def test_every_owed_session_marked_and_credited_with_one_confirmation(
    seeded_db, seeded_runtime_db, stripe_fake
):
    made = await seed_owed(seeded_db, stripe_fake, 4)
    app = make_app(seeded_runtime_db, **stripe(stripe_fake.url))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_payments(pilot)
        table = owed_table(screen)
        await pilot.press("asterisk")
        assert screen.marked == {s["id"] for s in made}
        assert all(str(row[0]).startswith("•") for row in table.shown.values())
        await pilot.press(CREDIT.key)
        await answer_bulk(pilot, 4)
        await wait_until(pilot, lambda: not table.shown, timeout=30)
        assert isinstance(app.screen, PaymentsScreen)  # one confirmation, no other modal
        assert not screen.marked
    assert await credit_rows(seeded_db, [s["payment_intent"] for s in made]) == 4
    audit = await fetch(seeded_db, "SELECT target FROM ops.audit_log WHERE action = 'credit_payment' "
                                   "AND phase = 'outcome'")  # fmt: skip
    assert sorted(r["target"] for r in audit) == sorted(s["id"] for s in made)  # each audited on its own


async def test_support_resends_and_is_not_offered_the_credit(seeded_db, seeded_runtime_db, stripe_fake):
    made = await seed_owed(seeded_db, stripe_fake, 2)
    stripe_fake.events.deliver = stripe_fake.bot_webhook  # the bot credits what reaches it
    app = make_app(seeded_runtime_db, role="support", **stripe(stripe_fake.url))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_payments(pilot)
        table = owed_table(screen)
        footer = screen_text(app)[-1]
        assert f"{RESEND.key} Resend" in footer and f"{CREDIT.key} Credit" not in footer
        assert f"on-call credits it ({CREDIT.key})" in text_of(screen.query_one("#session"))
        await pilot.press(CREDIT.key)
        await pilot.pause(0.3)
        assert app.screen is screen  # not offered: nothing asked, nothing run

        await pilot.press(RESEND.key)
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen), timeout=15)
        assert not app.screen.typed and not app.screen.plan.refusal
        await pilot.press("y")
        await wait_until(pilot, lambda: made[0]["id"] not in table.shown, timeout=20)
    assert [e for e, _ in stripe_fake.events.resends] == [
        next(ev.id for ev in stripe_fake.events.events if ev.obj["id"] == made[0]["id"])
    ]
    assert await credit_rows(seeded_db, [made[0]["payment_intent"]]) == 1  # by the bot, from the resend


async def test_resend_on_a_row_whose_event_was_delivered_says_why_not(
    seeded_db, seeded_runtime_db, stripe_fake
):
    people = await fetch(seeded_db, "SELECT id FROM users ORDER BY created_at, id LIMIT 1")
    stripe_fake.events.add_endpoint(HOOK)
    when = int(time.time()) - 600
    stripe_fake.events.add_paid_session(
        str(people[0]["id"]), 2500, credits=2500, created=when, delivered=True
    )
    app = make_app(seeded_runtime_db, **stripe(stripe_fake.url))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_payments(pilot)
        await wait_until(pilot, lambda: len(owed_table(screen).shown) == 1)
        await pilot.press(RESEND.key)
        await pilot.pause(0.3)
        assert app.screen is screen
        said = [n.message for n in app._notifications]
        assert any("a resend would not help" in m for m in said), said


async def test_stripe_going_away_degrades_the_area_not_the_app(seeded_db, seeded_runtime_db, stripe_fake):
    await seed_owed(seeded_db, stripe_fake, 2)
    proxy = TcpProxy("127.0.0.1", int(stripe_fake.url.rsplit(":", 1)[1]))
    proxy.up()
    try:
        app = make_app(seeded_runtime_db, health=0.5, **stripe(f"http://127.0.0.1:{proxy.port}"))
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_payments(pilot)
            table = owed_table(screen)
            assert len(table.shown) == 2
            await asyncio.to_thread(proxy.down)
            await pilot.press("r")
            panel = screen.query_one("#owed-panel", Panel)
            await wait_until(pilot, lambda: panel.has_class("-failing"), timeout=20)
            assert "Stripe" in str(panel.border_subtitle)
            status = text_of(screen.query_one("#payments-status"))
            assert "Stripe" in status and "tried again with every poll" in status
            assert len(table.shown) == 2  # the last rows read stay, with their age
            await pilot.press("2")
            assert app.screen.AREA == "orders"
            await pilot.press("0")
            assert app.screen is screen

            await asyncio.to_thread(proxy.up)  # back: the health check sees it and every panel reads again
            await wait_until(pilot, lambda: not panel.has_class("-failing"), timeout=30)
            assert screen.error is None and "tried again" not in text_of(screen.query_one("#payments-status"))
    finally:
        proxy.close()


async def test_a_customers_escape_sequence_is_shown_as_text(seeded_db, seeded_runtime_db, stripe_fake):
    made = await seed_owed(seeded_db, stripe_fake, 1)
    huge = EVIL_EMAIL + "x" * 5000
    await fetch(
        seeded_db, "UPDATE users SET email = $2 WHERE id = $1::uuid", made[0]["metadata"]["user_id"], huge
    )
    app = make_app(seeded_runtime_db, **stripe(stripe_fake.url))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_payments(pilot)
        await wait_until(pilot, lambda: len(owed_table(screen).shown) == 1)
        await pilot.pause(0.2)
        shown = drawn(app)
        assert_inert(shown)
        assert "m\\x1b[31me\\x9b2J@example" in shown
        assert "x" * 200 not in text_of(screen.query_one("#session"))  # a huge value is cut


async def test_without_stripe_every_panel_says_it_is_not_configured(seeded_runtime_db):
    app = make_app(seeded_runtime_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("0")
        screen = app.screen
        await pilot.pause(0.3)
        said = "Stripe is not configured (STRIPE_SECRET_KEY)"
        assert said in text_of(screen.query_one("#payments-status"))
        for tab, about in (("c", "#owed-about"), ("d", "#deliveries-about"), ("e", "#endpoints-about")):
            await pilot.press(tab)
            await pilot.pause(0.1)
            assert said in text_of(screen.query_one(about)) and screen.query_one(about).region.height


async def test_the_payments_area_at_80x24(seeded_db, seeded_runtime_db, stripe_fake):
    await seed_owed(seeded_db, stripe_fake, 8)
    stripe_fake.events.add_endpoint("https://old.example/hook", status="disabled")
    app = make_app(seeded_runtime_db, role="admin", **stripe(stripe_fake.url))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_payments(pilot)
        await pilot.pause(0.3)
        footer = screen_text(app)[-1]
        keys = {fk.key_display for fk in screen.query(FooterKey) if f"{fk.key_display} " in footer}
        assert {CREDIT.key, RESEND.key, "*", "p", "?"} <= keys, footer
        table = owed_table(screen)
        assert on_screen(table) and table.size.height >= 4  # the header and three rows at least
        assert on_screen(screen.query_one("#session-panel"))
        lines = screen_text(app)
        header = next(line for line in lines if "customer" in line)
        for column in ("customer", "paid", "credits", "age", "event"):
            assert column in header  # every column on screen at 80 columns
        assert any("ENDPOINT DISABLED" in line for line in lines)
        await pilot.press("e")
        await pilot.pause(0.2)
        assert any("DISABLED" in line and "old.example" in line for line in screen_text(app))
