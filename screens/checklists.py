"""The checklists area: one checklist at a time (c cycles daily, weekly, monthly, quarterly),
its open run (or the last signed one) with each item's state and what it saw, the selected
item's evidence, answer and fix; the run re-walked in the background (r, and once a minute
while open and shown); answering a manual item (+) and signing the run off (!)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Static

from screens.base import AreaScreen, DataShown
from screens.checklists_render import (
    COLUMNS,
    FIX_VIEWS,
    detail_rows,
    evidence_renderable,
    fixable,
    grid,
    item_row,
    run_text,
    selector_text,
)
from screens.live_table import LiveTable
from screens.shown import fill
from screens.widgets import ClaimsBar, Panel, ShellHeader
from services.checklist_actions import ANSWER, CHECKLIST_ACTIONS, SIGN_OFF
from services.checklist_items import CHECKLISTS, ITEMS, find_item
from services.checklists import Due, Run, RunItem
from services.errors import ServiceError
from services.runbook import Action
from services.text import inert

WALK_EVERY = 60.0  # seconds between walks of an open run while the area is shown


@dataclass(frozen=True)
class ChecklistView:
    """One poll's answer: the checklist's run as shown (None: never walked) and every
    checklist's due state."""

    checklist: str
    run: Run | None
    dues: list[Due]


