"""The audit area: what was done shows up, filters narrow it, a bad filter says why and
leaves the list as it was; the pure row and filter functions."""

from __future__ import annotations

from textual.widgets import DataTable

from console.settings import Settings
from console.wiring import build_services
from screens.audit import AuditScreen, audit_row, parse_filter
from services.audit import AuditService
from tests.conftest import wait_until
from tests.helpers import make_app


async def _record(dsn: str) -> None:
    audit = AuditService(build_services(Settings.isolated(DATABASE_URL=dsn).resolved()).postgres)
    for operator, outcome in (("alice", "ok"), ("bob", "failed"), ("alice", "refused")):
        intent = await audit.record(operator=operator, role="support", action="retry_provisioning",
                                    target=f"order-{operator}", phase="intent")  # fmt: skip
        await audit.record(operator=operator, role="support", action="retry_provisioning",
                           target=f"order-{operator}", phase="outcome", outcome=outcome, intent_id=intent,
                           duration_ms=1200,
                           error=None if outcome == "ok" else "No available nodes")  # fmt: skip


async def test_the_audit_area_lists_and_filters(empty_db):
    await _record(empty_db)
    app = make_app(empty_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("8")
        screen = app.screen
        assert isinstance(screen, AuditScreen)
        table = screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 6)
        await pilot.press("slash")
        await pilot.press(*"outcome=failed", "enter")
        await wait_until(pilot, lambda: table.row_count == 1)
        assert "No available nodes" in str(table.get_row_at(0)[-1])
        await pilot.press("slash")
        for _ in range(20):
            await pilot.press("backspace")
        await pilot.press(*"who=bob", "enter")
        await pilot.pause(0.2)
        assert table.row_count == 1  # unchanged
        assert any("Filter not applied" in str(n.title) for n in app._notifications)


def test_parse_filter_and_rows():
    assert parse_filter("operator=alice outcome=failed").describe() == "operator=alice, outcome=failed"
    assert parse_filter("").describe() == "everything"
    try:
        parse_filter("who=bob")
    except ValueError as exc:
        assert "'who=bob'" in str(exc)
    else:
        raise AssertionError("a bad filter was accepted")


def test_an_audit_row_shows_who_and_how_it_ended():
    from datetime import UTC, datetime

    from services.audit import AuditRow

    row = AuditRow(7, datetime(2026, 11, 22, 9, 5, tzinfo=UTC), "alice", "support", "cancel_refund", "o-1",
                   "outcome", "failed", 6, 1500, {}, "Stripe refused")  # fmt: skip
    cells = audit_row(row)
    assert str(cells[2]) == "alice" and str(cells[4]) == "failed" and str(cells[6]) == "Stripe refused"


async def test_the_target_filter_takes_the_short_id_the_tables_show(empty_db):
    from services.audit import AuditFilter

    audit = AuditService(build_services(Settings.isolated(DATABASE_URL=empty_db).resolved()).postgres)
    order, other = "ed113faf-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "ed113fb0-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
    for target in (order, other, "node_1", "nodeX1"):
        await audit.record(operator="alice", role="support", action="retry_provisioning", target=target,
                           phase="intent")  # fmt: skip
    assert [r.target for r in await audit.page(AuditFilter(target="ed113faf"))] == [order]
    assert [r.target for r in await audit.page(AuditFilter(target=order))] == [order]
    assert {r.target for r in await audit.page(AuditFilter(target="ed113f"))} == {order, other}
    assert [r.target for r in await audit.page(AuditFilter(target="node_"))] == ["node_1"]  # '_' is literal
    app = make_app(empty_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("8")
        table = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 4)
        await pilot.press("slash", *"target=ed113faf", "enter")
        await wait_until(pilot, lambda: table.row_count == 1)
        assert [r.target for r in app.screen.rows] == [order] and str(table.get_row_at(0)[5]) == "ed113faf…"
