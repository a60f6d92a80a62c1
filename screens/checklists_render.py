"""What the checklists area draws, as pure functions of ChecklistService's dataclasses: the
checklist selector with every checklist's due state, the run line, an item's row and the
selected item's detail with its evidence. Titles, figures, notes and evidence come from the
database: shown inert (screens.shown), never read as markup."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from screens.backups_render import Row, grid
from screens.shown import fill, plain
from screens.widgets import short_age
from services.checklist_actions import ANSWER
from services.checklist_items import CHECKLISTS, Item
from services.checklists import Due, Run, RunItem

__all__ = ["grid"]

COLUMNS = ("state", "item", "figure")
# shown_state -> (mark, style); a manual item once answered reads done / not done.
MARK = {
    "pass": ("✓ pass", "green"),
    "warn": ("! warn", "bold yellow"),
    "fail": ("✗ FAIL", "bold red"),
    "not available": ("? n/a", "magenta"),
    "manual": ("· manual", "cyan"),
    "open": ("· open", "dim"),
}
ANSWERED = {"pass": ("✓ done", "green"), "fail": ("✗ not done", "bold red")}
DUE_STYLE = {"ok": "green", "due": "bold yellow", "overdue": "bold red"}
# The orders area's view a failed item's runbook starts from (its `view('…')` action).
FIX_VIEWS = {"stuck-paid": "stuck", "error-orders": "errors", "provisioning-rate": "errors"}
_WHEN = re.compile(r"^\d{4}-(\d{2}-\d{2})[ T](\d{2}:\d{2})(:\d{2}(\.\d+)?)?([+-]\d{2}(:\d{2})?|Z)?$")


def state_cell(item: RunItem) -> Text:
    """'✓ pass', '✗ FAIL', '? n/a', '· manual'; a manual answer as '✓ done' / '✗ not done'."""
    state = item.shown_state
    if item.kind == "manual" and item.answered_by and state in ANSWERED:
        mark, style = ANSWERED[state]
    else:
        mark, style = MARK.get(state, (state, ""))
    return Text(mark, style=style)


def item_row(item: RunItem, *, title_limit: int = 44, figure_limit: int = 70, signed: bool = False) -> tuple:
    """One row: the state mark, the title (↻ when carried over), what it saw or who answered
    (a manual item of a `signed` run that nobody answered: 'not answered')."""
    title = plain(item.title, limit=title_limit)
    if item.carried_from:
        title.append(" ↻", style="yellow")
    if item.answered_by:
        said = fill("{}: {}", item.answered_by, item.note or ("done" if item.state == "pass" else "not done"),
                    limit=figure_limit)  # fmt: skip
    elif item.figure:
        said = plain(item.figure, "dim" if item.shown_state in ("pass", "manual") else "", limit=figure_limit)
    else:
        manual = "not answered" if signed else f"{ANSWER.key} answers it"
        said = Text(manual if item.shown_state == "manual" else "—", style="dim")
    return state_cell(item), title, said


def fixable(item: RunItem | None, spec: Item | None) -> bool:
    """Whether the item failed (or warns) and names the area whose runbook fixes it."""
    return item is not None and spec is not None and spec.fix is not None and item.state in ("fail", "warn")


def selector_text(current: str, dues: list[Due] | None, *, compact: bool = False) -> Text:
    """' Daily  OVERDUE · Weekly ok · …': every checklist with its due state, the shown one
    reversed; `c` moves on (said when there is room)."""
    states = {d.checklist: d.state for d in dues or ()}
    line = Text(no_wrap=True, overflow="ellipsis")
    for n, name in enumerate(CHECKLISTS):
        if n:
            line.append(" " if compact else " · ", style="dim")
        line.append(f" {name.capitalize()} ", style="bold reverse" if name == current else "bold")
        state = states.get(name)
        if state is not None:
            line.append(state if state == "ok" else state.upper(), style=DUE_STYLE[state])
    if not compact:
        line.append("   c shows the next", style="dim")
    return line


def counts_text(run: Run) -> str:
    """'2 failed, 1 n/a, 2 to answer' or 'everything resolved'."""
    states = [i.shown_state for i in run.items]
    words = {"fail": "failed", "warn": "warn", "not available": "n/a", "manual": "to answer"}
    said = [f"{states.count(s)} {word}" for s, word in words.items() if states.count(s)]
    return ", ".join(said) if said else "everything resolved"


def run_text(
    run: Run | None, now: datetime, *, checklist: str, walking: float | None = None, compact: bool = False
) -> Text:
    """The run line: which run, who started it, signed off or open with what is left, how old
    its checks are (not when `compact`); 'checking…' while a walk is under way (`walking`:
    its seconds so far)."""
    if run is None:
        line = Text(f"no {checklist} run yet", style="dim")
        if walking is None:
            line.append(": r checks it now", style="dim")
    else:
        where = f"Run {run.id}" if run.stored else "Not recorded (read-only): what the checks see now"
        started = short_age(run.started_at, now)
        line = fill("[b]{}[/b] · started by {} {} ago · ", where, run.started_by, started)
        if run.signed:
            line.append_text(fill("[b green]signed off[/] by {} {} ago", run.signed_off_by or "?",
                                  short_age(run.signed_off_at, now)))  # fmt: skip
            if run.sign_off_note:
                line.append_text(fill(": “{}”", run.sign_off_note, limit=30 if compact else 80))
            line.append(" · r: next run" if compact else "  (r starts the next run)", style="dim")
        else:
            line.append("open", style="bold yellow" if run.stored else "dim")
            line.append(f": {counts_text(run)}")
            checked = max((i.checked_at for i in run.items), default=None)
            if checked is not None and walking is None and not compact:
                line.append(f" · checked {short_age(checked, now)} ago", style="dim")
    if walking is not None:
        line.append(f"  checking… {walking:.0f} s", style="bold cyan")
    return line


def _cell(value: Any, limit: int = 40, *, key: str = "") -> Text:
    """An evidence value: times as 'MM-DD HH:MM', None as '—', numbers grouped (an id as it is)."""
    if value is None:
        return Text("—", style="dim")
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    if isinstance(value, float):
        return Text(f"{value:,.2f}".rstrip("0").rstrip("."))
    if isinstance(value, int):
        return Text(str(value) if key.endswith("id") else f"{value:,}")
    if isinstance(value, str) and (when := _WHEN.match(value)):
        return Text(f"{when.group(1)} {when.group(2)}")
    if isinstance(value, dict | list):
        return plain(", ".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict)
                     else ", ".join(map(str, value)), limit=limit)  # fmt: skip
    return plain(value, limit=limit)


def _label(key: str) -> str:
    return key.replace("_", " ")


def _rows(rows: list[dict[str, Any]], width: int) -> RenderableType:
    """Rows of evidence as a table when its columns fit in `width`; else one record per row
    ('• label value · label value', wrapped), so that no column is cut to nothing."""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    cells = [[_cell(r.get(c), key=c) for c in columns] for r in rows]
    widths = [max(len(_label(c)), *(row[n].cell_len for row in cells)) for n, c in enumerate(columns)]
    excess = sum(widths) + 2 * (len(columns) - 1) - width  # two spaces between columns
    widest = max(range(len(columns)), key=lambda n: widths[n])  # the text to cut first (a query)
    if excess <= 0 or widths[widest] - excess >= 16:
        table = Table(box=None, padding=(0, 1), pad_edge=False, header_style="dim", expand=False)
        for n, column in enumerate(columns):
            cut = widths[n] - excess if n == widest and excess > 0 else None
            table.add_column(_label(column), no_wrap=True, overflow="ellipsis", max_width=cut)
        for row in cells:
            table.add_row(*row)
        return table
    records = []
    for row in ([_cell(r.get(c), 120, key=c) for c in columns] for r in rows):  # wrapped: room for more
        record = Text("• ")
        for n, (column, cell) in enumerate(zip(columns, row, strict=True)):
            record.append(f"{' · ' if n else ''}{_label(column)} ", style="dim")
            record.append_text(cell)
        records.append(record)
    return Text("\n").join(records)


def evidence_renderable(evidence: dict[str, Any], width: int = 100) -> RenderableType | None:
    """The evidence as the detail pane shows it (`width` columns): figures as label/value
    lines, each list of rows as a small table under its name and count (one record a row when
    the table would not fit), a list of names as one line. None when there is none."""
    if not evidence:
        return None
    parts: list[RenderableType] = []
    figures: list[Row] = []
    for key, value in evidence.items():
        if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
            parts += [fill("[b]{}[/b] [dim]· {}[/]", _label(key), f"{len(value)}"), _rows(value, width)]
        elif isinstance(value, list):
            shown = _cell(value, limit=200) if value else Text("none", style="dim")
            parts.append(fill("[b]{}[/b]: {}", _label(key), shown))
        else:
            figures.append((_label(key), _cell(value, limit=200, key=key)))
    if figures:
        parts.insert(0, grid(figures))
    return Group(*parts)


def detail_rows(item: RunItem, spec: Item | None, now: datetime, *, signed: bool = False) -> list[Row]:
    """The selected item: its state, figure, threshold, where it comes from, who answered
    and why (or how to, unless the run is `signed`), since when it carries over, and the
    runbook that fixes it."""
    state = state_cell(item)
    if item.kind == "auto":
        state.append_text(fill("[dim]  automatic, checked {} ago[/]", short_age(item.checked_at, now)))
    else:
        state.append(f"  manual{'' if item.answered_by else ': the operator answers'}", style="dim")
    rows: list[Row] = [("state", state)]
    if item.figure:
        rows.append(("figure", plain(item.figure, limit=300)))
    if item.threshold:
        rows.append(("threshold", plain(item.threshold, limit=200)))
    if item.answered_by:
        when = short_age(item.answered_at, now) if item.answered_at else "?"
        said = fill("{} {} ago", item.answered_by, when)
        if item.note:
            said.append_text(fill(": “{}”", item.note, limit=300))
        rows.append(("answered", said))
    elif item.shown_state == "manual" and signed:
        rows.append(("answer", fill("[dim]not answered: it carries over to the next run[/]")))
    elif item.shown_state == "manual":
        rows.append(("answer", fill("[cyan]{}[/] done or not, with a note for the handover", ANSWER.key)))
    if item.carried_from:
        rows.append(("carried", fill("[yellow]over since run {}[/]", f"{item.carried_from}")))
    if spec is not None:
        rows.append(("from", plain(spec.source, "dim")))
        if fixable(item, spec):
            area, what = spec.fix
            rows.append(("fix", fill("[b]{}[/b] area [dim](enter)[/]: {}", area, what)))
    return rows
