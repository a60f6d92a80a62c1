"""IncidentsService: incidents as the AGIS manual's response plan runs them (severity P0-P3
with response targets, the plan's steps, a commander, notes), their timeline (their own
events plus every runbook action finished while they were open, from the audit log), the
response and status-update clocks, and the post-mortem in Markdown."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from services.postgres import PostgresService

# The manual's severity levels: meaning and response target. "Page on-call" for P0 is
# read as a 15-minute response target.
SEVERITIES: dict[str, tuple[str, str, timedelta]] = {
    "P0": ("Critical", "bot down, payments broken: page the on-call engineer", timedelta(minutes=15)),
    "P1": ("High", "major feature broken: respond within 1 hour", timedelta(hours=1)),
    "P2": ("Medium", "minor feature broken: respond within 4 hours", timedelta(hours=4)),
    "P3": ("Low", "cosmetic issue: respond within 24 hours", timedelta(hours=24)),
}
STEPS = ("detection", "assessment", "communication", "mitigation", "resolved", "post-mortem")
UPDATE_EVERY = timedelta(minutes=30)  # P0 and P1: a status update at least this often
# Actions that write the incident itself: already on its timeline as its own events.
INCIDENT_ACTIONS = ("declare_incident", "incident_status", "incident_severity", "incident_command",
                    "incident_note", "incident_postmortem")  # fmt: skip
# The manual's P0 ("bot down, payments broken"): these alerts mean exactly that.
P0_ALERTS = frozenset({"AGISBotDown", "PaymentWebhookFailures", "DatabaseConnectionFailed"})


def severity_for_alert(name: str, severity: str) -> str:
    """The incident severity an alert suggests: P0 when it means the bot is down or payments
    are broken, else P1 for critical, P2 for warning, P3 for anything else."""
    if name in P0_ALERTS or (severity == "critical" and "payment" in name.lower()):
        return "P0"
    return {"critical": "P1", "warning": "P2"}.get(severity, "P3")


@dataclass(frozen=True)
class Incident:
    id: int
    title: str
    severity: str
    status: str
    commander: str | None
    alert_name: str | None
    alert_labels: dict[str, str]
    declared_by: str
    declared_at: datetime
    responded_at: datetime | None
    resolved_at: datetime | None
    last_update_at: datetime
    impact: str = ""
    root_cause: str = ""
    action_items: str = ""

    @property
    def ref(self) -> str:
        return f"INC-{self.id}"

    @property
    def open(self) -> bool:
        return self.resolved_at is None

    @property
    def response_due(self) -> datetime:
        return self.declared_at + SEVERITIES[self.severity][2]

    def as_json(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for k, v in data.items():
            if isinstance(v, datetime):
                data[k] = v.isoformat()
        return data


@dataclass(frozen=True)
class Clock:
    """A countdown as the board shows it: text, and whether it is red."""

    text: str
    missed: bool


def _span(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def response_clock(incident: Incident, now: datetime) -> Clock:
    """The response target's countdown: 'respond in 0:42:10', 'MISSED by 5:00', or how long
    the first response took (and whether that was in time)."""
    due = incident.response_due
    if incident.responded_at is not None:
        took = incident.responded_at - incident.declared_at
        late = incident.responded_at > due
        return Clock(f"responded in {_span(took)}" + (" (late)" if late else ""), late)
    if now > due:
        return Clock(f"MISSED by {_span(now - due)}", True)
    return Clock(f"respond in {_span(due - now)}", False)


def update_clock(incident: Incident, now: datetime) -> Clock | None:
    """P0/P1 while open: when the next status update is due (every 30 minutes)."""
    if incident.severity not in ("P0", "P1") or not incident.open:
        return None
    due = incident.last_update_at + UPDATE_EVERY
    if now > due:
        return Clock(f"status update overdue by {_span(now - due)}", True)
    return Clock(f"next update in {_span(due - now)}", False)


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    operator: str
    kind: str  # declared | note | status | commander | severity | field | action
    text: str


def _write(path: Path, text: str, default_name: str, overwrite: bool) -> Path:
    target = path.expanduser().absolute()
    if target.is_dir():
        target = target / default_name
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists: choose another name")
    if not target.parent.is_dir():  # write where asked, never make directories nobody asked for
        raise FileNotFoundError(f"{target.parent} is not a directory: nothing was written")
    with open(target, "w" if overwrite else "x", encoding="utf-8") as handle:
        handle.write(text)
    return target


def _incident(row) -> Incident:
    values = dict(row)
    labels = values.get("alert_labels")
    values["alert_labels"] = json.loads(labels) if isinstance(labels, str) else dict(labels or {})
    return Incident(**values)


async def lock_incident(conn, target: str) -> Incident | None:
    """The incident `target` (its number), locked FOR UPDATE in `conn`'s transaction; None
    when there is none (or `target` is no number)."""
    try:
        incident_id = int(target)
    except ValueError:
        return None
    from services.postgres import named_queries

    row = await named_queries().incident_for_update(conn, id=incident_id)
    return None if row is None else _incident(row)


class IncidentsService:
    def __init__(self, postgres: PostgresService):
        self.postgres = postgres

    async def open_incidents(self) -> list[Incident]:
        """Incidents not yet through their post-mortem, most severe first."""
        return [_incident(r) for r in await self.postgres.run("open_incidents")]

    async def recent(self, limit: int = 50) -> list[Incident]:
        return [_incident(r) for r in await self.postgres.run("recent_incidents", limit=limit)]

    async def get(self, incident_id: int) -> Incident | None:
        row = await self.postgres.run("incident", id=incident_id)
        return _incident(row) if row else None

    async def timeline(self, incident: Incident) -> list[TimelineEntry]:
        """The incident's own events and every runbook action that finished while it was
        open (any operator, any console), in time order."""
        entries = [
            TimelineEntry(r["at"], r["operator"], r["kind"], r["body"])
            for r in await self.postgres.run("incident_events", incident_id=incident.id)
        ]
        for r in await self.postgres.run(
            "actions_during", since=incident.declared_at, until=incident.resolved_at
        ):
            if r["action"] in INCIDENT_ACTIONS:
                continue
            error = f": {r['error']}" if r["error"] else ""
            text = f"{r['action']} {r['target']} → {r['outcome']}{error}"
            entries.append(TimelineEntry(r["at"], r["operator"], "action", text))
        return sorted(entries, key=lambda e: e.at)

    async def postmortem(self, incident: Incident, now: datetime | None = None) -> str:
        """The post-mortem in Markdown: overview, impact, timeline, root cause, action items."""
        now = now or datetime.now(UTC)
        timeline = await self.timeline(incident)
        level, meaning, target = SEVERITIES[incident.severity]
        ended = incident.resolved_at or now
        lines = [
            f"# Post-mortem: {incident.ref} {incident.title}",
            "",
            "## Overview",
            "",
            f"- Severity: {incident.severity} ({level}: {meaning})",
            f"- Status: {incident.status}",
            f"- Declared: {incident.declared_at:%Y-%m-%d %H:%M:%S} UTC by {incident.declared_by}",
            f"- Commander: {incident.commander or 'none'}",
        ]
        if incident.alert_name:
            labels = ", ".join(
                f"{k}={v}" for k, v in sorted(incident.alert_labels.items()) if k != "alertname"
            )
            lines.append(f"- Alert: {incident.alert_name}" + (f" ({labels})" if labels else ""))
        response = response_clock(incident, now)
        lines.append(f"- First response: {response.text} (target {_span(target)})")
        resolved = f"{incident.resolved_at:%Y-%m-%d %H:%M:%S} UTC" if incident.resolved_at else "not yet"
        lines.append(f"- Resolved: {resolved}; duration {_span(ended - incident.declared_at)}")
        lines += ["", "## Impact", "", incident.impact or "_Not written yet._", "", "## Timeline", ""]
        lines.append("| time (UTC) | who | what |")
        lines.append("| --- | --- | --- |")
        for e in timeline:
            what = e.text.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {e.at:%Y-%m-%d %H:%M:%S} | {e.operator} | {e.kind}: {what} |")
        lines += ["", "## Root cause", "", incident.root_cause or "_Not written yet._", ""]
        lines += ["## Action items", ""]
        items = [i.strip() for i in incident.action_items.splitlines() if i.strip()]
        lines += [f"- [ ] {i.lstrip('-* ')}" for i in items] or ["_None recorded yet._"]
        return "\n".join(lines) + "\n"

    async def export(self, incident: Incident, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the post-mortem to `path`; raises FileExistsError (unless `overwrite`) or
        OSError with the reason."""
        text = await self.postmortem(incident)
        return await asyncio.to_thread(
            _write, Path(path), text, f"postmortem-{incident.ref.lower()}.md", overwrite
        )
