"""The audit area shows what an operator needs to read a failure: at 120 columns every
column, the error included, is on screen; at 80 the outcome and the target are; the selected
row's whole story (params, error in full, hint, duration) is in the detail pane."""

from __future__ import annotations

import pytest

from screens.audit import AuditScreen
from services.audit import AuditService
from services.postgres import PostgresConfig, PostgresService
from tests.conftest import wait_until
from tests.helpers import make_app, text_of

ERROR = "servers-provision failed: No available nodes\nthe panel said: node fsn1-node-02 has 2 GB free"


async def _failed_action(dsn: str) -> None:
    audit = AuditService(PostgresService(PostgresConfig(dsn=dsn)))
    try:
        intent = await audit.record(operator="sue", role="support", action="retry_provisioning",
                                    target="32b6f533-c5cc-4fb0-a1a6-2208a1f40627", phase="intent",
                                    detail={"console": "tui-1"})  # fmt: skip
        await audit.record(operator="sue", role="support", action="retry_provisioning",
                           target="32b6f533-c5cc-4fb0-a1a6-2208a1f40627", phase="outcome", outcome="failed",
                           intent_id=intent, duration_ms=1234, error=ERROR,
                           detail={"http_status": 500, "hint": "capacity"})  # fmt: skip
    finally:
        await audit.postgres.close()


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_a_failure_can_be_read_in_the_audit_area(seeded_runtime_db, size):
    await _failed_action(seeded_runtime_db)
    app = make_app(seeded_runtime_db)
    async with app.run_test(size=size) as pilot:
        await pilot.press("8")
        screen = app.screen
        assert isinstance(screen, AuditScreen)
        await wait_until(pilot, lambda: screen.rows is not None and len(screen.rows) == 2)
        table = screen.query_one("#audit-table")
        widths = [c.get_render_width(table) for c in table.ordered_columns]
        names = [str(c.label) for c in table.ordered_columns]
        room = table.size.width
        must_fit = "error" if size[0] >= 120 else "target"
        assert sum(widths[: names.index(must_fit) + 1]) <= room, (names, widths, room)
        detail = screen.query_one("#audit-detail")
        await wait_until(pilot, lambda: "#2" in text_of(detail))  # the newest row, the outcome
        shown = text_of(detail)
        assert "node fsn1-node-02 has 2 GB free" in shown  # the error in full, every line
        assert "hint    capacity" in shown and "http_status = 500" in shown and "took    1,234 ms" in shown
        assert "target  32b6f533-c5cc-4fb0-a1a6-2208a1f40627" in shown and "intent  #1" in shown
