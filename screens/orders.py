"""The orders area: stuck / errors / recent (keyset pages) / search, the runbooks' header
figures, the selected order's detail with its audit history, live claims from other
consoles, and the order runbook actions (retry, panel sync, cancel and refund, bulk retry)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Input, Static

from screens.action_modal import InfoScreen
from screens.base import AreaScreen, DataShown
from screens.live_table import LiveTable
from screens.orders_render import (
    COLUMNS,
    VIEW_TITLES,
    StripeShown,
    detail_text,
    figure_values,
    order_row,
)
from screens.shown import fill, plain
from screens.widgets import ClaimsBar, Panel, ShellHeader, Tile
from services.audit import AuditFilter, AuditRow
from services.errors import ServiceError
from services.order_actions import HINT_TEXT, ORDER_ACTIONS
from services.orders import Order, OrderDetail, OrderFigures, OrderPage
from services.runbook import Action, Outcome
from services.text import inert

PageKey = tuple[str, str, tuple[datetime, str] | None]  # view, search text, keyset cursor


class OrdersScreen(AreaScreen):
    AREA = "orders"
    AUTO_FOCUS = "#orders-table"
    PAGE_SIZE = 200  # rows per page: paging keeps the table small at any order count
    READ_AHEAD = True  # read the next page while this one is shown: `]` (and `[`) show at once

    DEFAULT_CSS = """
    OrdersScreen #figures { height: auto; }
    OrdersScreen #body { height: 1fr; }
    OrdersScreen #list-panel { width: 3fr; }
    OrdersScreen #detail-panel { width: 2fr; }
    OrdersScreen #search { display: none; }
    OrdersScreen #search.-shown { display: block; }
    OrdersScreen #view-line { height: 1; color: $text-muted; }
    OrdersScreen #orders-table { height: 1fr; max-height: 100%; }
    OrdersScreen.-narrow #body { layout: vertical; }
    OrdersScreen.-narrow #list-panel { width: 1fr; height: 3fr; }
    OrdersScreen.-narrow #detail-panel { width: 1fr; height: 2fr; min-height: 6; }
    """
    ACTIONS = ORDER_ACTIONS
    BINDINGS = [
        *AreaScreen.action_bindings(ORDER_ACTIONS),
        Binding("s", "view('stuck')", "Stuck", show=False),
        Binding("e", "view('errors')", "Errors", show=False),
        Binding("a", "view('recent')", "All", show=False),
        Binding("slash", "search", "Search", key_display="/"),
        Binding("right_square_bracket", "page(1)", "Next page", key_display="]", show=False),
        Binding("left_square_bracket", "page(-1)", "Prev page", key_display="[", show=False),
        Binding("space", "mark", "Mark", show=False),
        Binding("dollar_sign", "stripe", "Stripe state", key_display="$", show=False),
    ]

    class PageLoaded(Message):
        """One page of the list, and which (view, search, keyset cursor) it was read for."""

        def __init__(self, key: PageKey, page: OrderPage) -> None:
            super().__init__()
            self.key = key
            self.page = page

    class PageAhead(Message):
        """A page read ahead (the one `]` would show), its rows built."""

        def __init__(self, key: PageKey, page: OrderPage) -> None:
            super().__init__()
            self.key = key
            self.page = page

    class FiguresLoaded(Message):
        def __init__(self, figures: OrderFigures) -> None:
            super().__init__()
            self.figures = figures

    def on_resize(self, event) -> None:
        # Under 110 columns the list takes the width (every column on screen), the order's
        # detail goes below it.
        self.set_class(event.size.width < 110, "-narrow")

    def compose(self) -> ComposeResult:
        yield ShellHeader(self.AREA)
        with Panel(title="Provisioning", id="figures-panel"), Horizontal(id="figures"):
            yield Tile("stuck > 10 min", id="of-stuck")
            yield Tile("in error", id="of-errors")
            yield Tile("success, last hour", id="of-rate")
            yield Tile("avg provisioning", id="of-avg")
        yield ClaimsBar(id="claims")
        with Horizontal(id="body"):
            with Panel(title="Orders", id="list-panel"):
                yield Static("", id="view-line")
                yield Input(
                    placeholder="order id, user id, email or server name — Enter searches", id="search"
                )
                yield LiveTable(COLUMNS, id="orders-table")
            with Panel(title="Order", id="detail-panel"), VerticalScroll(id="detail-scroll", can_focus=True):
                yield Static("select an order", id="detail")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.current_view = "stuck"
        self.search_text = ""
        self.cursors: list[tuple[datetime, str] | None] = [None]  # keyset cursor per page
        self.current_page: OrderPage | None = None
        self.marked: set[str] = set()
        self.selected: str | None = None
        self._detail_timer = None
        self._detail: OrdersScreen.DetailLoaded | None = None  # what the pane shows
        self._detail_shown: str | Text = ""
        self._view_line: Text | None = None
        self._stripe: dict[str, StripeShown] = {}  # order id -> Stripe's last answer
        self._rows: dict[tuple[str, bool], tuple[Order, tuple]] = {}  # (id, marked) -> (order, row)
        self._ahead: dict[PageKey, tuple[float, OrderPage]] = {}  # read ahead or shown: (when, page)
        services = self.shell.services
        self._audit = services.audit
        self._list = self.poll("list", self._fetch_page, lambda kp: self.post_message(self.PageLoaded(*kp)))
        self.poll("figures", services.orders.figures, lambda f: self.post_message(self.FiguresLoaded(f)))
        self.poll_claims()
        self.set_interval(1.0, self._show_age)

    # -- data ---------------------------------------------------------------------------

    def _page_key(self) -> PageKey:
        """The page the operator is on: view, search text, keyset cursor (recent only)."""
        return (
            self.current_view,
            self.search_text,
            self.cursors[-1] if self.current_view == "recent" else None,
        )

    async def _fetch_page(self) -> tuple[PageKey, OrderPage]:
        key = self._page_key()
        view, query, after = key
        return key, await self.shell.services.orders.page(
            view, query=query, after=after, limit=self.PAGE_SIZE
        )

    @work(exclusive=True, group="ahead", exit_on_error=False)
    async def _read_ahead(self, key: PageKey) -> None:
        """Read the page `]` would show, and build its rows, while the operator reads this
        one (refreshed with every poll, so it is as fresh as the page on screen)."""
        view, query, after = key
        try:
            page = await self.shell.services.orders.page(view, query=query, after=after, limit=self.PAGE_SIZE)
        except ServiceError:
            return  # the poll says why, if the operator goes there
        self._rows_of(page.orders)  # built now, while the operator reads: `]` only shows them
        self.post_message(self.PageAhead(key, page))

    def on_orders_screen_page_ahead(self, message: PageAhead) -> None:
        self._keep_ahead(message.key, message.page)

    def _keep_ahead(self, key: PageKey, page: OrderPage) -> None:
        self._ahead.pop(key, None)
        self._ahead[key] = (time.monotonic(), page)
        if len(self._ahead) > 12:  # this page, the next, ten behind; their rows with them
            del self._ahead[next(iter(self._ahead))]
            kept = {o.id for _, p in self._ahead.values() for o in p.orders}
            self._rows = {k: built for k, built in self._rows.items() if k[0] in kept}

    def _page_at_once(self, key: PageKey) -> OrderPage | None:
        """The page for `key` if it was read within two poll intervals (shown at once, the
        poll refreshing it right after), else None."""
        at, page = self._ahead.get(key, (0.0, None))
        return page if time.monotonic() - at < 2 * self.shell.context.refresh(self.AREA) else None

    def _rows_of(self, orders: tuple[Order, ...]) -> dict[str, tuple]:
        """Each order's row, built once per (order as read, marked): a poll that brings the
        same orders back, or a page read ahead, costs no rendering."""
        rows = {}
        for order in orders:
            key = (order.id, order.id in self.marked)
            built = self._rows.get(key)
            if built is None or built[0] != order:
                built = self._rows[key] = (order, order_row(order, key[1]))
            rows[order.id] = built[1]
        return rows

    def _show_age(self) -> None:
        self.show_freshness(self._list.freshness())

    def on_orders_screen_figures_loaded(self, message: FiguresLoaded) -> None:
        for tile_id, (value, alert, note) in figure_values(message.figures).items():
            self.query_one(f"#{tile_id}", Tile).show(value, alert=alert, note=note)

    def on_orders_screen_page_loaded(self, message: PageLoaded) -> None:
        if message.key != self._page_key():
            return  # read for a page the operator has left (a poll in flight meanwhile)
        page = message.page
        self.current_page = page
        self._keep_ahead(message.key, page)  # `[` back to it shows it at once
        if self.READ_AHEAD and self.current_view == "recent" and page.more:
            # after this page's frame: reading ahead must not delay it
            self.call_after_refresh(self._read_ahead, (*message.key[:2], page.cursor))
        table = self.query_one(LiveTable)
        keep = self.selected
        refilled = self._show_rows(table, self._rows_of(page.orders))
        if keep is not None and keep in table.shown:
            # scroll to it: after a view switch the kept order may sit far down the new list
            # (a cursor already on it stays as it is: nothing to draw)
            if refilled or table.cursor_row != table.get_row_index(keep):
                table.move_cursor(row=table.get_row_index(keep))
            # it may have changed (an action, another console): read after this frame, redrawn if so
            self.call_after_refresh(self._load_detail, keep)
        elif page.orders:  # the order left this view: act on what the cursor shows, nothing else
            table.move_cursor(row=0)
            self.selected = page.orders[0].id
            self.call_after_refresh(self._load_detail, self.selected)  # the list's frame first
        else:
            self.selected = None
        n = len(self.cursors)
        paging = f" · page {n}" + (" · ] next" if page.more else "") + (" · [ prev" if n > 1 else "")
        marked = f" · {len(self.marked)} marked" if self.marked else ""
        shown = f"{len(page.orders)} orders" if page.orders else "no orders"
        search = f" for {self.search_text!r}" if self.current_view == "search" else ""
        line = plain(
            f"{VIEW_TITLES[self.current_view]}{search}: {shown}"
            f"{paging if self.current_view == 'recent' else ''}{marked}"
        )
        if line != self._view_line:
            self._view_line = line
            self.query_one("#view-line", Static).update(line)
        if not page.orders and self._detail_shown != "no order selected":
            self._detail, self._detail_shown = None, "no order selected"
            self.query_one("#detail", Static).update(self._detail_shown)
        self._show_age()
        self.app.post_message(DataShown())

    @staticmethod
    def _show_rows(table: LiveTable, rows: dict[str, tuple]) -> bool:
        """Show `rows` in their order, redrawing only what changed: a poll that changes
        nothing draws nothing, a changed order redraws its line. The table keeps rows in
        place and adds new ones at the end, so when the order itself changed (another page,
        an order new at the top) it is refilled (only the lines on screen are drawn), and
        this says so."""
        kept = [key for key in table.shown if key in rows]
        refill = kept != list(rows)[: len(kept)]
        if refill:
            table.clear()
        table.sync(rows)
        return refill

    @on(LiveTable.Highlighted, "#orders-table")
    def _highlighted(self, event: LiveTable.Highlighted) -> None:
        if event.key is None:
            return
        self.selected = event.key
        # Debounced: holding a key down moves the cursor, not the database.
        if self._detail_timer is not None:
            self._detail_timer.stop()
        self._detail_timer = self.set_timer(0.15, lambda: self._load_detail(self.selected))

    class DetailLoaded(Message):
        """One order's detail and history, or why it could not be read (posted by the
        detail worker)."""

        def __init__(
            self, order_id: str, detail: OrderDetail | None, history: list[AuditRow], error: str | None = None
        ) -> None:
            super().__init__()
            self.order_id = order_id
            self.detail = detail
            self.history = history
            self.error = error

    class StripeLoaded(Message):
        """What Stripe said about an order's payment (posted by the `$` worker)."""

        def __init__(self, order_id: str, shown: StripeShown) -> None:
            super().__init__()
            self.order_id = order_id
            self.shown = shown

    def on_orders_screen_detail_loaded(self, message: DetailLoaded) -> None:
        if self.selected == message.order_id:  # the cursor may have moved on meanwhile
            self._detail = message
            self._show_detail()

    def on_orders_screen_stripe_loaded(self, message: StripeLoaded) -> None:
        self._stripe[message.order_id] = message.shown
        if self._detail is not None and self._detail.order_id == message.order_id == self.selected:
            self._show_detail()

    def _show_detail(self) -> None:
        shown = self._detail
        if shown is None:
            return
        if shown.error is not None:
            content: str | Text = plain(shown.error, "red")
        elif shown.detail is None:
            content = "order not found"
        else:
            content = detail_text(shown.detail, shown.history, self._stripe.get(shown.order_id))
        if content != self._detail_shown:  # a refresh that changes nothing draws nothing
            self._detail_shown = content
            self.query_one("#detail", Static).update(content)

    @work(exclusive=True, group="detail", exit_on_error=False)
    async def _load_detail(self, order_id: str) -> None:
        try:
            detail = await self.shell.services.orders.detail(order_id)
            history = await self._audit.page(AuditFilter(target=order_id), limit=20)
            if detail is not None and detail.user_id:
                history += await self._audit.page(AuditFilter(target=detail.user_id), limit=5)
        except ServiceError as exc:
            self.post_message(self.DetailLoaded(order_id, None, [], error=str(exc)))
            return
        self.post_message(self.DetailLoaded(order_id, detail, sorted(history, key=lambda r: -r.id)))

    # -- navigation -------------------------------------------------------------------

    def _reload(self) -> None:
        self._list.trigger()

    def action_view(self, view: str) -> None:
        self.current_view = view
        self.cursors = [None]
        self.query_one("#search").remove_class("-shown")
        self.query_one(LiveTable).focus()
        self._reload()

    def action_search(self) -> None:
        box = self.query_one("#search", Input)
        box.add_class("-shown")
        box.focus()

    def key_escape(self) -> None:
        box = self.query_one("#search", Input)
        if box.has_class("-shown"):
            box.remove_class("-shown")
            self.query_one(LiveTable).focus()

    @on(Input.Submitted, "#search")
    def _search(self, event: Input.Submitted) -> None:
        self.current_view = "search"
        self.search_text = event.value.strip()
        self.query_one(LiveTable).focus()
        self._reload()

    def action_page(self, step: int) -> None:
        if self.current_view != "recent" or self.current_page is None:
            return
        if step > 0 and self.current_page.more:
            self.cursors.append(self.current_page.cursor)
        elif step < 0 and len(self.cursors) > 1:
            self.cursors.pop()
        else:
            return
        key = self._page_key()
        page = self._page_at_once(key) if self.READ_AHEAD else None
        if page is None:
            self._reload()
            return
        # read ahead, or shown before: at once; the poll refreshes it after that frame
        self.post_message(self.PageLoaded(key, page))
        self.call_after_refresh(self._reload)

    def action_mark(self) -> None:
        if self.selected is None:
            return
        self.marked ^= {self.selected}
        table = self.query_one(LiveTable)
        row = table.shown.get(self.selected)
        if row is not None:
            table.put(self.selected, ("●" if self.selected in self.marked else " ", *row[1:]))

    # -- actions ------------------------------------------------------------------------

    def selection(self, action: Action) -> tuple[str, dict[str, str]] | None:
        if self.selected is None:
            self.notify("select an order first", severity="warning")
            return None
        return self.selected, {}

    def marked_keys(self) -> list[str]:
        return sorted(self.marked)

    async def run_bulk(self, action: Action, keys: list[str]) -> dict[str, Outcome]:
        outcomes = await super().run_bulk(action, keys)
        if outcomes:
            self.marked.clear()
            self._reload()
        return outcomes

    def hint_line(self, outcome: Outcome) -> str:
        return f"\n→ {HINT_TEXT[outcome.hint]}" if outcome.hint in HINT_TEXT else ""

    async def after_action(self, action: Action, outcome: Outcome) -> None:
        self._reload()
        if outcome.status == "failed" and outcome.hint:
            await self._follow_hint(outcome.hint, outcome.target)

    async def _follow_hint(self, hint: str, order_id: str) -> None:
        """Where each of the runbooks' three provisioning errors leads."""
        orders = self.shell.services.orders
        try:
            if hint == "capacity":
                # The nodes area answers it: every node (empty ones too) and what still fits.
                self.app.switch_mode("nodes")
                self.app.notify("No available nodes: here is every node's room and what still fits",
                                title="Node capacity", timeout=8)  # fmt: skip
            elif hint == "plan":
                d = await orders.detail(order_id)
                if d is not None:
                    body = fill("plan {} ({}): game {}, {} GB RAM, panel egg {}\nThe panel answered 422: "
                                "check that egg {} exists for this game and its variables are complete.",
                                d.plan_id, d.plan_name, d.game, d.ram_gb, d.egg_id, d.egg_id)  # fmt: skip
                    await self.app.push_screen_wait(InfoScreen("Failed to create server: 422", body))
            elif hint == "panel_sync":
                d = await orders.detail(order_id)
                if d is not None and not d.has_panel_account:
                    # offered: its own preview and confirmation
                    await self.run_action(self.find_action("sync_panel_account"), order_id)
        except ServiceError as exc:
            self.notify(inert(exc), severity="error", markup=False)

    @work(exclusive=True, group="stripe", exit_on_error=False)
    async def action_stripe(self) -> None:
        """Ask Stripe about the selected order's payment; the answer stays in its pane."""
        order_id = self.selected
        if order_id is None:
            return
        try:
            detail = await self.shell.services.orders.detail(order_id)
        except ServiceError as exc:
            self.notify(inert(exc), severity="error", markup=False)
            return
        if detail is None or not detail.stripe_payment_intent_id:
            self.notify("this order has no Stripe payment", severity="warning")
            return
        try:
            state = await self.shell.services.payments.payment_state(
                detail.stripe_payment_intent_id, detail.stripe_subscription_id
            )
        except ServiceError as exc:
            self.notify(inert(exc), severity="error", title="Stripe", markup=False)
            self.post_message(self.StripeLoaded(order_id, StripeShown(datetime.now(UTC), None, str(exc))))
            return
        self.post_message(self.StripeLoaded(order_id, StripeShown(datetime.now(UTC), state)))
        self.notify(
            inert(f"{state.payment_intent}: {state.status}, ${state.amount / 100:.2f} charged, "
                  f"${state.refunded / 100:.2f} refunded; subscription {state.subscription_status or '—'}"),
            title="Stripe (kept in the order pane)", timeout=6, markup=False,
        )  # fmt: skip
