"""The audit area: every runbook action, newest first, filtered by operator, action,
target or outcome (`/` then e.g. `operator=alice outcome=failed`), paged by id."""

from __future__ import annotations

import json

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Footer, Input, Static

from screens.base import AreaScreen, DataShown
from screens.shown import fill, plain
from screens.widgets import Panel, ShellHeader
from services.audit import AuditFilter, AuditRow
from services.runbook import short_id
from services.text import inert

PAGE = 200
FILTER_KEYS = ("operator", "action", "target", "outcome")
OUTCOME_STYLE = {"ok": "green", "failed": "bold red", "refused": "yellow", "dry-run": "cyan",
                 "unknown": "bold yellow", "abandoned": "magenta"}  # fmt: skip


def parse_filter(text: str) -> AuditFilter:
    """`operator=alice outcome=failed` -> AuditFilter. Raises ValueError naming a bad part."""
    values: dict[str, str] = {}
    for part in text.split():
        key, sep, value = part.partition("=")
        if not sep or key not in FILTER_KEYS or not value:
            raise ValueError(f"{part!r}: use {', '.join(k + '=…' for k in FILTER_KEYS)}")
        values[key] = value
    return AuditFilter(**values)


COLUMNS = ("id", "at", "who", "action", "outcome", "target", "error")


def audit_row(row: AuditRow) -> tuple:
    """One table row, narrow enough that the error stays on screen at 120 columns (and the
    outcome and target at 80): id, time, operator, action, intent/outcome, the target's
    short id, the error's first line. The whole row is in the detail pane. Text that came
    from a backend is plain and inert: a DataTable reads a str cell as markup."""
    outcome = row.outcome or "intent"
    first_line = (row.error or "").split("\n", 1)[0]
    return (
        str(row.id),
        row.at.strftime("%m-%d %H:%M:%S"),
        plain(row.operator, limit=12),
        plain(row.action, limit=22),
        plain(outcome, OUTCOME_STYLE.get(outcome, "dim")),
        plain(short_id(row.target), limit=24),
        plain(first_line, "red" if row.error else "", limit=40),
    )


def audit_detail(row: AuditRow) -> Text:
    """Everything one audit row holds: who, what, on what, how it ended, how long, its
    params, the error in full and the hint."""
    outcome = row.outcome or ("intent (the outcome is its own row)" if row.phase == "intent" else "")
    lines = [
        fill("[b]#{}[/b] {} UTC", row.id, row.at.strftime("%Y-%m-%d %H:%M:%S")),
        fill("who     {} ({})", row.operator, row.role),
        fill("action  {}", row.action),
        fill("target  {}", row.target or "—"),
        fill("phase   {}", outcome),
    ]
    if row.intent_id:
        lines.append(fill("intent  #{}", row.intent_id))
    if row.duration_ms is not None:
        lines.append(fill("took    {} ms", f"{row.duration_ms:,}"))
    detail = {k: v for k, v in row.detail.items() if k != "hint"}
    if detail:
        lines.append(Text("params", style="bold"))
        lines += [
            fill("  {} = {}", key, json.dumps(value, default=str)) for key, value in sorted(detail.items())
        ]
    if row.error:
        lines.append(Text("error", style="bold red"))
        lines += [plain(f"  {line}", "red") for line in row.error.split("\n")]
    if row.detail.get("hint"):
        lines.append(fill("[b]hint[/b]    {}", row.detail["hint"]))
    return Text("\n").join(lines)


class AuditScreen(AreaScreen):
    AREA = "audit"
    AUTO_FOCUS = "#audit-table"

    DEFAULT_CSS = """
    AuditScreen #audit-filter { display: none; }
    AuditScreen #audit-filter.-shown { display: block; }
    AuditScreen #audit-line { height: 1; color: $text-muted; }
    AuditScreen #audit-body { height: 1fr; }
    AuditScreen #audit-panel { height: 1fr; width: 2fr; }
    AuditScreen #audit-detail-panel { height: 1fr; width: 1fr; min-width: 34; }
    AuditScreen.-narrow #audit-body { layout: vertical; }
    AuditScreen.-narrow #audit-panel { width: 1fr; }
    AuditScreen.-narrow #audit-detail-panel { width: 1fr; height: 9; }
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
        with Horizontal(id="audit-body"):
            with Panel(title="Audit log", id="audit-panel"):
                yield Static("", id="audit-line")
                yield Input(
                    placeholder="operator=… action=… target=… outcome=ok|failed|refused|dry-run|unknown",
                    id="audit-filter",
                )
                yield DataTable(id="audit-table", cursor_type="row", zebra_stripes=True)
            with Panel(title="Selected", id="audit-detail-panel"), VerticalScroll():
                yield Static("no row selected", id="audit-detail")
        yield Footer(compact=True)

    def on_resize(self, event) -> None:
        self.set_class(event.size.width < 160, "-narrow")  # the pane beside the table only when wide

    @on(DataTable.RowHighlighted, "#audit-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        chosen = next((r for r in self.rows or [] if str(r.id) == event.row_key.value), None)
        self.query_one("#audit-detail", Static).update(audit_detail(chosen) if chosen else "no row selected")

    def on_mount(self) -> None:
        self.where = AuditFilter()
        self.before: list[int | None] = [None]
        self.rows: list[AuditRow] | None = None
        table = self.query_one(DataTable)
        for name in COLUMNS:
            table.add_column(name, key=name)
        self._audit = self.shell.services.audit
        self._poller = self.poll("log", self._fetch, lambda rows: self.post_message(self.Loaded(rows)))

    async def _fetch(self) -> list[AuditRow]:
        return await self._audit.page(self.where, before_id=self.before[-1], limit=PAGE)

    def on_audit_screen_loaded(self, message: Loaded) -> None:
        self.rows = message.rows
        table = self.query_one(DataTable)
        keep = self._selected_key(table)
        table.clear()
        for row in message.rows:
            table.add_row(*audit_row(row), key=str(row.id))
        ids = [str(r.id) for r in message.rows]
        if keep in ids:  # the cursor stays on its row through a refresh
            table.move_cursor(row=ids.index(keep), animate=False)
        older = " · ] older" if len(message.rows) == PAGE else ""
        newer = " · [ newer" if len(self.before) > 1 else ""
        self.query_one("#audit-line", Static).update(
            plain(f"{self.where.describe()}: {len(message.rows)} rows{older}{newer}")
        )
        self.query_one(Panel).show_freshness(self._poller.freshness())
        self.app.post_message(DataShown())

    @staticmethod
    def _selected_key(table: DataTable) -> str | None:
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

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
