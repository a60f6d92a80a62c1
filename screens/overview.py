"""The overview area: the figures an on-call engineer wants first (stuck and error orders,
today's orders per status, nodes taking orders) and the latest runbook actions."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from functools import partial

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Static

from screens.base import AreaScreen, DataShown
from screens.shown import plain
from screens.widgets import Panel, ShellHeader, Tile, short_age
from services.alerts import AlertsSnapshot
from services.backup_model import BackupsStatus
from services.checklists import Due
from services.errors import ServiceError
from services.incidents import Incident, response_clock, update_clock
from services.nodes import Capacity
from services.overview import AuditEntry, Overview, StatusCount

SEV_ORDER = {"critical": 0, "warning": 1, "info": 2}
ALERT_STYLE = {"critical": "bold red", "warning": "yellow"}

STATUS_STYLE = {
    "active": "green",
    "provisioned": "green",
    "error": "bold red",
    "paid": "yellow",
    "provisioning": "cyan",
    "installing": "cyan",
    "pending": "dim",
    "canceled": "dim",
    "expired": "dim",
    "refunded": "magenta",
}


def figure_tiles(overview: Overview) -> dict[str, tuple[str, bool, str]]:
    """tile id -> (value, alert, note) for the orders' headline figures."""
    oldest = overview.oldest_stuck_minutes
    stuck_note = f"oldest {oldest} min" if oldest is not None else ""
    return {
        "tile-stuck": (str(overview.stuck), overview.stuck > 0, stuck_note),
        "tile-errors": (str(overview.errors), overview.errors > 0, f"{overview.created_24h} new in 24 h"),
    }


HOT_NODE_PCT = 80.0


def fire_lines(
    alerts: AlertsSnapshot | None,
    incidents: list[Incident] | None,
    capacity: Capacity | None,
    now: datetime,
    backups: BackupsStatus | None = None,
    backups_problem: str | None = None,
    checklists: list[Due] | None = None,
) -> Text:
    """ "Is anything on fire?": firing alerts by severity, open incidents with their clocks,
    nodes above 80 %, the checklists due or overdue, the last good backup against the 24 h
    RPO and the monthly drill. A source not read yet says so; a clear one says "none"."""
    text = Text()

    def heading(title: str, detail: str = "", style: str = "bold") -> None:
        if text.plain:
            text.append("\n")
        text.append(title, style=style)
        if detail:
            text.append(f"  {detail}", style="dim")
        text.append("\n")

    firing = alerts.firing() if alerts else []
    by_severity = Counter(a.severity or "none" for a in firing)
    summary = " · ".join(
        f"{n} {sev}" for sev, n in sorted(by_severity.items(), key=lambda kv: SEV_ORDER.get(kv[0], 9))
    )
    heading(
        "ALERTS",
        "reading…" if alerts is None else (summary or "none firing"),
        "bold red" if by_severity.get("critical") else "bold",
    )
    for alert in firing[:6]:
        text.append(f"  {alert.severity or 'none':<8} ", style=ALERT_STYLE.get(alert.severity, "dim"))
        text.append_text(plain(alert.name, limit=40))
        text.append(f"  {short_age(alert.since, now)}\n" if alert.since else "\n", style="dim")
    if len(firing) > 6:
        text.append(f"  … {len(firing) - 6} more (4 → alerts)\n", style="dim")
    for failure in alerts.failed if alerts else ():
        text.append_text(plain(f"  ! {failure}", "yellow", limit=120))
        text.append("\n")

    heading(
        "INCIDENTS",
        "reading…" if incidents is None else (f"{len(incidents)} open" if incidents else "none open"),
        "bold red" if incidents and any(i.severity in ("P0", "P1") for i in incidents) else "bold",
    )
    for incident in (incidents or [])[:4]:
        clock = response_clock(incident, now)
        update = update_clock(incident, now)
        text.append(f"  {incident.ref} {incident.severity} ", style="bold")
        text.append_text(plain(incident.title, limit=40))
        text.append(f"\n    {incident.status} · ", style="dim")
        text.append(clock.text, style="bold red" if clock.missed else "")
        if update:
            text.append("\n    ")
            text.append(update.text, style="bold red" if update.missed else "")
        text.append("\n")

    hot = [n for n in (capacity.nodes if capacity else ()) if n.enabled and n.usage_pct >= HOT_NODE_PCT]
    open_nodes = sum(1 for n in capacity.nodes if n.enabled) if capacity else 0
    heading(
        f"NODES ≥ {HOT_NODE_PCT:.0f} %",
        "reading…" if capacity is None else f"{len(hot) or 'none'} of {open_nodes} open",
        "bold yellow" if hot else "bold",
    )
    for node in hot[:5]:
        text.append("  ")
        text.append_text(plain(node.name, limit=18))
        text.append(f"  {node.usage_pct:.0f} %  {node.available_ram_gb} GB free\n", style="yellow")

    said, style = checklists_line(checklists)
    heading("CHECKLISTS", said, style)

    if backups is None:
        heading("BACKUPS", backups_problem or "reading…", "bold")
        return text
    heading("BACKUPS", "within the 24 h RPO" if backups.rpo_ok else "RPO BREACHED",
            "bold" if backups.rpo_ok else "bold red")  # fmt: skip
    good = backups.last_good
    hours = (now - good.finished_at).total_seconds() / 3600 if good else 0
    age = f"{hours:.0f}h" if 1 <= hours < 48 else short_age(good.finished_at, now) if good else ""
    text.append(f"  last good {age} ago\n" if good else "  no good backup\n",
                style="" if backups.rpo_ok else "red")  # fmt: skip
    drill = backups.last_drill
    if drill is None or drill.drilled_at is None:
        text.append("  restore drill never done\n", style="yellow")
    else:
        state = "OVERDUE" if backups.drill_due else "ok"
        text.append(f"  drill passed {short_age(drill.drilled_at, now)} ago: {state}\n",
                    style="yellow" if backups.drill_due else "")  # fmt: skip
    return text


