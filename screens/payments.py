"""The payments area (the AGIS manual's "Payment Webhook Failure"): the webhook's success
rate over 24h / 7d / 30d, the oldest undelivered event against Stripe's 30 days, the bot's
failure rate; the paid sessions never credited with resend and credit, one or every
marked one at once; the period's checkout events; the webhook endpoints, disabled loudly."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Static, TabbedContent, TabPane

from screens.base import AreaScreen, DataShown
from screens.live_table import LiveTable
from screens.payments_render import (
    DELIVERY_COLUMNS,
    ENDPOINT_COLUMNS,
    NOT_CONFIGURED,
    OWED_COLUMNS,
    deliveries_about,
    delivery_row,
    endpoint_row,
    endpoints_about,
    failing_text,
    grid,
    owed_row,
    owed_rows,
    owed_title,
    status_text,
)
from screens.shown import fill
from screens.widgets import ActionProgress, ClaimsBar, Panel, ShellHeader
from services.action import role_rank
from services.errors import ServiceError
from services.payment_actions import CREDIT, PAYMENT_ACTIONS, RESEND
from services.payments_model import PERIODS, Deliveries, Owed, Reconciliation, WebhookEndpoint
from services.runbook import Action, Outcome

POLL_SECONDS = 30.0  # every read pages through Stripe: not more often than this, r reads now
CREDIT_KEY, RESEND_KEY = CREDIT.key, RESEND.key  # what the operator is told to press
TABLES = {"reconcile": "#owed-table", "deliveries": "#deliveries-table", "endpoints": "#endpoints-table"}


@dataclass(frozen=True)
class PaymentsView:
    """One poll's answer, for one period."""

    endpoints: list[WebhookEndpoint]
    deliveries: Deliveries
    reconciliation: Reconciliation


