"""The incidents area: firing and pending alerts (Prometheus, Alertmanager, the runbooks'
own conditions) with silences and the last hour of the AGIS metrics; incidents with their
response and status-update clocks and a timeline that collects every runbook action taken
while they are open; silence, declare, move through the plan, command, note, post-mortem."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import partial

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Sparkline, Static, TabbedContent, TabPane

from screens.action_modal import AskScreen
from screens.base import AreaScreen, DataShown
from screens.live_table import LiveTable
from screens.shown import fill, plain
from screens.widgets import ClaimsBar, Panel, ShellHeader, short_age
from services.alerts import CHARTS, Alert, Series, Silence, merge
from services.errors import ServiceError
from services.incident_actions import (
    ALERT_ACTIONS,
    INCIDENT_ACTIONS,
)  # fmt: skip
from services.incidents import (
    SEVERITIES,
    Incident,
    TimelineEntry,
    response_clock,
    severity_for_alert,
    update_clock,
)
from services.polling import Freshness
from services.runbook import Action, Outcome
from services.text import inert

ALERT_COLUMNS = ("state", "severity", "alert", "since", "source", "detail")
SILENCE_COLUMNS = ("silence", "state", "matchers", "by", "ends", "comment")
INCIDENT_COLUMNS = ("incident", "sev", "status", "commander", "response", "update", "title")
SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow"}
SEV_STYLE = {"P0": "bold white on red", "P1": "bold red", "P2": "yellow", "P3": ""}
SOURCE_SHORT = {"prometheus": "prom", "alertmanager": "am", "console": "sql"}


def _chart_id(title: str) -> str:
    return title.replace("/", "-").replace(" ", "-")


def alert_row(alert: Alert, now: datetime | None = None) -> tuple:
    """One alert: its name, labels and summary are whatever Prometheus, Alertmanager or a
    rule's author wrote, shown inert."""
    state = alert.state
    if alert.silenced_by:
        state += " · silenced"
    elif alert.inhibited_by:
        state += " · inhibited"
    muted = bool(alert.silenced_by or alert.inhibited_by) or alert.state == "pending"
    detail = alert.summary or ", ".join(
        f"{k}={v}"
        for k, v in sorted(alert.labels.items())
        if k not in ("alertname", "severity", "alertstate")
    )
    return (
        plain(state, "dim" if muted else "bold red" if alert.state in ("firing", "active") else "yellow"),
        plain(alert.severity or "—", "dim" if muted else SEVERITY_STYLE.get(alert.severity, "")),
        plain(alert.name, "dim" if muted else "bold"),
        short_age(alert.since, now) if alert.since else "—",
        inert(SOURCE_SHORT.get(alert.source, alert.source)),
        inert(detail, limit=300),
    )


def silence_row(s: Silence, now: datetime | None = None) -> tuple:
    now = now or datetime.now(UTC)
    if s.state == "active" and s.ends_at:
        ends = f"in {short_age(now - (s.ends_at - now), now)}"
    else:
        ends = f"{s.ends_at:%m-%d %H:%M}" if s.ends_at else "—"
    matchers = inert(" ".join(s.matchers), limit=200)
    return (inert(s.id[:8]), plain(s.state, "green" if s.state == "active" else "dim"), matchers,
            inert(s.created_by), ends, inert(s.comment, limit=200))  # fmt: skip


def incident_row(i: Incident, now: datetime) -> tuple:
    response = response_clock(i, now)
    update = update_clock(i, now)
    return (
        inert(i.ref),
        Text(i.severity, style=SEV_STYLE[i.severity]),
        inert(i.status),
        inert(i.commander) if i.commander else Text("none", style="bold yellow"),
        Text(response.text, style="bold red" if response.missed else ""),
        Text(update.text, style="bold red" if update.missed else "") if update else "—",
        inert(i.title, limit=200),
    )