def checklists_line(dues: list[Due] | None) -> tuple[str, str]:
    """(what, heading style) for the checklists: 'overdue: daily, weekly · due: monthly',
    'all overdue', 'all signed off in time'; 'reading…' before the first read."""
    if dues is None:
        return "reading…", "bold"
    said = []
    for state in ("overdue", "due"):
        names = [d.checklist for d in dues if d.state == state]
        if names:
            said.append(f"all {state}" if len(names) == len(dues) else f"{state}: {', '.join(names)}")
    if not said:
        return "all signed off in time", "bold"
    return " · ".join(said), "bold red" if any(d.state == "overdue" for d in dues) else "bold yellow"


def status_row(count: StatusCount, widest: int) -> tuple[Text, str, Text]:
    """(status, count, bar) for one status of today's orders."""
    bar_len = max(1, round(20 * count.orders / widest)) if widest else 0
    style = STATUS_STYLE.get(count.status, "")
    return plain(count.status, style), str(count.orders), Text("█" * bar_len, style=style)


OUTCOME_STYLE = {
    "ok": "green",
    "failed": "bold red",
    "refused": "yellow",
    "unknown": "bold yellow",
    "abandoned": "magenta",
    "running": "cyan",
    "dry-run": "dim",
}


def action_row(entry: AuditEntry) -> tuple[str, Text, Text, Text]:
    """(time, operator, action on target, how it ended) for one action, as plain text (a
    rich Table reads a str cell as markup)."""
    outcome = entry.outcome or ""
    style = OUTCOME_STYLE.get(outcome, "dim")
    target = f" {entry.target[:12]}" if entry.target else ""
    return (
        entry.at.strftime("%H:%M:%S"),
        plain(entry.operator),
        plain(f"{entry.action}{target}"),
        plain(outcome, style),
    )