class PaymentsScreen(AreaScreen):
    AREA = "payments"
    AUTO_FOCUS = "#owed-table"

    DEFAULT_CSS = """
    PaymentsScreen #payments-status { height: auto; padding: 0 1; }
    PaymentsScreen TabbedContent { height: 1fr; }
    PaymentsScreen TabPane { padding: 0; }
    PaymentsScreen .about { height: auto; padding: 0 1; }
    PaymentsScreen #reconcile-body { height: 1fr; }
    PaymentsScreen #owed-panel { width: 74; height: 1fr; }
    PaymentsScreen #session-panel { width: 1fr; height: 1fr; }
    PaymentsScreen #session-scroll { height: 1fr; }
    PaymentsScreen #session { height: auto; }
    PaymentsScreen #deliveries-panel, PaymentsScreen #endpoints-panel { height: 1fr; }
    PaymentsScreen LiveTable { height: auto; max-height: 100%; }
    PaymentsScreen.-narrow #reconcile-body { layout: vertical; }
    PaymentsScreen #owed-about.-shown { display: block; }
    PaymentsScreen #owed-about { display: none; }
    PaymentsScreen.-narrow #owed-panel { width: 1fr; height: 1fr; min-height: 6; }
    PaymentsScreen.-narrow #session-panel { height: 7; }
    """
    ACTIONS = PAYMENT_ACTIONS
    BINDINGS = [
        *AreaScreen.action_bindings(PAYMENT_ACTIONS),
        Binding("space", "mark", "Mark",
                tooltip=f"mark the owed session for a bulk credit ({CREDIT_KEY}) or resend ({RESEND_KEY})"),
        Binding("asterisk", "mark_all", "Mark all", key_display="*",
                tooltip=f"mark every owed session shown (again: unmark): credit all shown with {CREDIT_KEY}"),
        Binding("p", "period", "Period", tooltip="the period read: 24h, 7d, 30d (cycles)"),
        Binding("c", "tab('reconcile')", "Reconcile", show=False),
        Binding("d", "tab('deliveries')", "Deliveries", show=False),
        Binding("e", "tab('endpoints')", "Endpoints", show=False),
    ]  # fmt: skip

    def on_resize(self, event) -> None:
        # The owed sessions and the selected one's detail side by side when both fit.
        self.set_class(event.size.width < 110, "-narrow")

    def compose(self) -> ComposeResult:
        yield ShellHeader(self.AREA)
        yield ClaimsBar()
        yield Static("…", id="payments-status")
        yield ActionProgress(id="progress")
        with TabbedContent(initial="reconcile"):
            with TabPane("c Reconcile", id="reconcile"):
                yield Static("", id="owed-about", classes="about")
                with Horizontal(id="reconcile-body"):
                    with Panel(title="Paid, not credited", id="owed-panel"):
                        yield LiveTable(OWED_COLUMNS, id="owed-table")
                    with Panel(title="Session", id="session-panel"), VerticalScroll(id="session-scroll"):
                        yield Static("", id="session")
            with TabPane("d Deliveries", id="deliveries"):
                yield Static("", id="deliveries-about", classes="about")
                with Panel(title="Checkout events", id="deliveries-panel"):
                    yield LiveTable(DELIVERY_COLUMNS, id="deliveries-table")
            with TabPane("e Endpoints", id="endpoints"):
                yield Static("", id="endpoints-about", classes="about")
                with Panel(title="Webhook endpoints", id="endpoints-panel"):
                    yield LiveTable(ENDPOINT_COLUMNS, id="endpoints-table")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.period = next(iter(PERIODS))
        self.view: PaymentsView | None = None
        self.error: ServiceError | None = None
        self.owed: dict[str, Owed] = {}  # session id -> the owed session shown
        self.marked: set[str] = set()  # session ids
        self.configured = self.shell.services.reconcile.configured
        self._poller = None
        if self.configured:
            interval = max(POLL_SECONDS, self.shell.context.refresh(self.AREA))
            self._poller = self.poll(
                "payments", self._fetch, self._show, interval=interval, on_error=self._failed
            )
        self.poll_claims()
        self.set_interval(1.0, self._show_age)
        self._show_status()
        self._show_abouts()

    # -- data ---------------------------------------------------------------------------

    async def _fetch(self) -> PaymentsView:
        reconcile = self.shell.services.reconcile
        period = self.period  # read once: the answer says which period it is for
        endpoints, deliveries = await asyncio.gather(reconcile.endpoints(), reconcile.deliveries(period))
        return PaymentsView(endpoints, deliveries, await reconcile.reconciliation(period, deliveries))

    def _show(self, view: PaymentsView) -> None:
        self.view, self.error = view, None
        self._draw_owed()
        now = view.deliveries.now
        events = sorted(view.deliveries.events, key=lambda d: d.created, reverse=True)
        deliveries = self.query_one("#deliveries-table", LiveTable)
        deliveries.sync_in_order({d.event_id: delivery_row(d, now) for d in events})
        endpoints = self.query_one("#endpoints-table", LiveTable)
        endpoints.sync_in_order({e.id: endpoint_row(e) for e in view.endpoints})
        self._show_status()
        self._show_abouts()
        self._show_age()
        self.app.post_message(DataShown())

    def _failed(self, error: ServiceError) -> None:
        self.error = error
        self._show_status()
        self._show_abouts()

    def _draw_owed(self) -> None:
        if self.view is None:
            return
        owed = self.view.reconciliation.owed
        self.owed = {o.session.id: o for o in owed}
        self.marked &= set(self.owed)
        table = self.query_one("#owed-table", LiveTable)
        table.sync_in_order({o.session.id: owed_row(o, marked=o.session.id in self.marked) for o in owed})
        self._show_session()

    def _selected(self) -> Owed | None:
        key = self.query_one("#owed-table", LiveTable).selected_key
        return self.owed.get(key) if key else None

    def _can(self, action: Action) -> bool:
        return role_rank(self.shell.context.role) >= role_rank(action.role)

    def _show_session(self) -> None:
        owed = self._selected()
        shown = self.query_one("#session", Static)
        if owed is None:
            shown.update(fill("[dim]{}[/]", "select an owed session" if self.owed else "nothing owed"))
            return
        shown.update(grid(owed_rows(owed, can_credit=self._can(CREDIT))))

    def _show_status(self) -> None:
        shown = self.query_one("#payments-status", Static)
        if not self.configured:
            shown.update(failing_text(NOT_CONFIGURED, None, not_configured=True))
        elif self.error is not None:
            age = self._poller.freshness().age if self._poller is not None else None
            text = failing_text(str(self.error), age)
            if self.view is not None:  # what was read last stays above the tables it describes
                v = self.view
                text = status_text(v.deliveries, v.reconciliation, v.endpoints, self.period) + "\n" + text
            shown.update(text)
        elif self.view is not None:
            v = self.view
            shown.update(status_text(v.deliveries, v.reconciliation, v.endpoints, self.period))
        else:
            shown.update(fill("[dim]reading Stripe ({})…[/]", self.period))

    def _show_abouts(self) -> None:
        """Each tab's line above its table: what it holds, or why there is nothing (the owed
        list says what it holds in its title)."""
        owed_about = self.query_one("#owed-about", Static)
        owed_about.set_class(self.view is None, "-shown")
        ids = ("#deliveries-about", "#endpoints-about")
        if self.view is None:
            if not self.configured:
                said = fill("[yellow]{}[/]: no payments to show", NOT_CONFIGURED)
            elif self.error is not None:
                said = fill("[bold red]nothing read yet: {}[/]", str(self.error), limit=300)
            else:
                said = fill("[dim]reading Stripe…[/]")
            for shown in (owed_about, *(self.query_one(i, Static) for i in ids)):
                shown.update(said)
            return
        v = self.view
        self.query_one("#owed-panel", Panel).border_title = owed_title(v.reconciliation, len(self.marked))
        self.query_one("#deliveries-about", Static).update(deliveries_about(v.deliveries))
        self.query_one("#endpoints-about", Static).update(endpoints_about(v.endpoints))

    def _show_age(self) -> None:
        if self._poller is None:
            return
        freshness = self._poller.freshness()
        for panel in self.query(Panel):
            panel.show_freshness(freshness)
        if self.error is not None:
            self._show_status()  # the age of what is shown moves on

    @on(LiveTable.Highlighted, "#owed-table")
    def _highlighted(self, _event) -> None:
        self._show_session()

    # -- period, tabs, marks ------------------------------------------------------------

    def action_period(self) -> None:
        names = list(PERIODS)
        self.period = names[(names.index(self.period) + 1) % len(names)]
        self._show_status()
        if self._poller is not None:
            self.tell(f"reading the last {self.period} from Stripe…", timeout=2)
            self._poller.trigger()

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self.query_one(TABLES[tab], LiveTable).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("mark", "mark_all"):
            return self.active_tab() in (None, "reconcile")
        return super().check_action(action, parameters)

    def shows(self, action: Action) -> bool:
        """Credit where the owed sessions are, to a role that may; resend there and on an event."""
        if not self._can(action):
            return False  # support sees `>` only: a credit needs on-call
        tab = self.active_tab()
        return tab in (None, "reconcile") or (tab == "deliveries" and action.target_kind == "event")

    def action_mark(self) -> None:
        owed = self._selected()
        if owed is None:
            return
        self.marked ^= {owed.session.id}
        self._draw_owed()
        self._show_abouts()
        self.query_one("#owed-table", LiveTable).action_cursor(1)

    def action_mark_all(self) -> None:
        if not self.owed:
            self.tell("nothing owed to mark", timeout=2)
            return
        if self.marked >= set(self.owed):
            self.marked.clear()
            self.tell("every mark cleared", timeout=2)
        else:
            self.marked = set(self.owed)
            credits = sum(o.session.credits for o in self.owed.values())
            said = (
                f"{len(self.marked):,} sessions marked ({credits:,} credits): {CREDIT_KEY} credits them all"
            )
            self.tell(said + ", one confirmation; * or Esc unmarks", timeout=5)
        self._draw_owed()
        self._show_abouts()

    def key_escape(self) -> None:
        if self.marked:
            self.marked.clear()
            self._draw_owed()
            self._show_abouts()

    # -- actions ------------------------------------------------------------------------

    def selection(self, action: Action) -> tuple[str, dict[str, str]] | None:
        tab = self.active_tab() or "reconcile"
        if tab == "deliveries":
            return self._selected_event()
        owed = self._selected()
        if owed is None:
            self.tell("select an owed session first" if self.owed else "nothing is owed", severity="warning",
                      timeout=3)  # fmt: skip
            return None
        if action.target_kind != "event":
            return owed.session.id, {}
        if owed.resendable:
            return owed.undelivered or "", {}
        self.tell(self._not_resendable(owed), severity="warning", title="Nothing to resend", timeout=6)
        return None

    def _selected_event(self) -> tuple[str, dict[str, str]] | None:
        key = self.query_one("#deliveries-table", LiveTable).selected_key
        event = (
            next((d for d in self.view.deliveries.events if d.event_id == key), None) if self.view else None
        )
        if event is None:
            self.tell("select an event first", severity="warning", timeout=3)
            return None
        if event.delivered:
            self.tell(f"{event.event_id} was delivered: nothing to resend", severity="warning", timeout=4)
            return None
        return event.event_id, {}

    @staticmethod
    def _not_resendable(owed: Owed) -> str:
        who = owed.email or owed.session.user_id or owed.session.id
        if owed.undelivered is not None:
            return (f"{who}: its event {owed.undelivered} is {owed.age.days} days old, past Stripe's "
                    f"30 days: it cannot be resent; credit it with {CREDIT_KEY}")  # fmt: skip
        if owed.events:
            return (
                f"{who}: delivered, yet not credited (a resend would not help): credit it with {CREDIT_KEY}"
            )
        return f"{who}: no checkout event of its session in the period: credit it with {CREDIT_KEY}"

    def marked_keys(self) -> list[str]:
        if self.active_tab() not in (None, "reconcile"):
            return []
        return [k for k in self.owed if k in self.marked]  # in the list's order

    def action_act(self, name: str) -> None:
        action = self.find_action(name)
        marked = self.marked_keys()
        if not marked or action.target_kind != "event":
            super().action_act(name)
            return
        # A resend of the marked rows: each one's undelivered event, one confirmation.
        owed = [self.owed[k] for k in marked]
        events = [o.undelivered for o in owed if o.resendable and o.undelivered]
        skipped = len(owed) - len(events)
        if not events:
            said = (
                f"none of the {len(owed)} marked has an event Stripe can resend: credit them ({CREDIT_KEY})"
            )
            self.tell(said, severity="warning", title="Nothing to resend", timeout=6)
            return
        if skipped:
            said = f"{skipped} marked left out: no event Stripe can resend (credit them with {CREDIT_KEY})"
            self.tell(said, severity="warning", timeout=6)
        self.run_worker(self.run_bulk(action, events), group="action", exit_on_error=False)

    async def run_bulk(self, action: Action, keys: list[str]) -> dict[str, Outcome]:
        outcomes = await super().run_bulk(action, keys)
        done = {k for k, o in outcomes.items() if o.status == "ok"}
        sessions = {o.session.id for o in self.owed.values() if o.session.id in done or o.undelivered in done}
        self.marked -= sessions  # a failed one stays marked, to try again
        self._draw_owed()
        self._show_abouts()
        return outcomes

    def on_area_screen_action_progressed(self, message: AreaScreen.ActionProgressed) -> None:
        self.query_one(ActionProgress).show(message.action.name, message.action.title, message.line)

    def on_area_screen_action_ended(self, message: AreaScreen.ActionEnded) -> None:
        self.query_one(ActionProgress).end(message.action.name)
