"""The orders area: stuck / errors / recent (keyset pages) / search, the runbooks' header
figures, the selected order's detail with its audit history, live claims from other
consoles, and the order runbook actions (retry, panel sync, cancel and refund, bulk retry)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import DataTable, Footer, Input, Static

from screens.action_modal import InfoScreen
from screens.base import AreaScreen, DataShown
from screens.overview import STATUS_STYLE
from screens.shown import fill, plain
from screens.widgets import ClaimsBar, Panel, ShellHeader, Tile
from services.audit import AuditFilter, AuditRow
from services.errors import ServiceError
from services.order_actions import HINT_TEXT, ORDER_ACTIONS
from services.orders import Order, OrderDetail, OrderFigures, OrderPage
from services.runbook import Action, Outcome
from services.text import inert

VIEW_TITLES = {"stuck": "Stuck > 10 min", "errors": "Errors", "recent": "All orders", "search": "Search"}
COLUMNS = ("", "order", "status", "waiting / created", "server", "customer")


def order_row(order: Order, marked: bool = False) -> tuple:
    """One table row: mark, short id, status, server, email, minutes waiting or age. What
    the customer chose (server name, email) is shown inert and never read as markup."""
    when = (
        f"{order.minutes_waiting:,.0f} min"
        if order.minutes_waiting is not None
        else order.created_at.strftime("%Y-%m-%d %H:%M")
    )
    return (
        "●" if marked else " ",
        plain(order.id[:8]),
        plain(order.status, STATUS_STYLE.get(order.status, "")),
        when,
        plain(order.server_name, limit=60),
        plain(order.email, limit=60),
    )


def figure_values(f: OrderFigures) -> dict[str, tuple[str, bool, str]]:
    """tile id -> (value, alert, note) for the header figures."""
    rate = "no orders" if f.success_rate is None else f"{f.success_rate:.1f}%"
    note = f"{f.provisioned_1h} of {f.considered_1h}" if f.considered_1h else "in the last hour"
    avg = "—" if f.avg_provision_minutes is None else f"{f.avg_provision_minutes:.1f} min"
    return {
        "of-stuck": (str(f.stuck), f.stuck > 0, ""),
        "of-errors": (str(f.errors), f.errors > 0, ""),
        "of-rate": (rate, f.success_rate is not None and f.success_rate < 95, note),
        "of-avg": (avg, (f.avg_provision_minutes or 0) > 5, "24 h"),
    }


def detail_text(d: OrderDetail, history: list[AuditRow]) -> Text:
    """The detail pane: every field, the plan, node, customer, panel account, audit history.
    Our markup around; every value from the database or a backend goes in as inert text."""
    money = f"${d.amount_cents / 100:.2f}" if d.amount_cents is not None else "—"
    panel = (
        fill("{} ({})", d.pterodactyl_user_id, d.panel_username or "")
        if d.has_panel_account
        else fill("[b red]none[/] (P syncs it)")
    )
    node = "—" if d.node_name is None else fill("{}" + ("" if d.node_enabled else " (disabled)"), d.node_name)
    plan = (d.plan_id, d.game, d.ram_gb, d.egg_id, d.price_monthly)
    stripe = (d.stripe_subscription_id or "—", d.stripe_payment_intent_id or "—", money)
    lines = [
        fill("[b]{}[/b]", d.id),
        fill("status      {}", plain(d.status, STATUS_STYLE.get(d.status, ""))),
        fill("server      {}", d.server_name),
        fill("server id   {} {}", d.pterodactyl_server_id or "—", d.pterodactyl_server_identifier or ""),
        fill("plan        {} · {} · {} GB · egg {} · ${}/mo", *plan),
        fill("node        {}", node),
        fill("customer    {} · {}", d.email, d.user_id),
        fill("panel       {}", panel),
        fill("stripe      {} · {} · {}", *stripe),
        fill(f"created     {d.created_at:%Y-%m-%d %H:%M:%S} · updated {d.updated_at:%Y-%m-%d %H:%M:%S}"),
    ]
    if d.error_message:
        lines.append(fill("[b red]error       {}[/]", d.error_message, limit=1000))
    lines.append(Text(""))
    lines.append(fill("[b]History[/b]" if history else "[dim]no runbook actions on this order[/dim]"))
    for row in history[:12]:
        err = fill(" — {}", row.error, limit=300) if row.error else ""
        what = row.outcome or "started"
        lines.append(fill(f"{row.at:%m-%d %H:%M:%S} {{}} {{}} {{}}{{}}", row.operator, row.action, what, err))
    return Text("\n").join(lines)


@dataclass(frozen=True)
class Selected:
    detail: OrderDetail | None
    history: list[AuditRow]


class OrdersScreen(AreaScreen):
    AREA = "orders"
    AUTO_FOCUS = "#orders-table"
    PAGE_SIZE = 200  # rows per page: paging keeps the table small at any order count

    DEFAULT_CSS = """
    OrdersScreen #figures { height: auto; }
    OrdersScreen #body { height: 1fr; }
    OrdersScreen #list-panel { width: 3fr; }
    OrdersScreen #detail-panel { width: 2fr; }
    OrdersScreen #search { display: none; }
    OrdersScreen #search.-shown { display: block; }
    OrdersScreen #view-line { height: 1; color: $text-muted; }
    """
    ACTIONS = ORDER_ACTIONS
    BINDINGS = [
        Binding("s", "view('stuck')", "Stuck"),
        Binding("e", "view('errors')", "Errors"),
        Binding("a", "view('recent')", "All"),
        Binding("slash", "search", "Search", key_display="/"),
        Binding("right_square_bracket", "page(1)", "Next page", key_display="]", show=False),
        Binding("left_square_bracket", "page(-1)", "Prev page", key_display="[", show=False),
        Binding("space", "mark", "Mark", show=False),
        Binding("dollar_sign", "stripe", "Stripe state", key_display="$", show=False),
        *AreaScreen.action_bindings(ORDER_ACTIONS),
    ]

    class PageLoaded(Message):
        def __init__(self, page: OrderPage) -> None:
            super().__init__()
            self.page = page

    class FiguresLoaded(Message):
        def __init__(self, figures: OrderFigures) -> None:
            super().__init__()
            self.figures = figures

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
                yield DataTable(id="orders-table", cursor_type="row", zebra_stripes=True)
            with Panel(title="Order", id="detail-panel"):
                yield Static("select an order", id="detail")
        yield Footer()

    def on_mount(self) -> None:
        self.current_view = "stuck"
        self.search_text = ""
        self.cursors: list[tuple[datetime, str] | None] = [None]  # keyset cursor per page
        self.current_page: OrderPage | None = None
        self.marked: set[str] = set()
        self.selected: str | None = None
        self._detail_timer = None
        table = self.query_one(DataTable)
        for name in COLUMNS:
            table.add_column(name, key=name or "mark")
        services = self.shell.services
        self._audit = services.audit
        self._list = self.poll("list", self._fetch_page, lambda p: self.post_message(self.PageLoaded(p)))
        self.poll("figures", services.orders.figures, lambda f: self.post_message(self.FiguresLoaded(f)))
        self.poll_claims()
        self.set_interval(1.0, self._show_age)

    # -- data ---------------------------------------------------------------------------

    async def _fetch_page(self) -> OrderPage:
        after = self.cursors[-1] if self.current_view == "recent" else None
        return await self.shell.services.orders.page(
            self.current_view, query=self.search_text, after=after, limit=self.PAGE_SIZE
        )

    def _show_age(self) -> None:
        self.show_freshness(self._list.freshness())

    def on_orders_screen_figures_loaded(self, message: FiguresLoaded) -> None:
        for tile_id, (value, alert, note) in figure_values(message.figures).items():
            self.query_one(f"#{tile_id}", Tile).show(value, alert=alert, note=note)

    def on_orders_screen_page_loaded(self, message: PageLoaded) -> None:
        page = message.page
        self.current_page = page
        table = self.query_one(DataTable)
        keep = self.selected
        table.clear()
        for order in page.orders:
            table.add_row(*order_row(order, order.id in self.marked), key=order.id)
        if keep is not None and keep in {o.id for o in page.orders}:
            # scroll to it: after a view switch the kept order may sit far down the new list
            table.move_cursor(row=table.get_row_index(keep), animate=False, scroll=True)
        elif page.orders:  # the order left this view: act on what the cursor shows, nothing else
            table.move_cursor(row=0, animate=False)
            self.selected = page.orders[0].id
            self._load_detail(self.selected)
        else:
            self.selected = None
        n = len(self.cursors)
        paging = f" · page {n}" + (" · ] next" if page.more else "") + (" · [ prev" if n > 1 else "")
        marked = f" · {len(self.marked)} marked" if self.marked else ""
        shown = f"{len(page.orders)} orders" if page.orders else "no orders"
        search = f" for {self.search_text!r}" if self.current_view == "search" else ""
        self.query_one("#view-line", Static).update(
            plain(
                f"{VIEW_TITLES[self.current_view]}{search}: {shown}"
                f"{paging if self.current_view == 'recent' else ''}{marked}"
            )
        )
        if not page.orders:
            self.query_one("#detail", Static).update("no order selected")
        self._show_age()
        self.app.post_message(DataShown())

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is None:
            return
        self.selected = event.row_key.value
        # Debounced: holding a key down moves the cursor, not the database.
        if self._detail_timer is not None:
            self._detail_timer.stop()
        self._detail_timer = self.set_timer(0.15, lambda: self._load_detail(self.selected))

    class DetailLoaded(Message):
        """One order's detail pane, ready to show (posted by the detail worker)."""

        def __init__(self, order_id: str, content: str | Text) -> None:
            super().__init__()
            self.order_id = order_id
            self.content = content

    def on_orders_screen_detail_loaded(self, message: DetailLoaded) -> None:
        if self.selected == message.order_id:  # the cursor may have moved on meanwhile
            self.query_one("#detail", Static).update(message.content)

    @work(exclusive=True, group="detail", exit_on_error=False)
    async def _load_detail(self, order_id: str) -> None:
        try:
            detail = await self.shell.services.orders.detail(order_id)
            history = await self._audit.page(AuditFilter(target=order_id), limit=20)
            if detail is not None and detail.user_id:
                history += await self._audit.page(AuditFilter(target=detail.user_id), limit=5)
        except ServiceError as exc:
            self.post_message(self.DetailLoaded(order_id, plain(exc, "red")))
            return
        text = detail_text(detail, sorted(history, key=lambda r: -r.id)) if detail else "order not found"
        self.post_message(self.DetailLoaded(order_id, text))

    # -- navigation -------------------------------------------------------------------

    def _reload(self) -> None:
        self._list.trigger()

    def action_view(self, view: str) -> None:
        self.current_view = view
        self.cursors = [None]
        self.query_one("#search").remove_class("-shown")
        self.query_one(DataTable).focus()
        self._reload()

    def action_search(self) -> None:
        box = self.query_one("#search", Input)
        box.add_class("-shown")
        box.focus()

    def key_escape(self) -> None:
        box = self.query_one("#search", Input)
        if box.has_class("-shown"):
            box.remove_class("-shown")
            self.query_one(DataTable).focus()

    @on(Input.Submitted, "#search")
    def _search(self, event: Input.Submitted) -> None:
        self.current_view = "search"
        self.search_text = event.value.strip()
        self.query_one(DataTable).focus()
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
        self._reload()

    def action_mark(self) -> None:
        if self.selected is None:
            return
        self.marked ^= {self.selected}
        table = self.query_one(DataTable)
        table.update_cell(self.selected, "mark", "●" if self.selected in self.marked else " ")

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
        if self.selected is None:
            return
        detail = await self.shell.services.orders.detail(self.selected)
        if detail is None or not detail.stripe_payment_intent_id:
            self.notify("this order has no Stripe payment", severity="warning")
            return
        try:
            state = await self.shell.services.payments.payment_state(
                detail.stripe_payment_intent_id, detail.stripe_subscription_id
            )
        except ServiceError as exc:
            self.notify(inert(exc), severity="error", title="Stripe", markup=False)
            return
        self.notify(
            inert(f"{state.payment_intent}: {state.status}, ${state.amount / 100:.2f} charged, "
                  f"${state.refunded / 100:.2f} refunded; subscription {state.subscription_status or '—'}"),
            title="Stripe", timeout=10, markup=False,
        )  # fmt: skip