def timeline_text(incident: Incident, entries: list[TimelineEntry]) -> Text:
    """The incident and its timeline: titles, notes and action lines (which quote what a
    backend answered) are filled in as inert text."""
    level, meaning, _ = SEVERITIES[incident.severity]
    state = (incident.severity, level, meaning, incident.status, incident.commander or "none")
    lines = [
        fill("[b]{}[/b] {}", incident.ref, incident.title),
        fill("{} {} · {} · status [b]{}[/b] · commander {}", *state),
        Text(""),
    ]
    style = {"action": "cyan", "status": "bold", "declared": "bold", "note": "", "commander": "green",
             "severity": "bold magenta"}  # fmt: skip
    for e in entries:
        what = plain(e.kind, style.get(e.kind, "dim"))
        lines.append(fill(f"{e.at:%H:%M:%S} {{}} {{}} {{}}", f"{inert(e.operator):<10}", what, e.text))
    return Text("\n").join(lines)


MIN_POINTS = 3  # fewer than this is no line yet


def chart_view(series: Series) -> tuple[Text, list[float] | None]:
    """A chart's caption (latest value and the scale the line is drawn on) and its points;
    None when there is nothing honest to draw (no data, or too few points)."""
    caption = Text(f"{series.title}: ", style="dim")
    values = series.values
    if not values:
        caption.append("no data", style="yellow")
        return caption, None
    caption.append(f"{values[-1]:,.2f}", style="bold")
    if len(values) < MIN_POINTS:
        caption.append(f"  collecting ({len(values)} of {MIN_POINTS} points)", style="dim")
        return caption, None
    low, high = min(values), max(values)
    caption.append(f"  range {low:,.2f} to {high:,.2f}" if high > low else "  flat", style="dim")
    return caption, list(values)


