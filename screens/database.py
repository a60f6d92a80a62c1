"""The Database area (the runbooks' "If Database is Slow", pg_activity's view): every client
session refreshed each second while shown, with filters and the full query of the selected
one; the lock tree and the xmin horizon; table and index health with connections used; the
slowest statements; cancel and terminate a session, maintenance with its progress."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Input, Static, TabbedContent, TabPane

from screens.base import AreaScreen, DataShown
from screens.database_render import (
    ACTIVITY_COLUMNS,
    DATABASE_KEY,
    INDEX_COLUMNS,
    LIVE_COLUMNS,
    LOCK_COLUMNS,
    STATEMENT_COLUMNS,
    TABLE_COLUMNS,
    activity_row,
    database_row,
    filters_line,
    horizon_text,
    index_row,
    live_row,
    lock_rows,
    locks_summary,
    query_pane,
    slow_text,
    statement_rows,
    status_text,
    table_row,
    unused_text,
)
from screens.live_table import LiveTable
from screens.widgets import ActionProgress, ClaimsBar, Panel, ShellHeader
from services.db_actions import DB_ACTIONS, DB_MAINTENANCE, TERMINATE_SESSION
from services.dbcare_model import STATES, Filters, Health, Locks, Session, Slow, horizon_of
from services.runbook import Action, Outcome

# Each tab polls only while it is shown: (poller, seconds between polls).
TAB_POLLS = {"activity": ("activity", 1.0), "locks": ("locks", 2.0), "tables": ("health", 30.0),
             "slow": ("slow", 10.0)}  # fmt: skip
SESSION_TABS = ("activity", "locks")


class DatabaseScreen(AreaScreen):
    AREA = "database"
    AUTO_FOCUS = "#activity-table"

    DEFAULT_CSS = """
    DatabaseScreen #db-status { height: auto; padding: 0 1; }
    DatabaseScreen TabbedContent { height: 1fr; }
    DatabaseScreen TabPane { padding: 0; }
    DatabaseScreen #filters, DatabaseScreen #locks-summary, DatabaseScreen #horizon,
    DatabaseScreen #connections, DatabaseScreen #unused { height: auto; padding: 0 1; }
    DatabaseScreen #find { display: none; }
    DatabaseScreen #find.-shown { display: block; }
    DatabaseScreen Panel { height: 1fr; }
    DatabaseScreen #query-panel { height: 8; max-height: 30%; }
    DatabaseScreen #indexes-panel { height: 9; max-height: 40%; }
    DatabaseScreen #slow-about { height: auto; max-height: 8; padding: 0 1; }
    DatabaseScreen LiveTable { height: 1fr; }
    DatabaseScreen #query-scroll { height: 1fr; }
    """
    ACTIONS = DB_ACTIONS
    BINDINGS = [
        *AreaScreen.action_bindings(DB_ACTIONS),
        Binding("a", "tab('activity')", "Activity", show=False),
        Binding("l", "tab('locks')", "Locks", show=False),
        Binding("t", "tab('tables')", "Tables", show=False),
        Binding("s", "tab('slow')", "Slow", show=False),
        Binding("space", "mark", "Mark", tooltip="mark the session for a bulk cancel (J)"),
        Binding("f", "cycle_state", "State", tooltip="show only sessions in a state (cycles)"),
        Binding(
            "slash", "find", "Find", key_display="/", tooltip="only sessions whose query, user… has a text"
        ),
        Binding("m", "min_seconds", "Min time", show=False, tooltip="only sessions at it at least this long"),
        Binding("d", "pick_database", "Database", show=False, tooltip="only one database's sessions"),
        Binding("c", "clear_filters", "Clear filters", show=False),
        Binding(
            "p",
            "toggle_replica",
            "Replica",
            show=False,
            tooltip="the read replica's sessions, or the primary's",
        ),
        Binding("x", "stop", "Stop", tooltip="stop the running maintenance (cancels its backend)"),
        Binding("o", "outage", "Outage runbook", show=False, tooltip="the manual's Database Outage runbook"),
    ]

    def compose(self) -> ComposeResult:
        yield ShellHeader(self.AREA)
        yield Static("…", id="db-status")
        yield ClaimsBar()
        yield ActionProgress(note="x stops it (cancels its backend)", id="progress")
        with TabbedContent(initial="activity"):
            with TabPane("a Activity", id="activity"):
                yield Static("", id="filters")
                yield Input(placeholder="text in the query, user, application or client — Enter", id="find")
                with Panel(title="Client sessions, longest first", id="activity-panel"):
                    yield LiveTable(ACTIVITY_COLUMNS, id="activity-table")
                with Panel(title="Query", id="query-panel"), VerticalScroll(id="query-scroll"):
                    yield Static(query_pane(None), id="query")
            with TabPane("l Locks", id="locks"):
                yield Static("", id="locks-summary")
                with Panel(title="Lock tree: who blocks whom", id="locks-panel"):
                    yield LiveTable(LOCK_COLUMNS, id="locks-table")
                yield Static("", id="horizon")
            with TabPane("t Tables", id="tables"):
                yield Static("", id="connections")
                with Panel(title="Tables of every schema, largest first", id="tables-panel"):
                    yield LiveTable(TABLE_COLUMNS, id="tables-table")
                with Panel(title="Indexes of the selected table", id="indexes-panel"):
                    yield LiveTable(INDEX_COLUMNS, id="indexes-table")
                yield Static("", id="unused")
            with TabPane("s Slow", id="slow"):
                yield Static("", id="slow-about")
                with Panel(title="Statements", id="slow-panel"):
                    yield LiveTable(STATEMENT_COLUMNS, id="slow-table")
                    yield LiveTable(LIVE_COLUMNS, id="live-table")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        care = self.shell.services.dbcare
        self.filters = Filters()
        self.on_replica = False
        self.sessions: list[Session] = []
        self.shown_sessions: dict[int, Session] = {}
        self.marked: set[int] = set()
        self.locks: Locks | None = None
        self.health: Health | None = None
        self.slow: Slow | None = None
        self._status: tuple = (None, None)
        self._polls = {
            "activity": self.poll("activity", self._fetch_activity, self._show_activity, interval=1.0),
            "locks": self.poll("locks", care.locks, self._show_locks, interval=2.0),
            "health": self.poll("health", care.health, self._show_health, interval=30.0),
            "slow": self.poll("slow", care.slow, self._show_slow, interval=10.0),
        }
        self.poll("status", self._fetch_status, self._show_status, interval=5.0)
        self._follow_tab()
        self.poll_claims()
        self.set_interval(1.0, self._show_age)
        self._show_filters()

    # -- polling by tab -----------------------------------------------------------------

    def _follow_tab(self) -> None:
        """Only the shown tab's data is polled (activity every second, as pg_activity does)."""
        tab = self.active_tab() or "activity"
        for name, (poll, _seconds) in TAB_POLLS.items():
            poller = self._polls[poll]
            if name == tab and self.is_current:
                poller.resume()
            else:
                poller.pause()

    def on_tabbed_content_tab_activated(self, event) -> None:
        super().on_tabbed_content_tab_activated(event)
        self._follow_tab()

    def on_screen_resume(self, event) -> None:
        super().on_screen_resume(event)
        self._follow_tab()

    async def _fetch_status(self):
        care = self.shell.services.dbcare
        return await care.connections(), await care.replication()

    def _show_status(self, result) -> None:
        self._status = result
        where = self.shell.services.postgres.where
        if self.on_replica:
            where = f"replica {self.shell.services.dbcare.replica_where}"
        self.query_one("#db-status", Static).update(status_text(where, *result))

    # -- activity -------------------------------------------------------------------------

    async def _fetch_activity(self) -> list[Session]:
        return await self.shell.services.dbcare.activity(replica=self.on_replica)

    def _show_activity(self, sessions: list[Session]) -> None:
        self.sessions = sessions
        self._draw_activity()
        self.app.post_message(DataShown())

    def _draw_activity(self) -> None:
        table = self.query_one("#activity-table", LiveTable)
        shown = [s for s in self.sessions if self.filters.keep(s)]
        self.shown_sessions = {s.pid: s for s in shown}
        self.marked &= set(self.shown_sessions)
        horizon = horizon_of(self.sessions)
        rows = {str(s.pid): activity_row(s, marked=s.pid in self.marked, horizon=horizon and horizon.pid)
                for s in shown}  # fmt: skip
        table.sync_in_order(rows)
        self._show_filters()
        self._show_query()

    def _show_filters(self) -> None:
        where = "the replica" if self.on_replica else "the primary"
        line = filters_line(self.filters, len(self.shown_sessions), len(self.sessions), where)
        self.query_one("#filters", Static).update(line)

    def _selected_session(self) -> Session | None:
        key = self.query_one("#activity-table", LiveTable).selected_key
        return self.shown_sessions.get(int(key)) if key else None

    def _show_query(self) -> None:
        s = self._selected_session()
        blocks = [o.pid for o in self.sessions if s is not None and s.pid in o.blocked_by]
        note = f"blocks {', '.join(map(str, blocks))}" if blocks else ""
        self.query_one("#query", Static).update(query_pane(s, note))

    @on(LiveTable.Highlighted, "#activity-table")
    def _session_highlighted(self, _event) -> None:
        self._show_query()

    @on(LiveTable.Highlighted, "#tables-table")
    def _table_highlighted(self, _event) -> None:
        self._show_indexes()

    def _set_filters(self, **changes) -> None:
        from dataclasses import replace

        self.filters = replace(self.filters, **changes)
        self._draw_activity()

    def action_cycle_state(self) -> None:
        self._set_filters(state=STATES[(STATES.index(self.filters.state) + 1) % len(STATES)])

    def action_find(self) -> None:
        self.action_tab("activity")
        box = self.query_one("#find", Input)
        box.add_class("-shown")
        box.value = self.filters.text
        box.focus()

    @on(Input.Submitted, "#find")
    def _found(self, event: Input.Submitted) -> None:
        event.input.remove_class("-shown")
        self._set_filters(text=event.value.strip())
        self.query_one("#activity-table", LiveTable).focus()

    def key_escape(self) -> None:
        box = self.query_one("#find", Input)
        if box.has_class("-shown"):
            box.remove_class("-shown")
            self.query_one("#activity-table", LiveTable).focus()

    @work(group="ask", exclusive=True, exit_on_error=False)
    async def action_min_seconds(self) -> None:
        def seconds(text: str) -> float:
            value = float(text.strip() or 0)
            if value < 0:
                raise ValueError("a duration of 0 seconds or more")
            return value

        now = f"{self.filters.min_seconds:g}"
        answer = await self.ask_value("Only sessions at it at least (seconds)", now, seconds)
        if answer is not None:
            self._set_filters(min_seconds=answer)

    @work(group="ask", exclusive=True, exit_on_error=False)
    async def action_pick_database(self) -> None:
        from screens.action_modal import ChooseScreen

        names = ["(all)", *sorted({s.database for s in self.sessions if s.database})]
        answer = await self.app.push_screen_wait(ChooseScreen("Only the sessions of database", names))
        if answer is not None:
            self._set_filters(database="" if answer == "(all)" else answer)

    def action_clear_filters(self) -> None:
        self._set_filters(state="", min_seconds=0.0, database="", text="")

    def action_toggle_replica(self) -> None:
        self.on_replica = not self.on_replica
        self.marked.clear()
        self.sessions = []
        self.query_one("#activity-table", LiveTable).clear()
        self._polls["activity"].trigger()
        self.tell(f"sessions of the {'replica' if self.on_replica else 'primary'}", timeout=2)

    def action_mark(self) -> None:
        s = self._selected_session()
        if s is None:
            return
        if not s.cancellable:
            self.tell(f"pid {s.pid} has no query to cancel ({s.state})", severity="warning", timeout=3)
            return
        self.marked ^= {s.pid}
        self._draw_activity()
        self.query_one("#activity-table", LiveTable).action_cursor(1)

    # -- locks, tables, slow --------------------------------------------------------------

    def _show_locks(self, locks: Locks) -> None:
        self.locks = locks
        self.query_one("#locks-table", LiveTable).sync(lock_rows(locks))
        self.query_one("#locks-summary", Static).update(locks_summary(locks))
        self.query_one("#horizon", Static).update(horizon_text(locks.horizon, locks.sessions))

    def _show_health(self, health: Health) -> None:
        self.health = health
        rows = {DATABASE_KEY: database_row(health.connections, health.tables)}
        rows.update({t.qualified: table_row(t) for t in health.tables})
        self.query_one("#tables-table", LiveTable).sync_in_order(rows)
        self.query_one("#unused", Static).update(unused_text(health.indexes))
        from screens.database_render import connections_text

        self.query_one("#connections", Static).update(connections_text(health.connections))
        self._show_indexes()

    def _show_indexes(self) -> None:
        if self.health is None:
            return
        key = self.query_one("#tables-table", LiveTable).selected_key
        table = next((t for t in self.health.tables if t.qualified == key), None)
        indexes = self.health.indexes if table is None else self.health.indexes_of(table)
        self.query_one("#indexes-table", LiveTable).sync(
            {f"{i.schema}.{i.name}": index_row(i) for i in indexes}
        )
        title = "Every index" if table is None else f"Indexes of {table.qualified}"
        self.query_one("#indexes-panel", Panel).border_title = title

    def _show_slow(self, slow: Slow) -> None:
        self.slow = slow
        self.query_one("#slow-about", Static).update(slow_text(slow))
        statements = self.query_one("#slow-table", LiveTable)
        live = self.query_one("#live-table", LiveTable)
        statements.display, live.display = slow.available, not slow.available
        statements.sync_in_order(statement_rows(slow.statements))
        live.sync({str(s.pid): live_row(s) for s in slow.long_running})

    def _show_age(self) -> None:
        for panel_id, poll in (("#activity-panel", "activity"), ("#query-panel", "activity"),
                               ("#locks-panel", "locks"), ("#tables-panel", "health"),
                               ("#indexes-panel", "health"), ("#slow-panel", "slow")):  # fmt: skip
            self.query_one(panel_id, Panel).show_freshness(self._polls[poll].freshness())

    # -- navigation -----------------------------------------------------------------------

    TAB_TABLES = {"activity": "#activity-table", "locks": "#locks-table", "tables": "#tables-table",
                  "slow": "#slow-table"}  # fmt: skip

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self.query_one(self.TAB_TABLES[tab], LiveTable).focus()

    def shows(self, action: Action) -> bool:
        tab = self.active_tab()
        if tab is None:
            return True
        return tab in SESSION_TABS if action.target_kind == "session" else tab == "tables"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        tab = self.active_tab()
        if action in ("mark", "cycle_state", "find", "min_seconds", "pick_database", "clear_filters"):
            return tab in (None, "activity")
        if action == "toggle_replica":
            return self.shell.services.dbcare.has_replica and tab in (None, "activity")
        if action == "stop":
            return bool(self.query(ActionProgress)) and self.query_one(ActionProgress).running
        if action == "outage":
            return not self.shell.context.read_only
        return super().check_action(action, parameters)

    # -- actions --------------------------------------------------------------------------

    def selection(self, action: Action) -> tuple[str, dict[str, str]] | None:
        tab = self.active_tab() or "activity"
        if action.target_kind == "session":
            if tab == "locks":
                key = self.query_one("#locks-table", LiveTable).selected_key
                pid = key.rpartition("/")[2] if key else None
            else:
                s = self._selected_session()
                pid = str(s.pid) if s is not None else None
            if pid is None:
                self.tell("select a session first", severity="warning", timeout=3)
                return None
            return pid, {}
        indexes = self.query_one("#indexes-table", LiveTable)
        if indexes.has_focus and indexes.selected_key:
            return indexes.selected_key, {}
        key = self.query_one("#tables-table", LiveTable).selected_key
        if key is None:
            self.action_tab("tables")
            self.tell("select a table (or the database, first row) first", severity="warning", timeout=3)
            return None
        return ("" if key == DATABASE_KEY else key), {}

    def marked_keys(self) -> list[str]:
        return [str(pid) for pid in sorted(self.marked)]

    def action_act(self, name: str) -> None:
        # Only cancel goes to the marked sessions at once; terminate (typed) and maintenance
        # act on the one selected.
        if name != "cancel_query" or self.active_tab() not in (None, "activity"):
            action = self.find_action(name)
            chosen = self.selection(action)
            if chosen is not None:
                self.run_worker(self.run_action(action, *chosen), group="action", exit_on_error=False)
            return
        super().action_act(name)

    async def run_bulk(self, action: Action, keys: list[str]) -> dict[str, Outcome]:
        try:
            return await super().run_bulk(action, keys)
        finally:
            self.marked.clear()
            self._draw_activity()

    async def after_action(self, action: Action, outcome: Outcome) -> None:
        """A cancel that did not end the query offers terminate (typed, it closes the session)."""
        from screens.confirm import ConfirmScreen

        if action.name != "cancel_query" or not outcome.detail.get("still_running"):
            return
        question = (f"[b]pid {outcome.target} still runs its query[/b] after the cancel.\n"
                    "Terminate the session? It closes the session, not just the query.")  # fmt: skip
        if await self.app.push_screen_wait(ConfirmScreen(question)):
            await self.run_action(TERMINATE_SESSION, outcome.target)

    def on_area_screen_action_progressed(self, message: AreaScreen.ActionProgressed) -> None:
        if message.action.name == DB_MAINTENANCE.name:  # only maintenance can be stopped with x
            self.query_one(ActionProgress).show(message.action.name, message.action.title, message.line)
            self.refresh_bindings()

    def on_area_screen_action_ended(self, message: AreaScreen.ActionEnded) -> None:
        self.query_one(ActionProgress).end(message.action.name)
        self.refresh_bindings()

    def action_outage(self) -> None:
        from screens.db_outage import OutageScreen

        self.app.push_screen(OutageScreen(self))

    def action_stop(self) -> None:
        progress = self.query_one(ActionProgress)
        if not progress.running:
            return
        self.workers.cancel_group(self, "action")
        progress.end()
        self.refresh_bindings()
        self.tell("maintenance stopped: its backend was cancelled", severity="warning")
        for poller in self._pollers:
            poller.trigger()
