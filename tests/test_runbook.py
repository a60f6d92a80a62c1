"""The runbook engine on a real database: role and read-only enforcement, dry run, the
claim that lets exactly one of two consoles act, the precondition re-read at the moment
of the change, and the audit trail (intent before, outcome after, append-only, chained)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from console.settings import Settings
from console.wiring import build_services
from services.audit import AuditFilter, AuditService
from services.orders import OrdersService
from services.runbook import Action, Actor, Confirmation, Preview, Result, Runbook

CALLS: list[str] = []


async def _preview(env, target, params):
    return Preview(f"mark order {target} canceled", ("UPDATE orders SET status = 'canceled' WHERE id = $1",))


async def _check(env, conn, target, params):
    status = await conn.fetchval("SELECT status FROM orders WHERE id = $1::uuid FOR UPDATE", target)
    return None if status == "paid" else f"order is {status}"


async def _run(env, target, params, conn, progress):
    CALLS.append(target)
    await asyncio.sleep(0.3)  # a slow external call: the other console tries meanwhile
    await conn.execute("UPDATE orders SET status = 'canceled' WHERE id = $1::uuid", target)
    return Result("canceled", {"why": params.get("why")}, secret="one-time-password-123")


TEST_ACTION = Action(
    name="test_cancel", title="Test cancel", key="T", role="support", confirmation=Confirmation.YES_NO,
    help="test", target_kind="order", preview=_preview, check=_check, run=_run, in_transaction=True,
    audit_params=("why",), verb="canceling",
)  # fmt: skip


def runbook(dsn: str, operator="alice", role="support", console="c1", **mode) -> Runbook:
    services = build_services(Settings.isolated(DATABASE_URL=dsn).resolved())
    return Runbook(services, Actor(operator, role, console, **mode))


async def _stuck_order(dsn: str) -> str:
    page = await OrdersService(runbook(dsn).services.postgres).page("stuck")
    return page.orders[0].id


async def _status(dsn: str, order_id: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT status FROM orders WHERE id = $1::uuid", order_id)
    finally:
        await conn.close()


@pytest.fixture(autouse=True)
def _reset_calls():
    CALLS.clear()


async def test_two_consoles_at_once_exactly_one_acts_and_the_other_sees_who(seeded_db):
    order = await _stuck_order(seeded_db)
    alice, bob = runbook(seeded_db, "alice", console="c1"), runbook(seeded_db, "bob", console="c2")
    first, second = await asyncio.gather(
        alice.execute(TEST_ACTION, order, {"why": "dup"}),
        bob.execute(TEST_ACTION, order, {"why": "dup"}),
    )
    outcomes = sorted([first.status, second.status])
    assert CALLS == [order]  # one call, not two
    assert outcomes in (["busy", "ok"], ["ok", "refused"])
    loser = first if first.status != "ok" else second
    assert "is canceling order" in loser.message or "order is canceled" in loser.message
    assert await _status(seeded_db, order) == "canceled"


async def test_support_cannot_run_an_oncall_action_and_it_is_audited(seeded_db):
    order = await _stuck_order(seeded_db)
    oncall_only = Action(**{**TEST_ACTION.__dict__, "role": "oncall", "name": "test_oncall"})
    book = runbook(seeded_db, role="support")
    outcome = await book.execute(oncall_only, order)
    assert outcome.status == "refused" and "needs the oncall role" in outcome.message
    assert CALLS == [] and await _status(seeded_db, order) == "paid"
    rows = await AuditService(book.services.postgres).page(AuditFilter(target=order))
    assert [(r.phase, r.outcome) for r in rows] == [("outcome", "refused"), ("intent", None)]


async def test_read_only_blocks_and_writes_nothing(seeded_db):
    order = await _stuck_order(seeded_db)
    book = runbook(seeded_db, role="admin", read_only=True)
    outcome = await book.execute(TEST_ACTION, order)
    assert outcome.status == "refused" and "read-only" in outcome.message
    assert (await book.plan(TEST_ACTION, order)).refusal
    assert await AuditService(book.services.postgres).page() == []
    assert await _status(seeded_db, order) == "paid"


async def test_dry_run_checks_the_precondition_and_changes_nothing(seeded_db):
    order = await _stuck_order(seeded_db)
    book = runbook(seeded_db, dry_run=True)
    outcome = await book.execute(TEST_ACTION, order)
    assert outcome.status == "dry-run"
    assert CALLS == [] and await _status(seeded_db, order) == "paid"


async def test_the_precondition_is_read_again_at_the_moment_of_the_change(seeded_db):
    order = await _stuck_order(seeded_db)
    book = runbook(seeded_db)
    plan = await book.plan(TEST_ACTION, order)
    assert plan.refusal is None  # looked fine when previewed...
    conn = await asyncpg.connect(seeded_db)
    await conn.execute("UPDATE orders SET status = 'provisioned' WHERE id = $1::uuid", order)
    await conn.close()
    outcome = await book.execute(TEST_ACTION, order)  # ...but changed before the confirm
    assert outcome.status == "refused" and outcome.message == "order is provisioned"
    assert CALLS == []


async def test_the_audit_trail_records_intent_and_outcome_without_secrets(seeded_db):
    order = await _stuck_order(seeded_db)
    book = runbook(seeded_db)
    outcome = await book.execute(TEST_ACTION, order, {"why": "customer asked"})
    assert outcome.ok and outcome.secret == "one-time-password-123"
    audit = AuditService(book.services.postgres)
    outcome_row, intent_row = await audit.page(AuditFilter(target=order))
    assert intent_row.phase == "intent" and intent_row.detail == {"why": "customer asked", "console": "c1"}
    assert outcome_row.intent_id == intent_row.id and outcome_row.outcome == "ok"
    conn = await asyncpg.connect(seeded_db)
    try:
        dump = await conn.fetchval("SELECT string_agg(a::text, ' ') FROM ops.audit_log a")
        assert "one-time-password-123" not in dump
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute("UPDATE ops.audit_log SET operator = 'mallory'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM ops.audit_log")
    finally:
        await conn.close()
    assert (await audit.verify()).ok


async def test_verify_names_the_first_row_whose_hash_breaks(seeded_db):
    order = await _stuck_order(seeded_db)
    book = runbook(seeded_db)
    for _ in range(2):
        await book.execute(TEST_ACTION, order)
    conn = await asyncpg.connect(seeded_db)
    try:  # an attacker with superuser rights edits row 2 behind the trigger's back
        await conn.execute("ALTER TABLE ops.audit_log DISABLE TRIGGER audit_log_no_update")
        await conn.execute("UPDATE ops.audit_log SET operator = 'mallory' WHERE id = 2")
    finally:
        await conn.close()
    report = await AuditService(book.services.postgres).verify()
    assert not report.ok and report.broken_id == 2 and "content" in report.reason


async def test_an_action_interrupted_by_the_console_closing_is_audited(seeded_db):
    order = await _stuck_order(seeded_db)
    book = runbook(seeded_db)
    task = asyncio.create_task(book.execute(TEST_ACTION, order))
    for _ in range(500):  # until the slow call is under way
        if CALLS:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    rows = await AuditService(book.services.postgres).page(AuditFilter(target=order))
    # The call may have left the console: the log says the result is unknown, and where to look.
    assert rows[0].phase == "outcome" and rows[0].outcome == "unknown" and "interrupted" in rows[0].error
    assert f"check order {order}" in rows[0].error
    assert await _status(seeded_db, order) == "paid"  # the transaction was rolled back
    assert await book.services.claims.holder("order", order) is None