class OverviewScreen(AreaScreen):
    AREA = "overview"

    DEFAULT_CSS = """
    OverviewScreen #tiles { height: auto; }
    OverviewScreen #lower { height: 1fr; }
    OverviewScreen #fire-panel { width: 3fr; height: 1fr; }
    OverviewScreen #actions-panel { width: 3fr; height: 1fr; }
    OverviewScreen #status-panel { width: 2fr; height: 1fr; }
    OverviewScreen.-narrow #status-panel { display: none; }
    OverviewScreen #fire { height: auto; }
    """

    class Loaded(Message):
        def __init__(self, overview: Overview) -> None:
            super().__init__()
            self.overview = overview

    def compose(self) -> ComposeResult:
        yield ShellHeader(self.AREA)
        with Panel(title="Is anything on fire?", id="tiles-panel"), Horizontal(id="tiles"):
            yield Tile("alerts firing", id="tile-alerts")
            yield Tile("open incidents", id="tile-incidents")
            yield Tile("stuck > 10 min", id="tile-stuck")
            yield Tile("in error", id="tile-errors")
            yield Tile("nodes ≥ 80 %", id="tile-nodes")
        with Horizontal(id="lower"):
            with Panel(title="On fire", id="fire-panel"), VerticalScroll():
                yield Static("reading…", id="fire")
            with Panel(title="Recent actions", id="actions-panel"):
                yield Static("loading…", id="actions-table")
            with Panel(title="Last 24 h by status", id="status-panel"):
                yield Static("loading…", id="status-table")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.overview: Overview | None = None
        self.alerts: AlertsSnapshot | None = None
        self.incidents: list[Incident] | None = None
        self.capacity: Capacity | None = None
        self.backups: BackupsStatus | None = None
        self.backups_problem: str | None = None
        self.checklists: list[Due] | None = None
        services = self.shell.services
        self._poller = self.poll(
            "figures",
            services.overview.overview,
            lambda data: self.post_message(self.Loaded(data)),
            on_error=self._failed,
        )
        self._fire_pollers = {
            "alerts": self.poll(
                "alerts", services.alerts.snapshot, partial(self._fire, "alerts"), on_error=self._failed
            ),
            "incidents": self.poll(
                "incidents",
                services.incidents.open_incidents,
                partial(self._fire, "incidents"),
                on_error=self._failed,
            ),
            "capacity": self.poll(
                "capacity", services.nodes.capacity, partial(self._fire, "capacity"), on_error=self._failed
            ),
        }
        # Listing the bucket: once a minute is plenty for a 24 h objective. Its own section
        # says when it cannot be read (or is not configured); the panel's age is the others'.
        self._backups_poller = self.poll(
            "backups",
            services.backups.status,
            self._backups_read,
            interval=60.0,
            on_error=self._backups_failed,
        )
        # When each checklist is due: its sign-offs are news at once (ops_events), the clock slowly.
        self.poll("checklists", services.checklists.due, partial(self._fire, "checklists"), interval=60.0)
        self.set_interval(1.0, self._tick)

    def on_resize(self, event) -> None:
        self.set_class(event.size.width < 110, "-narrow")

    def _failed(self, _error: ServiceError) -> None:
        self._show_age()

    def _backups_read(self, status: BackupsStatus) -> None:
        self.backups, self.backups_problem = status, None
        self._show_fire()

    def _backups_failed(self, error: ServiceError) -> None:
        from services.errors import NotConfigured

        self.backups = None
        self.backups_problem = (
            "not configured" if isinstance(error, NotConfigured) else f"cannot list: {error}"
        )
        self._show_fire()

    def _fire(self, source: str, value) -> None:
        setattr(self, source, value)
        self._show_fire()

    def _tick(self) -> None:
        self._show_age()
        self._show_fire()  # the incidents' clocks count down

    def _show_age(self) -> None:
        self.show_freshness(self._poller.freshness())
        fire = self.query_one("#fire-panel", Panel)
        stale = [(name, p.freshness()) for name, p in self._fire_pollers.items()]
        worst = next((f for _n, f in stale if f.stale and f.error), None) or next(
            (f for _n, f in stale if f.stale), None
        )
        fire.show_freshness(worst or self._poller.freshness())

    def _show_fire(self) -> None:
        now = datetime.now(UTC)
        fire = fire_lines(self.alerts, self.incidents, self.capacity, now, self.backups, self.backups_problem,
                          self.checklists)  # fmt: skip
        self.query_one("#fire", Static).update(fire)
        if self.alerts is not None:
            firing = self.alerts.firing()
            critical = sum(1 for a in firing if a.severity == "critical")
            self.query_one("#tile-alerts", Tile).show(
                str(len(firing)), alert=bool(critical), note=f"{critical} critical" if critical else ""
            )
        if self.incidents is not None:
            missed = sum(
                1
                for i in self.incidents
                if response_clock(i, now).missed or ((u := update_clock(i, now)) is not None and u.missed)
            )
            top = min((i.severity for i in self.incidents), default="")
            self.query_one("#tile-incidents", Tile).show(
                str(len(self.incidents)),
                alert=top in ("P0", "P1") or bool(missed),
                note=f"{missed} clock missed" if missed else (f"worst {top}" if top else ""),
            )
        if self.capacity is not None:
            enabled = [n for n in self.capacity.nodes if n.enabled]
            hot = [n for n in enabled if n.usage_pct >= HOT_NODE_PCT]
            self.query_one("#tile-nodes", Tile).show(
                str(len(hot)), alert=bool(hot), note=f"{len(enabled)}/{len(self.capacity.nodes)} open"
            )

    def on_overview_screen_loaded(self, message: Loaded) -> None:
        overview = message.overview
        self.overview = overview
        for tile_id, (value, alert, note) in figure_tiles(overview).items():
            self.query_one(f"#{tile_id}", Tile).show(value, alert=alert, note=note)
        table = Table(box=None, show_header=False, expand=True, pad_edge=False)
        table.add_column("status")
        table.add_column("orders", justify="right")
        table.add_column("bar", ratio=1)
        widest = max((c.orders for c in overview.by_status_24h), default=0)
        for count in overview.by_status_24h:
            table.add_row(*status_row(count, widest))
        self.query_one("#status-table", Static).update(table if overview.by_status_24h else "no orders today")
        actions = Table(box=None, show_header=False, expand=True, pad_edge=False)
        for name in ("at", "who", "what", "outcome"):
            actions.add_column(name, no_wrap=True, overflow="ellipsis", ratio=2 if name == "what" else None)
        for entry in overview.recent_actions:
            actions.add_row(*action_row(entry))
        self.query_one("#actions-table", Static).update(
            actions if overview.recent_actions else Text("no runbook actions yet", style="dim")
        )
        self._show_age()
        self.app.post_message(DataShown())