class ChecklistScreen(AreaScreen):
    AREA = "checklists"
    AUTO_FOCUS = "#items-table"

    DEFAULT_CSS = """
    ChecklistScreen #checklist-selector { height: 1; padding: 0 1; }
    ChecklistScreen #checklist-status { height: auto; padding: 0 1; }
    ChecklistScreen #items-panel { height: auto; max-height: 65%; }
    ChecklistScreen #items-table { height: auto; max-height: 100%; overflow-x: hidden; }
    ChecklistScreen #item-panel { height: 1fr; }
    ChecklistScreen #item-scroll { height: 1fr; }
    ChecklistScreen #item-about, ChecklistScreen #item-evidence { height: auto; }
    ChecklistScreen #item-evidence { margin: 1 0 0 0; }
    """
    ACTIONS = CHECKLIST_ACTIONS
    BINDINGS = [
        *AreaScreen.action_bindings(CHECKLIST_ACTIONS),
        Binding("c", "next_checklist", "Checklist", tooltip="Next: daily, weekly, monthly, quarterly"),
        Binding("r", "refresh_now", "Re-check", tooltip="Run its checks now (signed: the next run)"),
        Binding("enter", "fix", "Go fix", tooltip="A failed item: open the area whose runbook fixes it"),
    ]  # fmt: skip

    class Walking(Message):
        """A walk of `checklist` has started (its checks run now)."""

        def __init__(self, checklist: str) -> None:
            super().__init__()
            self.checklist = checklist

    def compose(self) -> ComposeResult:
        yield ShellHeader(self.AREA)
        yield ClaimsBar()
        yield Static("", id="checklist-selector")
        yield Static("…", id="checklist-status")
        with Panel(title="Checklist", id="items-panel"):
            yield LiveTable(COLUMNS, id="items-table")
        with Panel(title="Item", id="item-panel"), VerticalScroll(id="item-scroll", can_focus=True):
            yield Static("select an item", id="item-about")
            yield Static("", id="item-evidence")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.checklist = CHECKLISTS[0]
        self.views: dict[str, ChecklistView] = {}  # per checklist: the last answer read
        self.dues: list[Due] | None = None
        self.error: ServiceError | None = None
        self.selected: str | None = None
        self.walking: tuple[str, float] | None = None  # (checklist, monotonic start) of a walk under way
        # Kept by the poll itself (no widget): when each checklist was last walked, the
        # operator's r, and a read-only console's looks (seen, never recorded).
        self._walked_at: dict[str, float] = {}
        self._forced: set[str] = set()
        self._looked: dict[str, Run] = {}
        self._width = 0
        self._run = self.poll("run", self._fetch, self._show, on_error=self._failed)
        self.poll_claims()
        self.set_interval(1.0, self._tick)

    def on_resize(self, event) -> None:
        if event.size.width != self._width:  # the columns' limits follow the width: lay them out again
            self._width = event.size.width
            self.query_one("#items-table", LiveTable).clear()
            self._show_items()

    # -- data ---------------------------------------------------------------------------

    async def _fetch(self) -> ChecklistView:
        """The shown checklist's run: walked (its checks run and stored) when the operator
        asked (r) or when it is open, or was never walked, and the last walk is a minute
        old; read otherwise. A read-only console walks without recording (a look)."""
        checklist = self.checklist  # read once: the answer says which checklist it is for
        service = self.shell.services.checklists
        ctx = self.shell.context
        latest = await service.latest(checklist)
        forced = checklist in self._forced
        self._forced.discard(checklist)
        recent = time.monotonic() - self._walked_at.get(checklist, float("-inf")) < WALK_EVERY
        if ctx.read_only:
            walk = forced or (latest is None and not recent)
        else:
            walk = forced or (not recent and (latest is None or not latest.signed))
        run = latest
        if walk:
            self.post_message(self.Walking(checklist))
            run = await service.walk(checklist, ctx.operator, store=not ctx.read_only)
            self._walked_at[checklist] = time.monotonic()
            if ctx.read_only:
                self._looked[checklist] = run
        elif ctx.read_only and recent and checklist in self._looked:
            run = self._looked[checklist]
        return ChecklistView(checklist, run, await service.due())

    def on_checklist_screen_walking(self, message: Walking) -> None:
        self.walking = (message.checklist, time.monotonic())
        self._show_status()

    def _show(self, view: ChecklistView) -> None:
        self.views[view.checklist] = view
        self.dues, self.error, self.walking = view.dues, None, None
        self._show_items()
        self._show_status()
        self.app.post_message(DataShown())
        if view.checklist != self.checklist:  # the operator moved on while it was read
            self._run.trigger()

    def _failed(self, error: ServiceError) -> None:
        self.error, self.walking = error, None
        self._show_status()

    @property
    def view(self) -> ChecklistView | None:
        return self.views.get(self.checklist)

    @property
    def run(self) -> Run | None:
        return self.view.run if self.view else None

    def _show_items(self) -> None:
        table = self.query_one("#items-table", LiveTable)
        panel = self.query_one("#items-panel", Panel)
        run = self.run
        limit = 34 if self.size.width < 110 else 48
        signed = run is not None and run.signed
        rows = {i.item: item_row(i, title_limit=limit, signed=signed) for i in (run.items if run else ())}
        # The figure takes what the state and the title leave (the panel's frame and the
        # table's gaps and scrollbar: 12): the table never scrolls sideways.
        widths = [max((r[n].cell_len for r in rows.values()), default=0) for n in (0, 1)]
        room = max(self.size.width - 12 - sum(widths), 12)
        for row in rows.values():
            row[2].truncate(room, overflow="ellipsis")
        table.sync(rows)
        name = self.checklist.capitalize()
        panel.border_title = f"{name} checklist · run {run.id}" if run and run.stored else f"{name} checklist"
        if self.selected not in table.shown:
            self.selected = table.selected_key
        elif table.selected_key != self.selected:
            table.move_cursor(row=table.get_row_index(self.selected))
        self._show_detail()
        self.refresh_bindings()

    def _show_status(self) -> None:
        now = datetime.now(UTC)
        walking = None
        if self.walking is not None and self.walking[0] == self.checklist:
            walking = time.monotonic() - self.walking[1]
        compact = self.size.width < 100
        self.query_one("#checklist-selector", Static).update(selector_text(self.checklist, self.dues,
                                                                          compact=compact))  # fmt: skip
        text = Text()
        if self.view is None and walking is None and self.error is None:
            text.append(f"reading the {self.checklist} checklist…", style="dim")
        else:
            said = run_text(self.run, now, checklist=self.checklist, walking=walking, compact=compact)
            text.append_text(said)
        if self.error is not None:
            held = "nothing shown yet" if self.view is None else "what is shown is from the last good read"
            text.append("\n")
            said = "[bold red]{}[/] [dim]({}; tried again with every poll)[/]"
            text.append_text(fill(said, str(self.error), held, limit=300))
        self.query_one("#checklist-status", Static).update(text)

    def _item(self) -> RunItem | None:
        run = self.run
        return run.item(self.selected) if run and self.selected else None

    def _show_detail(self) -> None:
        about = self.query_one("#item-about", Static)
        evidence = self.query_one("#item-evidence", Static)
        panel = self.query_one("#item-panel", Panel)
        item = self._item()
        if item is None:
            panel.border_title = "Item"
            about.update(Text("select an item", style="dim") if self.run else "")
            evidence.update("")
            return
        panel.border_title = Text(item.title)  # the database's words: a Text, never markup
        spec = find_item(self.checklist, item.item)
        about.update(grid(detail_rows(item, spec, datetime.now(UTC), signed=self.run.signed)))
        shown = evidence_renderable(item.evidence, width=self.size.width - 6)  # the pane's frame, a scrollbar
        evidence.update(shown if shown is not None else Text("no evidence rows", style="dim"))
        evidence.display = shown is not None

    def _tick(self) -> None:
        freshness = self._run.freshness()
        for panel in self.query(Panel):
            panel.show_freshness(freshness)
        self._show_status()  # the ages count up, a walk's seconds too

    @on(LiveTable.Highlighted)
    def _highlighted(self, event: LiveTable.Highlighted) -> None:
        if event.key is not None:
            self.selected = event.key
            self._show_detail()
            self.refresh_bindings()

    # -- keys ---------------------------------------------------------------------------

    def action_next_checklist(self) -> None:
        self.checklist = CHECKLISTS[(CHECKLISTS.index(self.checklist) + 1) % len(CHECKLISTS)]
        self.selected = None
        table = self.query_one("#items-table", LiveTable)
        table.clear()
        self._show_items()
        table.move_cursor(row=0)
        self._show_status()
        self._run.trigger()

    def action_refresh_now(self) -> None:
        """Walk the shown checklist now: its checks run again (a signed run: the next one starts)."""
        self._forced.add(self.checklist)
        self._run.trigger()
        self.tell(f"checking the {self.checklist} checklist…", timeout=1.5)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "fix":
            item = self._item()
            return fixable(item, find_item(self.checklist, item.item) if item else None)
        return super().check_action(action, parameters)

    async def action_fix(self) -> None:
        """Open the area whose runbook fixes the selected failed item (orders: its view)."""
        item = self._item()
        spec = find_item(self.checklist, item.item) if item else None
        if not fixable(item, spec):
            return
        area, what = spec.fix
        await self.app.switch_mode(area)
        view = FIX_VIEWS.get(item.item) if area == "orders" else None
        if view is not None:
            await self.app.run_action(f"view('{view}')", self.app.screen)
        # The title is the database's: inert, and never markup (a toast on the screen switched to).
        self.app.notify(inert(f"{item.title}: {what}"), title="From the checklist", timeout=6, markup=False)

    # -- actions ------------------------------------------------------------------------

    def shows(self, action: Action) -> bool:
        if action is ANSWER:  # only where there is something to answer
            return any(i.kind == "manual" for i in ITEMS[self.checklist])
        if action is SIGN_OFF:  # hidden once the shown run is signed
            return not (self.run is not None and self.run.signed)
        return True

    def selection(self, action: Action) -> tuple[str, dict[str, str]] | None:
        run = self.run
        if run is not None and run.signed:
            self.tell(f"{self.checklist} run {run.id} is signed off: r starts the next", severity="warning")
            return None
        if run is not None and not run.stored:
            self.tell("a read-only console records nothing", severity="warning")
            return None
        if action is SIGN_OFF:
            return self.checklist, {}
        item = self._item()
        if item is None:
            self.notify("select an item first", severity="warning")
            return None
        if item.kind != "manual":
            self.tell(f"“{item.title}” is checked automatically: fix what it found, r checks again",
                      severity="warning")  # fmt: skip
            return None
        return f"{self.checklist}/{item.item}", {}

    def on_screen_resume(self, event) -> None:
        super().on_screen_resume(event)
        self._show_status()
