"""Pure row rendering: what the overview and the backends table show for given data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from screens.backends import backend_row
from screens.overview import action_row, figure_tiles, fire_lines, status_row
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
    assert tiles["tile-errors"] == ("0", False, "80 new in 24 h")
    assert figure_tiles(overview(stuck=0))["tile-stuck"] == ("0", False, "")


def test_the_fire_panel_answers_is_anything_on_fire():
    from services.alerts import Alert, AlertsSnapshot
    from services.incidents import Incident
    from services.nodes import Capacity, NodeCapacity

    alerts = AlertsSnapshot(
        (Alert("PaymentWebhookFailures", "firing", "critical", {}, NOW - timedelta(minutes=12), "prometheus"),
         Alert("HighErrorRate", "firing", "warning", {}, None, "prometheus", silenced_by=("s1",)),
         Alert("OrdersInError", "firing", "warning", {}, None, "console")),
        ("alertmanager: Alertmanager at http://am:9093 cannot be reached",), 3,
    )  # fmt: skip
    incident = Incident(7, "Webhooks \x1b[2J failing", "P1", "assessment", None, None, {}, "ines",
                        NOW - timedelta(hours=2), None, None, NOW - timedelta(minutes=45))  # fmt: skip
    hot = NodeCapacity("fsn1-node-02", "fsn1", True, 100, 0, 91, 9, 30)
    calm = NodeCapacity("hel1-node-01", "hel1", True, 100, 0, 10, 90, 3)
    capacity = Capacity(nodes=[hot, calm], plans=[])
    text = fire_lines(alerts, [incident], capacity, NOW).plain
    assert "ALERTS  1 critical · 1 warning" in text  # the silenced one is not on fire
    assert "PaymentWebhookFailures  12m" in text and "HighErrorRate" not in text
    assert "! alertmanager: Alertmanager at http://am:9093 cannot be reached" in text
    assert "INC-7 P1 Webhooks \\x1b[2J failing" in text  # inert
    assert "MISSED by 1:00:00" in text and "status update overdue by 15:00" in text
    assert "NODES ≥ 80 %  1 of 2 open" in text and "fsn1-node-02" in text and "hel1-node-01" not in text
    unread = fire_lines(None, None, None, NOW).plain
    assert unread.count("reading…") == 5  # alerts, incidents, nodes, checklists, backups


def test_status_bar_scales_to_the_biggest_status():
    status, count, bar = status_row(StatusCount("error", 5), widest=10)
    assert (str(status), count, len(str(bar))) == ("error", "5", 10)


def test_action_row_shows_how_each_action_ended():
    entry = AuditEntry(1, NOW, "alice", "retry_provisioning", "8f3c2a11-aaaa", "intent", "running", None)
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


def test_the_fire_panel_says_whether_the_last_good_backup_is_within_the_rpo():
    from datetime import timedelta

    from services.backup_model import BackupEntry, BackupsStatus

    good = BackupEntry(id="20261130T030000Z-aaaaaa", kind="opsconsole", key="k", stored_bytes=1,
                       finished_at=NOW - timedelta(hours=30))  # fmt: skip
    old = fire_lines(None, [], None, NOW, BackupsStatus((good,), NOW, good, None)).plain
    assert "RPO BREACHED" in old and "last good 30h ago" in old and "restore drill never done" in old
    fresh = BackupEntry(id="x", kind="legacy", key="k2", stored_bytes=1, finished_at=NOW - timedelta(hours=2))
    ok = fire_lines(None, [], None, NOW, BackupsStatus((fresh, good), NOW, fresh, None)).plain
    assert "within the 24 h RPO" in ok and "BREACHED" not in ok
    assert "BACKUPS  not configured" in fire_lines(None, [], None, NOW, None, "not configured").plain
