"""The backends area: every backend's state, version, round-trip and last error, live
(the doctor inside the app)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Static

from screens.base import AreaScreen
from screens.shown import plain
from screens.widgets import BADGE_STYLE, Panel, ShellHeader
from services.health import BackendStatus
from services.polling import format_age
from services.text import inert


def backend_row(status: BackendStatus) -> tuple[Text, Text, Text, str, str, Text]:
    """(backend, state, version, rtt, checked, problem) for one backend; what the backend
    said (its version, its error) is plain and inert."""
    glyph, style = BADGE_STYLE[status.state]
    rtt = f"{status.rtt_ms:.0f} ms" if status.rtt_ms is not None else ""
    age = format_age(status.age) if status.age is not None else ""
    return (
        Text(status.name, style="bold"),
        Text(f"{glyph} {status.state}", style=style),
        plain(status.version, limit=80),
        rtt,
        age,
        plain(status.error, "dim" if status.state == "not configured" else style),
    )


class BackendsScreen(AreaScreen):
    AREA = "backends"

    DEFAULT_CSS = """
    BackendsScreen #backends-panel { height: 1fr; }
    BackendsScreen DataTable { height: auto; max-height: 1fr; }
    BackendsScreen #backend-detail { margin-top: 1; color: $text-muted; }
    """
    BINDINGS = [Binding("r", "refresh_now", "Check now", tooltip="Check every backend now")]

    def compose(self) -> ComposeResult:
        yield ShellHeader(self.AREA)
        with Panel(title="Backends", id="backends-panel"):
            yield DataTable(id="backends", cursor_type="row", zebra_stripes=True)
            yield Static(id="backend-detail")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("backend", "state", "version", "rtt", "checked", "detail")
        self.render_statuses()
        self.set_interval(1.0, self.render_statuses)

    def on_screen_resume(self, event) -> None:
        super().on_screen_resume(event)
        self.render_statuses()

    def render_statuses(self) -> None:
        table = self.query_one(DataTable)
        statuses = self.shell.backend_statuses()
        for status in statuses:
            row = backend_row(status)
            if status.name in table.rows:
                for column, value in zip(table.columns, row, strict=True):
                    table.update_cell(status.name, column, value)
            else:
                table.add_row(*row, key=status.name)
        self._show_detail(statuses)

    def _show_detail(self, statuses: list[BackendStatus]) -> None:
        table = self.query_one(DataTable)
        if not statuses or table.cursor_row >= len(statuses):
            return
        status = statuses[table.cursor_row]
        where = f" at {status.where}" if status.where else ""
        said = status.error or status.version or status.state
        self.query_one("#backend-detail", Static).update(
            Text(inert(f"{status.name}{where}: {said}"), overflow="fold")
        )

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_detail(self.shell.backend_statuses())

    def action_refresh_now(self) -> None:
        self.shell.health_check_now()
        self.notify("Checking every backend…", timeout=1.5)
