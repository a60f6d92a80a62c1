"""Incidents as the manual's response plan runs them: declared, moved through its steps,
commanded, noted; the timeline picks up every runbook action taken meanwhile without anyone
typing it; the response and update clocks on a frozen clock; the post-mortem file."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from services.alerts import AlertsService
from services.incident_actions import (
    DECLARE_INCIDENT,
    INCIDENT_COMMAND,
    INCIDENT_NOTE,
    INCIDENT_POSTMORTEM,
    INCIDENT_STATUS,
)  # fmt: skip
from services.incidents import Incident, response_clock, update_clock
from services.node_actions import DISABLE_NODE
from services.postgres import PostgresConfig, PostgresService
from services.runbook import Actor, Runbook


def _book(dsn: str, role: str = "oncall", operator: str = "ines") -> Runbook:
    from console.settings import Settings
    from console.wiring import build_services

    services = build_services(Settings.isolated(DATABASE_URL=dsn).resolved())
    return Runbook(services, Actor(operator, role, f"test-{operator}"))


@pytest.fixture
async def book(seeded_db):
    runbook = _book(seeded_db)
    yield runbook
    await runbook.services.close()


async def test_lifecycle_and_a_timeline_nobody_typed(book, tmp_path):
    declared = await book.execute(DECLARE_INCIDENT, "Orders stuck after panel upgrade",
                                  {"severity": "P1", "alert_name": "OrdersStuckInPaid"})  # fmt: skip
    assert declared.ok, declared.message
    incident_id = str(declared.detail["incident_id"])
    incidents = book.services.incidents
    [incident] = await incidents.open_incidents()
    assert (
        incident.ref == f"INC-{incident_id}"
        and incident.status == "detection"
        and incident.responded_at is None
    )
    assert (await book.execute(INCIDENT_COMMAND, incident_id)).ok
    assert (await book.execute(INCIDENT_STATUS, incident_id, {"status": "assessment"})).ok
    # Another operator runs a runbook action while the incident is open: it joins the timeline.
    other = _book(book.services.postgres.config.dsn, operator="omar")
    try:
        assert (await other.execute(DISABLE_NODE, "fsn1-node-01")).ok
    finally:
        await other.services.close()
    assert (
        await book.execute(INCIDENT_NOTE, incident_id, {"text": "fsn1-node-01 drained, retrying orders"})
    ).ok
    refused = await book.execute(INCIDENT_STATUS, incident_id, {"status": "assessment"})
    assert refused.status == "refused" and "already in assessment" in refused.message
    assert (await book.execute(INCIDENT_POSTMORTEM, incident_id, {
        "impact": "14 customers waited over an hour for their servers",
        "root_cause": "the panel upgrade reset node allocations",
        "action_items": "pin the panel version\nalert on allocation resets"})).ok  # fmt: skip
    assert (await book.execute(INCIDENT_STATUS, incident_id, {"status": "resolved"})).ok
    incident = await incidents.get(int(incident_id))
    assert incident.commander == "ines" and incident.responded_at and incident.resolved_at
    timeline = await incidents.timeline(incident)
    kinds = [e.kind for e in timeline]
    assert kinds[0] == "declared" and "commander" in kinds and "note" in kinds
    action = next(e for e in timeline if e.kind == "action")
    assert action.operator == "omar" and action.text == "disable_node fsn1-node-01 → ok"
    assert [e.text for e in timeline if e.kind == "status"] == [
        "detection → assessment",
        "assessment → resolved",
    ]
    # An action after the incident was resolved is not on it.
    later = _book(book.services.postgres.config.dsn, operator="omar")
    try:
        from services.node_actions import ENABLE_NODE

        assert (await later.execute(ENABLE_NODE, "fsn1-node-01")).ok
    finally:
        await later.services.close()
    assert all("enable_node" not in e.text for e in await incidents.timeline(incident))

    path = await incidents.export(incident, tmp_path / "pm.md")
    text = path.read_text()
    assert text.startswith(f"# Post-mortem: INC-{incident_id} Orders stuck after panel upgrade")
    for heading in ("## Overview", "## Impact", "## Timeline", "## Root cause", "## Action items"):
        assert heading in text
    assert "- Severity: P1 (High: major feature broken: respond within 1 hour)" in text
    assert "- Commander: ines" in text and "- Alert: OrdersStuckInPaid" in text
    assert "14 customers waited over an hour" in text and "the panel upgrade reset node allocations" in text
    assert "- [ ] pin the panel version\n- [ ] alert on allocation resets" in text
    assert "| omar | action: disable_node fsn1-node-01 → ok |" in text
    assert "note: fsn1-node-01 drained, retrying orders" in text
    with pytest.raises(FileExistsError):
        await incidents.export(incident, tmp_path / "pm.md")


async def test_support_cannot_declare_but_can_add_notes(book, seeded_db):
    declared = await book.execute(DECLARE_INCIDENT, "Webhook failures", {"severity": "P0"})
    support = _book(seeded_db, role="support", operator="sam")
    try:
        refused = await support.execute(DECLARE_INCIDENT, "Another", {"severity": "P2"})
        assert refused.status == "refused" and "needs the oncall role" in refused.message
        note = await support.execute(
            INCIDENT_NOTE, str(declared.detail["incident_id"]), {"text": "customers report"}
        )
        assert note.ok
    finally:
        await support.services.close()
    bad = await book.execute(DECLARE_INCIDENT, "x", {"severity": "P9"})
    assert bad.status == "refused" and "P0, P1, P2, P3" in bad.message
    assert len(await book.services.incidents.open_incidents()) == 1


def _incident(severity: str, declared: datetime, **changes) -> Incident:
    values = dict(id=7, title="t", severity=severity, status="detection", commander=None, alert_name=None,
                  alert_labels={}, declared_by="ines", declared_at=declared, responded_at=None,
                  resolved_at=None, last_update_at=declared)  # fmt: skip
    return Incident(**{**values, **changes})


def test_response_and_update_clocks_on_a_frozen_clock():
    t0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    p1 = _incident("P1", t0)
    assert response_clock(p1, t0 + timedelta(minutes=17, seconds=50)) == response_clock(
        p1, t0 + timedelta(seconds=1070)
    )
    clock = response_clock(p1, t0 + timedelta(minutes=17, seconds=50))
    assert clock.text == "respond in 42:10" and not clock.missed
    missed = response_clock(p1, t0 + timedelta(hours=1, minutes=5))
    assert missed.text == "MISSED by 5:00" and missed.missed
    answered = response_clock(
        _incident("P1", t0, responded_at=t0 + timedelta(minutes=12)), t0 + timedelta(hours=3)
    )
    assert answered.text == "responded in 12:00" and not answered.missed
    p3 = response_clock(_incident("P3", t0), t0 + timedelta(hours=2))
    assert p3.text == "respond in 22:00:00"
    p0 = response_clock(_incident("P0", t0), t0 + timedelta(minutes=16))
    assert p0.missed  # "page now": 15 minutes
    # P0/P1: a status update every 30 minutes; P2/P3 have none.
    assert update_clock(p1, t0 + timedelta(minutes=10)).text == "next update in 20:00"
    overdue = update_clock(p1, t0 + timedelta(minutes=31))
    assert overdue.missed and overdue.text == "status update overdue by 1:00"
    assert update_clock(_incident("P2", t0), t0 + timedelta(hours=5)) is None
    assert update_clock(_incident("P1", t0, resolved_at=t0), t0 + timedelta(hours=5)) is None


async def test_business_alerts_are_the_runbooks_conditions(seeded_db):
    postgres = PostgresService(PostgresConfig(dsn=seeded_db))
    try:
        alerts = await AlertsService(None, None, postgres).business_alerts()
    finally:
        await postgres.close()
    by_name = {a.name: a for a in alerts}
    assert by_name["OrdersStuckInPaid"].severity == "critical" and by_name["OrdersStuckInPaid"].since
    assert by_name["OrdersInError"].summary == "9 orders are in error"
    hot = [a for a in alerts if a.name == "NodeCapacityHigh"]
    assert [a.labels["node"] for a in hot] == ["fsn1-node-01"] and hot[0].severity == "warning"
    assert all(a.source == "console" for a in alerts)


async def test_incidents_json(book, seeded_db):
    import json
    import os
    import subprocess
    import sys

    await book.execute(DECLARE_INCIDENT, "Minio backups failing", {"severity": "P2", "commander": "ines"})
    env = {**os.environ, "DATABASE_URL": seeded_db, "XDG_CONFIG_HOME": "/nonexistent"}
    command = [sys.executable, "-m", "console", "incidents", "--json"]
    run = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, env=env, timeout=60
    )
    assert run.returncode == 0, run.stderr
    [incident] = json.loads(run.stdout)
    assert incident["ref"].startswith("INC-") and incident["severity"] == "P2"
    assert incident["commander"] == "ines"
    # Naming a commander on declaring is not a response: the clock runs until they act.
    assert incident["status"] == "detection" and incident["response"].startswith("respond in")


async def test_declaring_is_not_responding_and_severity_can_be_regraded(book, tmp_path):
    from services.incident_actions import INCIDENT_SEVERITY
    from services.incidents import severity_for_alert

    assert severity_for_alert("PaymentWebhookFailures", "critical") == "P0"  # "payments broken"
    assert severity_for_alert("AGISBotDown", "critical") == "P0"  # "bot down"
    assert severity_for_alert("HighErrorRate", "warning") == "P2"
    declared = await book.execute(DECLARE_INCIDENT, "Webhooks failing", {"severity": "P1"})
    incident_id = str(declared.detail["incident_id"])
    incidents = book.services.incidents
    incident = await incidents.get(int(incident_id))
    assert incident.responded_at is None and incident.commander is None
    assert (await book.execute(INCIDENT_NOTE, incident_id, {"text": "looking at the endpoint"})).ok
    incident = await incidents.get(int(incident_id))
    assert incident.responded_at is not None  # a person acknowledged it
    regraded = await book.execute(INCIDENT_SEVERITY, incident_id, {"severity": "P0"})
    assert regraded.ok and regraded.message == f"INC-{incident_id}: P1 → P0"
    again = await book.execute(INCIDENT_SEVERITY, incident_id, {"severity": "P0"})
    assert again.status == "refused" and "already P0" in again.message
    incident = await incidents.get(int(incident_id))
    assert incident.severity == "P0"
    lines = [(e.kind, e.text) for e in await incidents.timeline(incident)]
    assert ("severity", "P1 → P0") in lines and ("declared", "P1: Webhooks failing") in lines
    assert not any("declared P1" in text for _kind, text in lines)  # no "declared declared P1"
    audited = await book.services.audit.page()
    assert any(r.action == "incident_severity" and r.outcome == "ok" for r in audited)


async def test_export_never_creates_directories(book, tmp_path):
    declared = await book.execute(DECLARE_INCIDENT, "Bot down", {"severity": "P0"})
    incident = await book.services.incidents.get(declared.detail["incident_id"])
    missing = tmp_path / "no" / "such" / "dir" / "pm.md"
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        await book.services.incidents.export(incident, missing)
    assert not (tmp_path / "no").exists()
    written = await book.services.incidents.export(incident, tmp_path)
    assert written == tmp_path / f"postmortem-{incident.ref.lower()}.md" and written.exists()
    with pytest.raises(FileExistsError):
        await book.services.incidents.export(incident, written)
