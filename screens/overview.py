"""The overview area: the figures an on-call engineer wants first (stuck and error orders,
today's orders per status, nodes taking orders) and the latest runbook actions."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Footer, Static

from screens.base import AreaScreen, DataShown
from screens.shown import plain
from screens.widgets import Panel, ShellHeader, Tile
from services.errors import ServiceError
from services.overview import AuditEntry, Overview, StatusCount

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
    """tile id -> (value, alert, note) for the headline figures."""
    oldest = overview.oldest_stuck_minutes
    stuck_note = f"oldest {oldest} min" if oldest is not None else ""
    return {
        "tile-stuck": (str(overview.stuck), overview.stuck > 0, stuck_note),
        "tile-errors": (str(overview.errors), overview.errors > 0, ""),
        "tile-created": (str(overview.created_24h), False, ""),
        "tile-nodes": (
            f"{overview.nodes_enabled}/{overview.nodes_total}",
            overview.nodes_enabled == 0,
            "",
        ),
    }


def status_row(count: StatusCount, widest: int) -> tuple[Text, str, Text]:
    """(status, count, bar) for one status of today's orders."""
    bar_len = max(1, round(20 * count.orders / widest)) if widest else 0
    style = STATUS_STYLE.get(count.status, "")
    return plain(count.status, style), str(count.orders), Text("█" * bar_len, style=style)


def action_row(entry: AuditEntry) -> tuple[str, Text, Text, Text]:
    """(time, operator, action on target, outcome) for one audit entry, as plain text (a
    rich Table reads a str cell as markup)."""
    outcome = entry.outcome or ("running" if entry.phase == "intent" else "")
    style = {"ok": "green", "failed": "bold red", "refused": "yellow"}.get(outcome, "dim")
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
    OverviewScreen #status-panel { width: 2fr; height: 1fr; }
    OverviewScreen #actions-panel { width: 3fr; height: 1fr; }
    """

    class Loaded(Message):
        def __init__(self, overview: Overview) -> None:
            super().__init__()
            self.overview = overview

    def compose(self) -> ComposeResult:
        yield ShellHeader(self.AREA)
        with Panel(title="Orders and nodes", id="tiles-panel"), Horizontal(id="tiles"):
            yield Tile("stuck > 10 min", id="tile-stuck")
            yield Tile("in error", id="tile-errors")
            yield Tile("orders, 24 h", id="tile-created")
            yield Tile("nodes open", id="tile-nodes")
        with Horizontal(id="lower"):
            with Panel(title="Last 24 h by status", id="status-panel"):
                yield Static("loading…", id="status-table")
            with Panel(title="Recent actions", id="actions-panel"):
                yield Static("loading…", id="actions-table")
        yield Footer()

    def on_mount(self) -> None:
        self.overview: Overview | None = None
        self._poller = self.poll(
            "figures",
            self.shell.services.overview.overview,
            lambda data: self.post_message(self.Loaded(data)),
            on_error=self._failed,
        )
        self.set_interval(1.0, self._show_age)

    def _failed(self, _error: ServiceError) -> None:
        self._show_age()

    def _show_age(self) -> None:
        self.show_freshness(self._poller.freshness())

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