class IncidentsScreen(AreaScreen):
    AREA = "incidents"
    AUTO_FOCUS = "#alerts-table"

    DEFAULT_CSS = """
    IncidentsScreen TabbedContent { height: 1fr; }
    IncidentsScreen TabPane { padding: 0; }
    IncidentsScreen Panel { height: 1fr; }
    IncidentsScreen LiveTable { height: auto; max-height: 100%; }
    IncidentsScreen #alerts-side { width: 3fr; }
    IncidentsScreen #charts-panel { width: 1fr; min-width: 26; }
    IncidentsScreen.-narrow #charts-panel { display: none; }
    IncidentsScreen #silences-panel { height: auto; max-height: 40%; }
    IncidentsScreen .chart-title { height: 1; color: $text-muted; }
    IncidentsScreen Sparkline { height: 3; margin: 0 0 1 0; }
    IncidentsScreen #incidents-panel { height: auto; max-height: 45%; }
    IncidentsScreen #timeline { height: auto; }
    IncidentsScreen #timeline-scroll { height: 1fr; }
    IncidentsScreen #timeline-scroll:focus { background: $boost; }
    """
    ACTIONS = (*ALERT_ACTIONS, *INCIDENT_ACTIONS)
    BINDINGS = [
        *AreaScreen.action_bindings((*ALERT_ACTIONS, *INCIDENT_ACTIONS)),
        Binding("a", "tab('alerts')", "Alerts", show=False),
        Binding("i", "tab('incidents')", "Incidents", show=False),
        Binding("e", "export", "Export post-mortem", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield ShellHeader(self.AREA)
        yield ClaimsBar()
        with TabbedContent(initial="alerts"):
            with TabPane("a Alerts", id="alerts"):
                with Horizontal():
                    with Vertical(id="alerts-side"):
                        with Panel(title="Alerts: Prometheus, Alertmanager, the runbooks' conditions",
                                   id="alerts-panel"):  # fmt: skip
                            yield LiveTable(ALERT_COLUMNS, id="alerts-table")
                        with Panel(title="Silences", id="silences-panel"):
                            yield LiveTable(SILENCE_COLUMNS, id="silences-table")
                    with Panel(title="Last hour", id="charts-panel"):
                        yield Static("", id="charts-note")
                        for title in CHARTS:
                            yield Static(f"{title}: …", classes="chart-title", id=f"title-{_chart_id(title)}")
                            yield Sparkline([0.0], id=f"spark-{_chart_id(title)}")
            with TabPane("i Incidents", id="incidents"):
                with Panel(title="Open incidents", id="incidents-panel"):
                    yield LiveTable(INCIDENT_COLUMNS, id="incidents-table")
                with Panel(title="Timeline", id="timeline-panel"):
                    with VerticalScroll(id="timeline-scroll", can_focus=True):
                        yield Static("no incident selected — I declares one", id="timeline")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        services = self.shell.services
        alerts = services.alerts
        self.sources: dict[str, list[Alert]] = {"prometheus": [], "alertmanager": [], "console": []}
        self.alerts: dict[str, Alert] = {}
        self.incidents: dict[str, Incident] = {}
        self.silences: dict[str, Silence] = {}
        self._reminded: set[tuple[int, datetime]] = set()
        self._source_pollers = {}
        self._charts = None
        if alerts.prometheus_url:
            self._source_pollers["prometheus"] = self.poll(
                "prometheus", alerts.prometheus_alerts, partial(self._source, "prometheus")
            )
            self._charts = self.poll("charts", alerts.series, self._show_charts, interval=30)
        else:
            for chart in self.query(".chart-title, Sparkline"):
                chart.display = False
            self.query_one("#charts-note", Static).update(
                "[dim]Prometheus is not configured (PROMETHEUS_URL)[/]"
            )
        if alerts.alertmanager_url:
            self._source_pollers["alertmanager"] = self.poll(
                "alertmanager", alerts.alertmanager_alerts, partial(self._source, "alertmanager")
            )
            self._silences = self.poll("silences", alerts.silences, self._show_silences)
        self._source_pollers["console"] = self.poll("business", alerts.business_alerts,
                                                   partial(self._source, "console"))  # fmt: skip
        self._incidents = self.poll("incidents", services.incidents.open_incidents, self._show_incidents)
        self.set_interval(1.0, self._tick)
        self.poll_claims()

    def on_resize(self, event) -> None:
        # Below 100 columns the alerts need the width more than the charts do.
        self.set_class(event.size.width < 100, "-narrow")

    # -- alerts -------------------------------------------------------------------------

    def _source(self, source: str, alerts: list[Alert]) -> None:
        self.sources[source] = alerts
        merged = merge(self.sources["prometheus"], self.sources["alertmanager"], self.sources["console"])
        self.alerts = {a.key: a for a in merged}
        self.query_one("#alerts-table", LiveTable).sync({a.key: alert_row(a) for a in merged})
        self._show_age()
        self.app.post_message(DataShown())

    def _show_silences(self, silences: list[Silence]) -> None:
        self.silences = {s.id: s for s in silences if s.state != "expired" or len(silences) < 30}
        self.query_one("#silences-table", LiveTable).sync(
            {s.id: silence_row(s) for s in self.silences.values()}
        )

    def _show_charts(self, series: list[Series]) -> None:
        for s in series:
            caption, points = chart_view(s)
            self.query_one(f"#title-{_chart_id(s.title)}", Static).update(caption)
            spark = self.query_one(f"#spark-{_chart_id(s.title)}", Sparkline)
            spark.display = points is not None  # no data draws nothing, never a full bar
            spark.data = points or []

    def _show_age(self) -> None:
        worst = Freshness(0.0, False, None, 0, True)
        for source, poller in self._source_pollers.items():
            f = poller.freshness()
            if f.stale and (not worst.stale or f.error):
                worst = Freshness(f.age, True, f"{source}: {f.error}" if f.error else None, f.failures, True)
        self.query_one("#alerts-panel", Panel).show_freshness(worst)
        if self._charts is not None:
            self.query_one("#charts-panel", Panel).show_freshness(self._charts.freshness())
        self.query_one("#incidents-panel", Panel).show_freshness(self._incidents.freshness())

    # -- incidents ----------------------------------------------------------------------

    def _show_incidents(self, incidents: list[Incident]) -> None:
        self.incidents = {str(i.id): i for i in incidents}
        self._render_incidents()
        self._load_timeline()

    def _render_incidents(self) -> None:
        now = datetime.now(UTC)
        rows = {str(i.id): incident_row(i, now) for i in self.incidents.values()}
        self.query_one("#incidents-table", LiveTable).sync(rows)

    def _tick(self) -> None:
        self._render_incidents()  # the clocks move
        self._show_age()
        now = datetime.now(UTC)
        for i in self.incidents.values():  # P0/P1: a status update every 30 minutes
            clock = update_clock(i, now)
            if clock and clock.missed and (i.id, i.last_update_at) not in self._reminded:
                self._reminded.add((i.id, i.last_update_at))
                self.notify(f"{i.ref} ({i.severity}): {clock.text}; n adds a note as the update",
                            title="Status update due", severity="warning", timeout=15)  # fmt: skip

    @on(LiveTable.Highlighted)
    def _highlighted(self, event: LiveTable.Highlighted) -> None:
        if event.table.id == "incidents-table":
            self._load_timeline()

    class TimelineLoaded(Message):
        """The selected incident's timeline, ready to show (posted by the timeline worker)."""

        def __init__(self, content: str | Text) -> None:
            super().__init__()
            self.content = content

    def on_incidents_screen_timeline_loaded(self, message: TimelineLoaded) -> None:
        self.query_one("#timeline", Static).update(message.content)

    def _load_timeline(self) -> None:
        key = self.query_one("#incidents-table", LiveTable).selected_key
        self._fetch_timeline(self.incidents.get(key or ""))

    @work(exclusive=True, group="timeline", exit_on_error=False)
    async def _fetch_timeline(self, incident: Incident | None) -> None:
        if incident is None:
            self.post_message(self.TimelineLoaded("no open incident — I declares one"))
            return
        try:
            entries = await self.shell.services.incidents.timeline(incident)
        except ServiceError as exc:
            self.post_message(self.TimelineLoaded(plain(exc, "red")))
            return
        self.post_message(self.TimelineLoaded(timeline_text(incident, entries)))

    # -- actions ------------------------------------------------------------------------

    def shows(self, action: Action) -> bool:
        tab = self.active_tab()
        if tab is None or action.target_input:  # declaring works from either tab
            return True
        return tab == ("alerts" if action.target_kind in ("alert", "silence") else "incidents")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "export" and self.active_tab() is not None:
            return self.active_tab() == "incidents"
        return super().check_action(action, parameters)

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self.query_one("#alerts-table" if tab == "alerts" else "#incidents-table", LiveTable).focus()

    def _selected_incident(self) -> Incident | None:
        return self.incidents.get(self.query_one("#incidents-table", LiveTable).selected_key or "")

    def _selected_alert(self) -> Alert | None:
        return self.alerts.get(self.query_one("#alerts-table", LiveTable).selected_key or "")

    def selection(self, action: Action) -> tuple[str, dict[str, str]] | None:
        if action.target_input:  # declaring: from the selected alert, or from nothing
            alert = self._selected_alert() if self.query_one(TabbedContent).active == "alerts" else None
            if alert is None:
                return "", {}
            return alert.name, {
                "severity": severity_for_alert(alert.name, alert.severity),
                "title": alert.summary or alert.name,
                "alert_name": alert.name,
                "alert_labels": json.dumps(alert.labels, sort_keys=True),
            }
        if action.target_kind == "alert":
            alert = self._selected_alert()
            if alert is None or alert.source == "console":
                self.notify("select a Prometheus or Alertmanager alert first (the runbooks' own conditions "
                            "are not in Alertmanager)", severity="warning")  # fmt: skip
                self.action_tab("alerts")
                return None
            return alert.name, {"labels": json.dumps(alert.labels, sort_keys=True)}
        if action.target_kind == "silence":
            key = self.query_one("#silences-table", LiveTable).selected_key
            if key is None:
                self.notify("select a silence first", severity="warning")
                return None
            return key, {}
        incident = self._selected_incident()
        if incident is None:
            self.notify("select an incident first (i), or I declares one", severity="warning")
            self.action_tab("incidents")
            return None
        return str(incident.id), {}

    async def after_action(self, action: Action, outcome: Outcome) -> None:
        if outcome.ok and action.target_input:
            self.action_tab("incidents")
        self._refresh_all()

    def _refresh_all(self) -> None:
        for poller in self._pollers:
            poller.trigger()

    @work(group="export", exit_on_error=False)
    async def action_export(self) -> None:
        if self.shell.context.read_only:
            self.notify("the console is read-only: it writes no files", severity="warning")
            return
        incident = self._selected_incident()
        if incident is None:
            self.notify("select an incident first (i)", severity="warning")
            return
        path = await self.app.push_screen_wait(
            AskScreen(
                f"Write the post-mortem of {incident.ref} to which file?",
                f"postmortem-{incident.ref.lower()}.md",
            )
        )
        if not path:
            return
        try:
            written = await self.shell.services.incidents.export(incident, path)
        except (OSError, ServiceError) as exc:
            self.notify(inert(exc), severity="error", title="Post-mortem not written", markup=False)
            return
        self.notify(inert(f"written to {written}"), title=f"Post-mortem {incident.ref}", markup=False)
