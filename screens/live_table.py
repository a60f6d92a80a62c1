"""LiveTable: a keyed table for data that changes under the operator's eyes (a watch stream
of thousands of pods). Only visible lines are rendered; each row's line is cached until
that row changes, so an update to a row off screen costs nothing and one on screen redraws
one line. The stock DataTable re-renders every visible cell after any update, which at 50
events a second on 5,000 rows costs most of a core."""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.events import Click
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

GAP = 2  # spaces between columns


def _text(cell: object) -> Text:
    return cell.copy() if isinstance(cell, Text) else Text(str(cell))


class LiveTable(ScrollView, can_focus=True):
    """Rows keyed by id, kept in place: `put` updates a row (new keys go to the end), `drop`
    removes one, `sync` makes the table show exactly the given rows. The cursor stays on
    its row while rows above it come and go."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "livetable--header", "livetable--cursor", "livetable--even-row",
    }  # fmt: skip
    DEFAULT_CSS = """
    LiveTable { background: $surface; color: $foreground; height: auto; max-height: 100%; }
    LiveTable > .livetable--header { text-style: bold; background: $panel; }
    LiveTable > .livetable--even-row { background: $surface-lighten-1 50%; }
    LiveTable > .livetable--cursor { background: $block-cursor-blurred-background; }
    LiveTable:focus > .livetable--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground;
    }
    """
    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
    ]

    class Highlighted(Message):
        """The cursor moved to another row (by key or mouse)."""

        def __init__(self, table: LiveTable, key: str | None) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> LiveTable:
            return self.table

    def __init__(self, columns: tuple[str, ...], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.columns = columns
        self.shown: dict[str, tuple] = {}
        self._order: list[str] = []
        self._index: dict[str, int] = {}
        self._widths = [len(c) for c in columns]
        self._lines: dict[str, Strip] = {}  # rendered rows, dropped when the row changes
        self.cursor_row = 0

    def on_mount(self) -> None:
        self._resize()  # the header shows even before the first row

    # -- data ---------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self._order)

    def put(self, key: str, row: tuple) -> None:
        """Show `row` under `key`; redraws only that row's line, if it is on screen."""
        old = self.shown.get(key)
        if old == row:
            return
        self.shown[key] = row
        self._lines.pop(key, None)
        widened = self._widen(row)
        if old is None:
            self._index[key] = len(self._order)
            self._order.append(key)
            self._resize()
        elif widened:
            self._lines.clear()
            self.refresh()
        else:
            self.refresh_line(self._index[key] + 1)

    def drop(self, key: str) -> None:
        if self.shown.pop(key, None) is None:
            return
        self._lines.pop(key, None)
        at = self._index.pop(key)
        selected = self.selected_key
        del self._order[at]
        for k in self._order[at:]:
            self._index[k] -= 1
        if selected is not None and selected != key:  # keep the cursor on its row
            self.cursor_row = self._index[selected]
        self.cursor_row = max(0, min(self.cursor_row, len(self._order) - 1))
        self._resize()

    def sync_in_order(self, rows: dict[str, tuple]) -> None:
        """Show `rows` in their own order (longest, newest, largest first): when the order
        changed the table is laid out again, the cursor kept on its row; otherwise only the
        changed rows are redrawn."""
        selected = self.selected_key
        if list(rows) != [k for k in self.shown if k in rows] + [k for k in rows if k not in self.shown]:
            self.clear()
        self.sync(rows)
        if selected in rows and self.selected_key != selected:
            self.move_cursor(row=self.get_row_index(selected))

    def sync(self, rows: dict[str, tuple]) -> None:
        """Show exactly `rows`: changed ones updated, new ones added in their order, gone
        ones removed."""
        gone = [k for k in self._order if k not in rows]
        if len(gone) > 50:  # a re-list that changed much: rebuild the order once
            selected = self.selected_key
            self._order = [k for k in self._order if k in rows]
            self._index = {k: i for i, k in enumerate(self._order)}
            for key in gone:
                self.shown.pop(key, None)
                self._lines.pop(key, None)
            if selected in self._index:
                self.cursor_row = self._index[selected]
            self._resize()
        else:
            for key in gone:
                self.drop(key)
        added = False
        for key, row in rows.items():
            if key in self.shown:
                self.put(key, row)
                continue
            # New rows are appended together and laid out once (a first list of 5,000 pods).
            self.shown[key] = row
            self._index[key] = len(self._order)
            self._order.append(key)
            self._widen(row)
            added = True
        if added:
            self._resize()

    def clear(self) -> None:
        self.shown.clear()
        self._order.clear()
        self._index.clear()
        self._lines.clear()
        self._widths = [len(c) for c in self.columns]
        self.cursor_row = 0
        self._resize()

    def get_row_index(self, key: str) -> int:
        return self._index[key]

    @property
    def selected_key(self) -> str | None:
        if not self._order:
            return None
        return self._order[max(0, min(self.cursor_row, len(self._order) - 1))]

    def _widen(self, row: tuple) -> bool:
        widened = False
        for i, cell in enumerate(row):
            length = cell.cell_len if isinstance(cell, Text) else len(str(cell))
            if length > self._widths[i]:
                self._widths[i] = min(length, 60)
                widened = True
        return widened

    def _resize(self) -> None:
        width = sum(self._widths) + GAP * len(self._widths)
        self.virtual_size = Size(width, len(self._order) + 1)
        self._lines.clear()
        self.refresh()

    # -- cursor -------------------------------------------------------------------------

    @property
    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 2)

    def move_cursor(self, *, row: int) -> None:
        if not self._order:
            return
        before = self.cursor_row
        self.cursor_row = max(0, min(row, len(self._order) - 1))
        self.refresh_line(before + 1)
        self.refresh_line(self.cursor_row + 1)
        self._scroll_to_cursor()
        if before != self.cursor_row:
            self.post_message(self.Highlighted(self, self.selected_key))

    def _scroll_to_cursor(self) -> None:
        height = self.scrollable_content_region.height - 1  # the header stays on top
        top = round(self.scroll_y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False)
        elif self.cursor_row >= top + height:
            self.scroll_to(y=self.cursor_row - height + 1, animate=False)

    def action_cursor(self, step: int) -> None:
        self.move_cursor(row=self.cursor_row + step)

    def action_page(self, step: int) -> None:
        self.move_cursor(row=self.cursor_row + step * self._page)

    def action_jump(self, row: int) -> None:
        self.move_cursor(row=row if row >= 0 else len(self._order) - 1)

    def on_click(self, event: Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None and offset.y >= 1:
            self.move_cursor(row=round(self.scroll_y) + offset.y - 1)

    def on_focus(self) -> None:
        self.refresh_line(self.cursor_row + 1)

    def on_blur(self) -> None:
        self.refresh_line(self.cursor_row + 1)

    # -- rendering ----------------------------------------------------------------------

    def _row_strip(self, cells: tuple, style: Style) -> Strip:
        segments: list[Segment] = [Segment(" ", style)]
        for i, cell in enumerate(cells):
            text = _text(cell)
            text.truncate(self._widths[i], overflow="ellipsis", pad=True)
            cell_style = Style.parse(text.style) if isinstance(text.style, str) else text.style
            text.style = style + cell_style  # the row's background under the cell's own colours
            text.end = ""
            segments.extend(text.render(self.app.console))
            segments.append(Segment(" " * GAP if i < len(cells) - 1 else " ", style))
        return Strip(segments)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        scroll_x = round(self.scroll_x)
        if y == 0:
            style = self.get_component_rich_style("livetable--header")
            strip = self._row_strip(self.columns, style)
            return strip.crop_extend(scroll_x, scroll_x + width, style)
        index = round(self.scroll_y) + y - 1
        if index >= len(self._order):
            return Strip.blank(width, self.rich_style)
        key = self._order[index]
        if index == self.cursor_row:
            style = self.get_component_rich_style("livetable--cursor")
            strip = self._row_strip(self.shown[key], self.rich_style + style)
            return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style + style)
        base = self.rich_style
        if index % 2 == 0:
            base = base + self.get_component_rich_style("livetable--even-row")
        strip = self._lines.get(key)
        if strip is None:
            strip = self._lines[key] = self._row_strip(self.shown[key], base)
        return strip.crop_extend(scroll_x, scroll_x + width, base)
