"""The audit area: every runbook action, newest first, filtered by operator, action,
target or outcome (`/` then e.g. `operator=alice outcome=failed`), paged by id."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Footer, Input, Static

from screens.base import AreaScreen, DataShown
from screens.shown import plain
from screens.widgets import Panel, ShellHeader
from services.audit import AuditFilter, AuditRow
from services.text import inert

PAGE = 200
FILTER_KEYS = ("operator", "action", "target", "outcome")
OUTCOME_STYLE = {"ok": "green", "failed": "bold red", "refused": "yellow", "dry-run": "cyan"}


def parse_filter(text: str) -> AuditFilter:
    """`operator=alice outcome=failed` -> AuditFilter. Raises ValueError naming a bad part."""
    values: dict[str, str] = {}
    for part in text.split():
        key, sep, value = part.partition("=")
        if not sep or key not in FILTER_KEYS or not value:
            raise ValueError(f"{part!r}: use {', '.join(k + '=…' for k in FILTER_KEYS)}")
        values[key] = value
    return AuditFilter(**values)


def audit_row(row: AuditRow) -> tuple:
    """One table row: id, time, operator (role), action, intent/outcome, ms, target, error
    (the outcome before the long target id, so it stays on screen at 80 columns). Text
    that came from a backend (a target, an error) is plain and inert: a DataTable reads a
    str cell as markup."""
    outcome = row.outcome or "intent"
    return (
        str(row.id),
        row.at.strftime("%Y-%m-%d %H:%M:%S"),
        plain(f"{row.operator} ({row.role})"),
        plain(row.action),
        plain(outcome, OUTCOME_STYLE.get(outcome, "dim")),
        "" if row.duration_ms is None else f"{row.duration_ms:,}",
        plain(row.target),
        plain(row.error or "", limit=300),
    )


class AuditScreen(AreaScreen):
    AREA = "audit"
    AUTO_FOCUS = "#audit-table"

    DEFAULT_CSS = """
    AuditScreen #audit-filter { display: none; }
    AuditScreen #audit-filter.-shown { display: block; }
    AuditScreen #audit-line { height: 1; color: $text-muted; }
    AuditScreen #audit-panel { height: 1fr; }
    """
    BINDINGS = [
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("right_square_bracket", "page(1)", "Older", key_display="]"),
        Binding("left_square_bracket", "page(-1)", "Newer", key_display="["),
    ]

    class Loaded(Message):
        def __init__(self, rows: list[AuditRow]) -> None:
            super().__init__()
            self.rows = rows

    def compose(self) -> ComposeResult:
        yield ShellHeader(self.AREA)
        with Panel(title="Audit log", id="audit-panel"):
            yield Static("", id="audit-line")
            yield Input(
                placeholder="operator=… action=… target=… outcome=ok|failed|refused|dry-run",
                id="audit-filter",
            )
            yield DataTable(id="audit-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.where = AuditFilter()
        self.before: list[int | None] = [None]
        self.rows: list[AuditRow] | None = None
        table = self.query_one(DataTable)
        for name in ("id", "at", "who", "action", "outcome", "ms", "target", "error"):
            table.add_column(name, key=name)
        self._audit = self.shell.services.audit
        self._poller = self.poll("log", self._fetch, lambda rows: self.post_message(self.Loaded(rows)))

    async def _fetch(self) -> list[AuditRow]:
        return await self._audit.page(self.where, before_id=self.before[-1], limit=PAGE)

    def on_audit_screen_loaded(self, message: Loaded) -> None:
        self.rows = message.rows
        table = self.query_one(DataTable)
        table.clear()
        for row in message.rows:
            table.add_row(*audit_row(row), key=str(row.id))
        older = " · ] older" if len(message.rows) == PAGE else ""
        newer = " · [ newer" if len(self.before) > 1 else ""
        self.query_one("#audit-line", Static).update(
            plain(f"{self.where.describe()}: {len(message.rows)} rows{older}{newer}")
        )
        self.query_one(Panel).show_freshness(self._poller.freshness())
        self.app.post_message(DataShown())

    def action_filter(self) -> None:
        box = self.query_one("#audit-filter", Input)
        box.add_class("-shown")
        box.focus()

    @on(Input.Submitted, "#audit-filter")
    def _filtered(self, event: Input.Submitted) -> None:
        try:
            self.where = parse_filter(event.value)
        except ValueError as exc:
            self.notify(inert(exc), severity="error", title="Filter not applied", markup=False)
            return
        self.before = [None]
        self.query_one(DataTable).focus()
        self._poller.trigger()

    def action_page(self, step: int) -> None:
        if self.rows is None:
            return
        if step > 0 and len(self.rows) == PAGE:
            self.before.append(self.rows[-1].id)
        elif step < 0 and len(self.before) > 1:
            self.before.pop()
        else:
            return
        self._poller.trigger()
