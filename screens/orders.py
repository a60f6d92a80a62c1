"""The orders area: stuck / errors / recent (keyset pages) / search, the runbooks' header
figures, the selected order's detail with its audit history, live claims from other
consoles, and the order runbook actions (retry, panel sync, cancel and refund, bulk retry)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Footer, Input, Static

from screens.action_modal import InfoScreen
from screens.base import AreaScreen, DataShown
from screens.live_table import LiveTable
from screens.overview import STATUS_STYLE
from screens.shown import fill, plain
from screens.widgets import ClaimsBar, Panel, ShellHeader, Tile
from services.audit import AuditFilter, AuditRow
from services.errors import ServiceError
from services.order_actions import HINT_TEXT, ORDER_ACTIONS
from services.orders import Order, OrderDetail, OrderFigures, OrderPage
from services.payments import PaymentState
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


@dataclass(frozen=True)
class StripeShown:
    """What Stripe said about an order's payment when `$` asked, or why it could not say."""

    at: datetime
    state: PaymentState | None
    error: str | None = None


PAYMENT_STYLE = {"succeeded": "green", "canceled": "dim", "requires_payment_method": "bold red"}
SUBSCRIPTION_STYLE = {"active": "green", "trialing": "green", "past_due": "bold red", "unpaid": "bold red"}


def stripe_lines(shown: StripeShown) -> list[Text]:
    """The detail pane's Stripe section: payment intent status, charged, refunded and the
    subscription's status as Stripe said them, and when it was asked."""
    lines = [fill(f"[b]Stripe[/b] [dim]asked at {shown.at.astimezone():%H:%M:%S} ($ asks again)[/dim]")]
    s = shown.state
    if s is None:
        return [*lines, fill("[red]{}[/]", shown.error or "no answer", limit=300)]
    currency = s.currency.upper()
    refunded = "yellow" if 0 < s.refunded < s.amount else ("bold" if s.refunded else "")
    sub = s.subscription_status
    sub_style = SUBSCRIPTION_STYLE.get(sub, "yellow") if sub else "dim"
    return [
        *lines,
        fill("payment     {} {}", plain(s.status, PAYMENT_STYLE.get(s.status, "yellow")), s.payment_intent),
        fill("charged     {} {}", f"{s.amount / 100:,.2f}", currency),
        fill("refunded    {} {}", plain(f"{s.refunded / 100:,.2f}", refunded), currency),
        fill("subscription {} {}", plain(sub or "—", sub_style), s.subscription or ""),
    ]


def detail_text(d: OrderDetail, history: list[AuditRow], stripe: StripeShown | None = None) -> Text:
    """The detail pane: every field, the plan, node, customer, panel account, what Stripe
    said when last asked (`$`), audit history. Our markup around; every value from the
    database or a backend goes in as inert text."""
    money = f"${d.amount_cents / 100:.2f}" if d.amount_cents is not None else "—"
    panel = (
        fill("{} ({})", d.pterodactyl_user_id, d.panel_username or "")
        if d.has_panel_account
        else fill("[b red]none[/] (P syncs it)")
    )
    node = "—" if d.node_name is None else fill("{}" + ("" if d.node_enabled else " (disabled)"), d.node_name)
    plan = (d.plan_id, d.game, d.ram_gb, d.egg_id, d.price_monthly)
    payment = (d.stripe_subscription_id or "—", d.stripe_payment_intent_id or "—", money)
    lines = [
        fill("[b]{}[/b]", d.id),
        fill("status      {}", plain(d.status, STATUS_STYLE.get(d.status, ""))),
        fill("server      {}", d.server_name),
        fill("server id   {} {}", d.pterodactyl_server_id or "—", d.pterodactyl_server_identifier or ""),
        fill("plan        {} · {} · {} GB · egg {} · ${}/mo", *plan),
        fill("node        {}", node),
        fill("customer    {} · {}", d.email, d.user_id),
        fill("panel       {}", panel),
        fill("stripe      {} · {} · {}", *payment),
        fill(f"created     {d.created_at:%Y-%m-%d %H:%M:%S} · updated {d.updated_at:%Y-%m-%d %H:%M:%S}"),
    ]
    if d.error_message:
        lines.append(fill("[b red]error       {}[/]", d.error_message, limit=1000))
    if stripe is not None:
        lines += [Text(""), *stripe_lines(stripe)]
    lines.append(Text(""))
    lines.append(fill("[b]History[/b]" if history else "[dim]no runbook actions on this order[/dim]"))
    for row in history[:12]:
        err = fill(" — {}", row.error, limit=300) if row.error else ""
        what = row.outcome or "started"
        lines.append(fill(f"{row.at:%m-%d %H:%M:%S} {{}} {{}} {{}}{{}}", row.operator, row.action, what, err))
    return Text("\n").join(lines)


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
    OrdersScreen #orders-table { height: 1fr; max-height: 100%; }
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
                yield LiveTable(COLUMNS, id="orders-table")
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
        self._detail: OrdersScreen.DetailLoaded | None = None  # what the pane shows
        self._stripe: dict[str, StripeShown] = {}  # order id -> Stripe's last answer
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
        table = self.query_one(LiveTable)
        keep = self.selected
        refilled = self._show_rows(table, {o.id: order_row(o, o.id in self.marked) for o in page.orders})
        if keep is not None and keep in table.shown:
            # scroll to it: after a view switch the kept order may sit far down the new list
            # (a cursor already on it stays as it is: nothing to draw)
            if refilled or table.cursor_row != table.get_row_index(keep):
                table.move_cursor(row=table.get_row_index(keep))
        elif page.orders:  # the order left this view: act on what the cursor shows, nothing else
            table.move_cursor(row=0)
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
        self._reload()

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
