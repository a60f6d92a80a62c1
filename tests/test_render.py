"""Pure row rendering: what the overview and the backends table show for given data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from screens.backends import backend_row
from screens.overview import action_row, figure_tiles, status_row
from screens.widgets import badge_text
from services.health import BackendStatus
from services.overview import AuditEntry, Overview, StatusCount

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def overview(stuck=3, errors=0, enabled=5) -> Overview:
    return Overview(
        stuck=stuck, oldest_stuck_at=NOW - timedelta(minutes=95) if stuck else None, errors=errors,
        created_24h=80, nodes_enabled=enabled, nodes_total=7, as_of=NOW, by_status_24h=(), recent_actions=(),
    )  # fmt: skip


def test_tiles_flag_stuck_orders_with_the_oldest_wait():
    tiles = figure_tiles(overview(stuck=3))
    assert tiles["tile-stuck"] == ("3", True, "oldest 95 min")
    assert tiles["tile-errors"] == ("0", False, "")
    assert tiles["tile-nodes"] == ("5/7", False, "")
    assert figure_tiles(overview(stuck=0))["tile-stuck"] == ("0", False, "")
    assert figure_tiles(overview(enabled=0))["tile-nodes"][1] is True  # no node takes orders


def test_status_bar_scales_to_the_biggest_status():
    status, count, bar = status_row(StatusCount("error", 5), widest=10)
    assert (str(status), count, len(str(bar))) == ("error", "5", 10)


def test_action_row_shows_running_for_an_intent_without_outcome():
    entry = AuditEntry(1, NOW, "alice", "retry_provisioning", "8f3c2a11-aaaa", "intent", None, None)
    at, who, what, outcome = action_row(entry)
    assert (at, str(who), str(what), str(outcome)) == (
        "03:00:00",
        "alice",
        "retry_provisioning 8f3c2a11-aaa",
        "running",
    )


def test_badges():
    assert str(badge_text(BackendStatus("postgres", "pg", "ok"))) == "pg ●"
    assert str(badge_text(BackendStatus("prometheus", "prom", "stale", age=45))) == "prom ◐ 45 s"
    assert str(badge_text(BackendStatus("kube", "k8s", "down"), compact=True)) == "k8s✕"
    assert str(badge_text(BackendStatus("s3", "s3", "not configured"))) == "s3 ·"


def test_backend_row_shows_version_when_ok_and_reason_when_down():
    ok = backend_row(BackendStatus("postgres", "pg", "ok", 3, "PostgreSQL 15.18", "", 2.4, "db:5432/x"))
    assert (str(ok[2]), ok[3], ok[4]) == ("PostgreSQL 15.18", "2 ms", "3 s")
    down = backend_row(BackendStatus("postgres", "pg", "down", None, "", "refused the connection"))
    assert str(down[1]) == "✕ down" and str(down[5]) == "refused the connection" and str(down[2]) == ""
