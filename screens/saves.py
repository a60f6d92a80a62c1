"""SavesPane: the Backups area's "Server saves" tab. The saves bucket's usage by prefix,
the 20 newest objects and what is past retention, polled while the tab is shown; Enter on
a prefix lists its objects a page at a time ([ and ] turn pages, Escape goes back)."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Protocol

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from screens.live_table import LiveTable
from screens.saves_render import (
    OBJECT_COLUMNS,
    PREFIX_COLUMNS,
    middle_cut,
    object_row,
    prefix_row,
    summary_lines,
)
from screens.widgets import Panel
from services.errors import NotConfigured, ServiceError
from services.polling import Poller, format_age
from services.saves import SavesPage, SavesSummary
from services.text import inert

OTHER = "\x00other"  # the row key of "(N more prefixes)": not a prefix, cannot be opened
PAGE = 100
# Columns beside the key (age, size) or the prefix (objects, size, share), with the gaps,
# the panel's border and padding and the table's margins.
OBJECT_OVERHEAD = 4 + 2 + 4 + 9 + 2 * 2
PREFIX_OVERHEAD = 4 + 2 + 7 + 9 + 5 + 2 * 3


class SavesSource(Protocol):
    """What the pane reads (services.saves.SavesService)."""

    @property
    def unconfigured(self) -> str | None: ...

    def summary(self) -> Awaitable[SavesSummary]: ...

    def page(self, prefix: str = "", after: str | None = None, limit: int = 100) -> Awaitable[SavesPage]: ...


class SavesPane(Widget, can_focus=False):
    """The Server saves tab. `saves` None (or unconfigured) shows 'not configured'. It polls
    every `interval` seconds while shown (on a hidden tab or screen it pauses)."""

    DEFAULT_CSS = """
    SavesPane { height: 1fr; }
    SavesPane #saves-head { height: auto; padding: 0 1; }
    SavesPane #saves-prefixes-panel { height: auto; max-height: 45%; }
    SavesPane #saves-objects-panel { height: 1fr; }
    SavesPane LiveTable { height: auto; max-height: 100%; }
    """
    BINDINGS = [
        Binding("r", "refresh_now", "Refresh", show=False),
        Binding("enter", "open_prefix", "List prefix", show=False),
        Binding("right_square_bracket", "turn(1)", "Next page", key_display="]"),
        Binding("left_square_bracket", "turn(-1)", "Prev page", key_display="["),
        Binding("escape", "close_listing", "Newest", show=False),
    ]

    class Loaded(Message):
        def __init__(self, summary: SavesSummary) -> None:
            super().__init__()
            self.summary = summary

    class Failed(Message):
        def __init__(self, error: ServiceError) -> None:
            super().__init__()
            self.error = error

    class PageLoaded(Message):
        def __init__(self, page: SavesPage) -> None:
            super().__init__()
            self.page = page

    def __init__(self, saves: SavesSource | None, *, interval: float = 300.0, id: str | None = None) -> None:
        super().__init__(id=id)
        self.saves = saves
        self.interval = interval
        self.summary: SavesSummary | None = None
        self.poller: Poller[SavesSummary] | None = None
        self.listing: SavesPage | None = None  # the page shown instead of the newest objects
        self._starts: list[str | None] = []  # `after` of each page turned to, for [
        self._shown = False

    def compose(self) -> ComposeResult:
        yield Static("", id="saves-head")
        with Panel(title="Usage by prefix (mc du) · Enter lists a prefix", id="saves-prefixes-panel"):
            yield LiveTable(PREFIX_COLUMNS, id="saves-prefixes")
        with Panel(title="20 most recent (mc ls --recursive | tail)", id="saves-objects-panel"):
            yield LiveTable(OBJECT_COLUMNS, id="saves-objects")

    def on_mount(self) -> None:
        reason = "not configured" if self.saves is None else self.saves.unconfigured
        if reason is not None:
            self._not_configured(reason)
            return
        assert self.saves is not None
        self.poller = Poller(
            "saves.summary",
            self.saves.summary,
            self.interval,
            on_result=lambda summary: self.post_message(self.Loaded(summary)),
            on_error=lambda error: self.post_message(self.Failed(error)),
        )
        self.poller.pause()  # until shown: a hidden tab lists nothing
        self._head(Text(f"listing s3://{inert(self.saves_bucket)}/ …", style="dim"))
        self.run_worker(self.poller.run(), group="saves-poll", exit_on_error=False)
        self.set_interval(1.0, self._tick)

    @property
    def saves_bucket(self) -> str:
        return str(getattr(self.saves, "bucket", "") or "")

    def _not_configured(self, reason: str) -> None:
        self._head(Text(f"Server saves: {inert(reason)}", style="dim"))
        for panel in self.query(Panel):
            panel.display = False

    def _head(self, text: Text) -> None:
        self.query_one("#saves-head", Static).update(text)

    # -- polling only while shown ---------------------------------------------------------

    def on_show(self, _event: events.Show) -> None:
        self._shown = True
        self._tick()

    def on_hide(self, _event: events.Hide) -> None:
        self._shown = False
        self._tick()

    def _tick(self) -> None:
        """Pause or resume with the tab and the screen; show the data's age."""
        if self.poller is None:
            return
        shown = self._shown and self.screen.is_current
        if shown and self.poller.paused:
            self.poller.resume()
        elif not shown and not self.poller.paused:
            self.poller.pause()
        self._show_age()

    def _show_age(self) -> None:
        if self.poller is None:
            return
        freshness = self.poller.freshness()
        for panel in self.query(Panel):
            panel.show_freshness(freshness)
        if self.summary is not None and freshness.age is not None:
            self._head(summary_lines(self.summary, f"{format_age(freshness.age)} ago"))

    def action_refresh_now(self) -> None:
        if self.poller is not None:
            self.poller.trigger()
            self.notify("Listing the saves bucket…", timeout=1.5)

    # -- results --------------------------------------------------------------------------

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        message.stop()
        summary = self.summary = message.summary
        width = self._width(PREFIX_OVERHEAD)
        rows = {f"{p.loose}:{p.prefix}": prefix_row(p, summary.bytes, width) for p in summary.prefixes}
        other = summary.other_prefixes
        if other is not None:
            rows[OTHER] = prefix_row(other, summary.bytes, width)
        _show_in_order(self.query_one("#saves-prefixes", LiveTable), rows)
        if self.listing is None:
            self._show_recent()
        self._show_age()

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        message.stop()
        if isinstance(message.error, NotConfigured):
            self._not_configured(str(message.error))
            return
        if self.summary is None:
            self._head(Text(inert(f"the saves bucket cannot be listed: {message.error}"), style="red"))
        self._show_age()  # the panels say how old their data is, and why

    def _show_recent(self) -> None:
        if self.summary is None:
            return
        now = datetime.now(UTC)
        width = self._width(OBJECT_OVERHEAD)
        table = self.query_one("#saves-objects", LiveTable)
        _show_in_order(
            table, {o.key: object_row(o, self.summary.cutoff, now, width) for o in self.summary.recent}
        )
        self.query_one(
            "#saves-objects-panel", Panel
        ).border_title = "20 most recent (mc ls --recursive | tail)"

    def _width(self, overhead: int) -> int:
        """What is left for a key or prefix: the pane less `overhead` (borders, the other
        columns); 24 to 60 characters (the table's widest column)."""
        return max(24, min(60, self.size.width - overhead)) if self.size.width else 56

    # -- listing a prefix, a page at a time ---------------------------------------------------

    def action_open_prefix(self) -> None:
        table = self.query_one("#saves-prefixes", LiveTable)
        key = table.selected_key if table.has_focus else None
        if key is None or key == OTHER:
            return
        prefix = key.split(":", 1)[1]
        self._starts = [None]
        self.load_page(prefix, None)

    def action_turn(self, step: int) -> None:
        if self.listing is None:
            return
        if step > 0 and self.listing.next_after is not None:
            self._starts.append(self.listing.next_after)
            self.load_page(self.listing.prefix, self.listing.next_after)
        elif step < 0 and len(self._starts) > 1:
            self._starts.pop()
            self.load_page(self.listing.prefix, self._starts[-1])

    def action_close_listing(self) -> None:
        if self.listing is not None:
            self.listing = None
            self._starts = []
            self._show_recent()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "turn":  # page keys in the footer only while a listing is shown
            return self.listing is not None
        return True

    @work(exclusive=True, group="saves-page", exit_on_error=False)
    async def load_page(self, prefix: str, after: str | None) -> None:
        assert self.saves is not None
        try:
            page = await self.saves.page(prefix, after=after, limit=PAGE)
        except ServiceError as exc:
            self.notify(inert(exc), severity="error", title="Server saves", markup=False)
            return
        self.post_message(self.PageLoaded(page))

    @on(PageLoaded)
    def _page_loaded(self, message: PageLoaded) -> None:
        message.stop()
        page = self.listing = message.page
        now = datetime.now(UTC)
        cutoff = self.summary.cutoff if self.summary else now
        width = self._width(OBJECT_OVERHEAD)
        table = self.query_one("#saves-objects", LiveTable)
        table.clear()
        table.sync({o.key: object_row(o, cutoff, now, width) for o in page.objects})
        table.scroll_home(animate=False)
        first = (len(self._starts) - 1) * PAGE + 1
        span = f"{first:,} to {first + len(page.objects) - 1:,}" if page.objects else "none"
        more = "] next · " if page.next_after else ""
        back = "[ previous · " if len(self._starts) > 1 else ""
        where = middle_cut(inert(f"s3://{page.bucket}/{page.prefix}"), 40)
        panel = self.query_one("#saves-objects-panel", Panel)
        panel.border_title = Text(f"{where} objects {span} · {more}{back}Esc: newest")
        self.refresh_bindings()


def _show_in_order(table: LiveTable, rows: dict[str, tuple]) -> None:
    """Show `rows` in their order (LiveTable.sync keeps rows where they are and adds new
    ones at the end: a new save would go last, a prefix that grew would not move up); the
    cursor stays on its row."""
    if list(table.shown) == list(rows):
        table.sync(rows)
        return
    selected = table.selected_key
    table.clear()
    table.sync(rows)
    if selected in rows:
        table.move_cursor(row=table.get_row_index(selected))
