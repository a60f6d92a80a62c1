"""The incident commander's board: eight large tiles, read-only, no action keys (q quits, r
refreshes). It shows whatever its source's snapshot says (a BoardFeed in this process, or a
served board's data process over loopback) and, when the source cannot be read, the last
snapshot growing older, stale then down."""

from __future__ import annotations

import time
from typing import Protocol

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Digits, Footer, Static

from screens.board_render import (
    big_figure,
    header_line,
    state_line,
    tile_caption,
    tile_classes,
    tile_detail,
    tile_value,
)
from services.board import BoardSnapshot, Tile
from services.errors import ServiceError
from services.polling import Poller

TILE_IDS = ("alerts", "incidents", "orders", "nodes", "webhooks", "backups", "database", "consoles")
TITLES = ("Alerts", "Incidents", "Orders", "Node headroom", "Webhooks", "Backups", "Database", "Consoles")
SHOW_EVERY = 1.0  # seconds between reads of the snapshot: the incident clocks tick


class BoardSource(Protocol):
    """Where the board's snapshot comes from (services.board.BoardFeed or RemoteBoard)."""

    async def read(self) -> BoardSnapshot: ...

    def trigger(self) -> None: ...


class BigFigure(Widget):
    """The figure five rows high, for tall tiles (a board across the room)."""

    DEFAULT_CSS = "BigFigure { width: 1fr; height: 5; text-align: center; text-style: bold; }"
    value: reactive[str] = reactive("-")

    def render(self) -> str:
        return big_figure(self.value, self.size.width) or self.value


class BoardTile(Vertical):
    """One tile: the title and data age on its border, a big figure, its caption, its lines."""

    DEFAULT_CSS = """
    BoardTile { border: round $primary-darken-1; padding: 0 1; height: 1fr; width: 1fr; }
    BoardTile.-stale { border: round $warning; }
    BoardTile.-down { border: heavy $error; }
    BoardTile.-off, BoardTile.-reading { border: round $panel-lighten-2; }
    BoardTile > Digits { width: 1fr; text-align: center; text-style: bold; }
    BoardTile > BigFigure { display: none; }
    BoardTile.-crit > Digits, BoardTile.-crit > BigFigure { color: $error; }
    BoardTile.-warn > Digits, BoardTile.-warn > BigFigure { color: $warning; }
    BoardTile.-good > Digits, BoardTile.-good > BigFigure { color: $success; }
    BoardTile.-down > Digits, BoardTile.-off > Digits { color: $text-muted; }
    BoardTile.-down > BigFigure, BoardTile.-off > BigFigure { color: $text-muted; }
    BoardTile > Static { width: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    BoardTile > .caption { height: 1; text-align: center; }
    BoardTile > .detail { height: 1fr; }
    BoardTile > .detail.-wrap { text-wrap: wrap; }
    """

    def __init__(self, tile_id: str, title: str) -> None:
        super().__init__(id=f"tile-{tile_id}")
        self.border_title = title.upper()
        self.border_subtitle = "reading…"

    def compose(self) -> ComposeResult:
        yield Digits("-")
        yield BigFigure()
        yield Static("", classes="caption")
        yield Static("", classes="detail")

    def show(self, tile: Tile) -> None:
        self.border_title = tile.title.upper()
        self.border_subtitle = state_line(tile)
        for name, on in tile_classes(tile).items():
            self.set_class(on, name)
        self.query_one(Digits).update(tile_value(tile))
        self.query_one(BigFigure).value = tile_value(tile)
        self.query_one(".caption", Static).update(tile_caption(tile))
        detail = self.query_one(".detail", Static)
        detail.set_class(tile.body is None, "-wrap")  # only why it is down: all of it
        detail.update(tile_detail(tile))


class BoardScreen(Screen):
    """The board. Nothing on it acts on anything: the viewer role is enough."""

    DEFAULT_CSS = """
    BoardScreen #board-header { height: 1; dock: top; background: $panel; }
    BoardScreen #tiles { grid-size: 4 2; height: 1fr; }
    BoardScreen.-narrow #tiles { grid-size: 2; grid-rows: 12; overflow-y: auto; }
    BoardScreen.-tall BoardTile > Digits { display: none; }
    BoardScreen.-tall BoardTile > BigFigure { display: block; }
    """

    BINDINGS = [
        Binding("r", "refresh_now", "Refresh", tooltip="Read every source now"),
        Binding("q", "app.quit", "Quit"),
    ]

    class Loaded(Message):
        def __init__(self, snapshot: BoardSnapshot) -> None:
            super().__init__()
            self.snapshot = snapshot

    class Failed(Message):
        def __init__(self, error: ServiceError) -> None:
            super().__init__()
            self.error = error

    def __init__(self, source: BoardSource) -> None:
        super().__init__()
        self.source = source
        self.snapshot: BoardSnapshot | None = None
        self.feed_problem: str | None = None
        self._read_at = 0.0  # monotonic time of the last snapshot read

    def compose(self) -> ComposeResult:
        yield Static(header_line(None), id="board-header")
        with Grid(id="tiles"):
            for tile_id, title in zip(TILE_IDS, TITLES, strict=True):
                yield BoardTile(tile_id, title)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._poller: Poller[BoardSnapshot] = Poller(
            "board.view", self.source.read, SHOW_EVERY,
            on_result=lambda snap: self.post_message(self.Loaded(snap)),
            on_error=lambda error: self.post_message(self.Failed(error)),
            retry_every=SHOW_EVERY,
        )  # fmt: skip
        self.run_worker(self._poller.run(), group="board-view", exit_on_error=False)

    def on_resize(self, event) -> None:
        self.set_class(event.size.width < 64, "-narrow")
        self.set_class(event.size.height >= 34, "-tall")  # tiles of 16 rows: room for the big figure

    def on_board_screen_loaded(self, message: Loaded) -> None:
        self.snapshot, self.feed_problem = message.snapshot, None
        self._read_at = time.monotonic()
        self._show(message.snapshot)

    def on_board_screen_failed(self, message: Failed) -> None:
        self.feed_problem = str(message.error)
        if self.snapshot is not None:
            self._show(self.snapshot.aged(time.monotonic() - self._read_at, self.feed_problem))
        else:
            self.query_one("#board-header", Static).update(header_line(None, feed_problem=self.feed_problem))

    def _show(self, snapshot: BoardSnapshot) -> None:
        self.query_one("#board-header", Static).update(header_line(snapshot, feed_problem=self.feed_problem))
        for tile in snapshot.tiles:
            for widget in self.query(f"#tile-{tile.id}").results(BoardTile):
                widget.show(tile)

    def action_refresh_now(self) -> None:
        self.source.trigger()
        self._poller.trigger()
        self.notify("Refreshing…", timeout=1.5)
