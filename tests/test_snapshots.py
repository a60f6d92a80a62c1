"""The shell's resting state, as SVG snapshots, at 80x24 (an SSH window) and 120x40."""

from __future__ import annotations

import pytest

from tests.conftest import wait_until
from tests.helpers import make_app


async def settled(pilot) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: getattr(app.screen, "overview", None) is not None)
    await wait_until(
        pilot, lambda: "pg ●" in str(app.screen.query_one("#shell-badges").render()).replace("pg●", "pg ●")
    )
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_overview_shell(snap_compare, empty_db, size):
    assert snap_compare(make_app(empty_db), terminal_size=size, run_before=settled)


def _settled_on(key: str, ready):
    async def run_before(pilot) -> None:
        await settled(pilot)
        await pilot.press(key)
        await wait_until(pilot, lambda: ready(pilot.app.screen))
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_nodes_capacity(snap_compare, empty_db, size):
    import asyncio

    from screens.live_table import LiveTable
    from tests.test_nodes import _small_world

    asyncio.run(_small_world(empty_db))  # three nodes, two plans: every number hand-checkable
    ready = _settled_on("3", lambda s: len(s.query_one("#capacity-table", LiveTable).shown) == 3)
    assert snap_compare(make_app(empty_db), terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_incidents_without_alerts(snap_compare, empty_db, size):
    ready = _settled_on("4", lambda s: s._source_pollers["console"].freshness().age is not None)
    assert snap_compare(make_app(empty_db), terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_orders_empty(snap_compare, empty_db, size):
    """The orders area at rest on an empty business: its columns, keys and what it says when
    there is nothing."""
    ready = _settled_on("2", lambda s: getattr(s, "current_page", None) is not None)
    assert snap_compare(make_app(empty_db), terminal_size=size, run_before=ready)


def _modal(build):
    async def run_before(pilot) -> None:
        await settled(pilot)
        pilot.app.push_screen(build())
        await pilot.pause(0.3)

    return run_before


def _cancel_plan():
    """The destructive confirmation as cancel-and-refund shows it, with fixed values."""
    from services.order_actions import CANCEL
    from services.runbook import Confirmation, Plan, Preview

    order = "8f3c2a11-5b6d-4e7f-9a0b-1c2d3e4f5a6b"
    calls = (
        "UPDATE orders SET status = 'canceled', updated_at = now() WHERE id = $1::uuid;\n"
        f"-- $1 = id: '{order}'",
        f"DELETE /v1/subscriptions/sub_0a03c8870b230c\nIdempotency-Key: opsconsole:cancel:{order}",
        "POST /v1/refunds payment_intent=pi_042a6bd7 amount=2090\n"
        f"Idempotency-Key: opsconsole:refund:{order}:2090",
        "DELETE http://panel.example/api/application/servers/20009\nAuthorization: Bearer ptla_****",
    )
    preview = Preview(f"Cancel order {order}: cancel its Stripe subscription, refund $20.90 of $20.90, "
                      "set it canceled, delete panel server 20009.", calls,
                      ("server 20009 and its files are deleted from the panel",))  # fmt: skip
    return Plan(CANCEL, order, {"refund": -1, "delete_server": True}, preview, None, Confirmation.TYPED)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_destructive_confirmation(snap_compare, empty_db, size):
    from screens.action_modal import ActionConfirmScreen

    build = lambda: ActionConfirmScreen(_cancel_plan())  # noqa: E731
    assert snap_compare(make_app(empty_db), terminal_size=size, run_before=_modal(build))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_help(snap_compare, empty_db, size):
    async def run_before(pilot) -> None:
        await settled(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.3)

    assert snap_compare(make_app(empty_db), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_backups_empty_bucket(snap_compare, empty_db, size):
    """The backups area on an empty bucket: the RPO breached, the drill overdue, the list's
    columns, the two tabs and the backup action keys."""
    from console.sandbox.s3 import S3Server

    async def run_before(pilot) -> None:
        await settled(pilot)
        await pilot.press("5")
        await wait_until(pilot, lambda: getattr(pilot.app.screen, "status", None) is not None)
        badges = lambda: str(pilot.app.screen.query_one("#shell-badges").render()).replace("s3●", "s3 ●")  # noqa: E731
        await wait_until(pilot, lambda: "s3 ●" in badges())
        await pilot.pause()

    with S3Server() as server:
        bucket = server.create_bucket("agis-backups-snapshot")
        env = {**server.env(bucket), "S3_USE_SSL": "false", "BACKUP_ENCRYPTION_KEY": "00" * 32}
        assert snap_compare(make_app(empty_db, **env), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_pricing(snap_compare, empty_db, size):
    """The pricing area on four games (one off sale, one changed three days ago): prices, live
    servers, credits/hour, the first game's detail and the pricing keys."""
    import asyncio

    from screens.live_table import LiveTable
    from tests.test_pricing_screen import price_world

    asyncio.run(price_world(empty_db))
    ready = _settled_on("6", lambda s: len(s.query_one("#games-table", LiveTable).shown) == 4)
    assert snap_compare(make_app(empty_db, role="admin"), terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_payments(snap_compare, empty_db, size, monkeypatch):
    """The payments area on three paid sessions the webhook never delivered (one counting its
    credits from the amount) and a disabled endpoint: the success rate, the oldest event's
    resend window, the runbook's advice, the owed list, the first session and the payment keys.
    Stripe's ids and the clock are fixed (the fake's ids count up, `now` is 2026-03-01 12:00)."""
    import asyncio
    import itertools
    from datetime import UTC, datetime
    from types import SimpleNamespace

    import asyncpg

    from console.sandbox import fake_stripe_events
    from console.sandbox.fake_stripe import FakeStripe
    from screens.live_table import LiveTable

    fixed = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            return fixed

    counter = itertools.count(1)
    monkeypatch.setattr(
        fake_stripe_events, "secrets", SimpleNamespace(token_hex=lambda n: f"{next(counter):0{2 * n}x}")
    )
    monkeypatch.setattr("services.reconcile.datetime", Clock)
    emails = ("ada@example.com", "bo.lindqvist@example.net", "chen.wei@example.org")
    people = [(f"00000000-0000-4000-8000-{n:012d}", email) for n, email in enumerate(emails, start=1)]

    async def users() -> None:
        conn = await asyncpg.connect(empty_db)
        try:
            await conn.executemany("INSERT INTO users (id, email) VALUES ($1::uuid, $2)", people)
        finally:
            await conn.close()

    asyncio.run(users())
    fake = FakeStripe("sk_test_snapshot_0123456789", dsn=empty_db)
    fake.events.now = fixed.timestamp
    fake.events.add_endpoint("https://bot.example/api/stripe/webhook")
    fake.events.add_endpoint("https://old.example/hook", status="disabled")
    at = int(fixed.timestamp())
    for n, ((user, _), amount) in enumerate(zip(people, (2500, 999, 5000), strict=True)):
        credits = None if amount == 999 else amount
        fake.events.add_paid_session(
            user, amount, credits=credits, created=at - 5 * 3600 + n * 600, delivered=False
        )

    async def run_before(pilot) -> None:
        await settled(pilot)
        await pilot.press("0")
        await wait_until(pilot, lambda: len(pilot.app.screen.query_one("#owed-table", LiveTable).shown) == 3)

        def badges() -> str:
            return str(pilot.app.screen.query_one("#shell-badges").render()).replace("stripe●", "stripe ●")

        await wait_until(pilot, lambda: "stripe ●" in badges())
        await pilot.pause()

    fake.start()
    try:
        env = {"STRIPE_SECRET_KEY": fake.secret_key, "OPSCONSOLE_STRIPE_API_BASE": fake.url}
        assert snap_compare(make_app(empty_db, **env), terminal_size=size, run_before=run_before)
    finally:
        fake.stop()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_checklists(snap_compare, empty_db, size, monkeypatch):
    """The checklists area on an empty business: the daily run just walked (no node enabled:
    FAIL; Stripe and Prometheus not configured: n/a), every checklist overdue, the first
    item's detail and the checklist keys. The screen's clock is held before the run, so every
    age reads 0s."""
    from datetime import UTC, datetime

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2000, 1, 1, tzinfo=UTC)  # before the run: ages never count up

    monkeypatch.setattr("screens.checklists.datetime", Clock)
    ready = _settled_on("9", lambda s: s.run is not None and s.walking is None)
    assert snap_compare(make_app(empty_db, operator="alice"), terminal_size=size, run_before=ready)
