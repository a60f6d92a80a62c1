"""The nodes area: game-node capacity and the headroom forecast (Postgres), the cluster,
the bot's pods and deployments with its health endpoints, and Agones fleets (Kubernetes,
live by watch), with the node and scaling runbook actions and a pod log view."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Log, Static, TabbedContent, TabPane

from screens.action_modal import ChooseScreen
from screens.base import AreaScreen, DataShown
from screens.live_table import LiveTable
from screens.nodes_render import (
    AUTOSCALER_COLUMNS,
    CAPACITY_COLUMNS,
    CLUSTER_COLUMNS,
    DEPLOYMENT_COLUMNS,
    FLEET_COLUMNS,
    FORECAST_COLUMNS,
    GAMESERVER_COLUMNS,
    HPA_COLUMNS,
    KIND_ROWS,
    PANEL_KINDS,
    POD_COLUMNS,
    bot_line,
    capacity_row,
    fleet_row,
    forecast_rows,
    node_load_row,
)
from screens.shown import fill, plain
from screens.widgets import ClaimsBar, Panel, ShellHeader
from services import kube_model as km
from services.errors import NotConfigured, ServiceError
from services.health import BotEndpoint
from services.kube_actions import KUBE_ACTIONS
from services.kube_watch import KubeWatch
from services.node_actions import NODE_ACTIONS
from services.nodes import Capacity
from services.polling import Freshness
from services.runbook import Action, Outcome
from services.text import inert

AGE_TICK = 5.0  # seconds between redraws of the pods' ages


class NodesScreen(AreaScreen):
    AREA = "nodes"
    AUTO_FOCUS = "#capacity-table"

    DEFAULT_CSS = """
    NodesScreen #where { height: 1; color: $text-muted; padding: 0 1; }
    NodesScreen TabbedContent { height: 1fr; }
    NodesScreen TabPane { padding: 0; }
    NodesScreen Panel { height: 1fr; }
    NodesScreen LiveTable { height: auto; max-height: 100%; }
    NodesScreen #capacity-panel { height: auto; max-height: 75%; }
    NodesScreen #capacity-summary { height: auto; color: $text-muted; }
    NodesScreen #forecast-filter { display: none; }
    NodesScreen #forecast-filter.-shown { display: block; }
    NodesScreen #cluster-panel { height: auto; max-height: 45%; }
    NodesScreen #bot-health { height: auto; margin: 0 0 1 0; }
    NodesScreen #deployments-table, NodesScreen #hpa-table { max-height: 12; }
    NodesScreen #fleets-table, NodesScreen #autoscalers-table { max-height: 6; margin: 0 0 1 0; }
    NodesScreen #gameservers-table { height: 1fr; }
    """
    ACTIONS = (*NODE_ACTIONS, *KUBE_ACTIONS)
    BINDINGS = [
        *AreaScreen.action_bindings((*NODE_ACTIONS, *KUBE_ACTIONS)),
        Binding("c", "tab('capacity')", "Capacity", show=False),
        Binding("k", "tab('cluster')", "Cluster", show=False),
        Binding("p", "tab('pods')", "Pods", show=False),
        Binding("g", "tab('agones')", "Agones", show=False),
        Binding("slash", "filter_forecast", "Filter plans", key_display="/", show=False),
        Binding("x", "switch_context", "Context"),
        Binding("n", "switch_namespace", "Namespace"),
        Binding("l", "logs", "Logs", tooltip="the selected pod's last 100 lines, then follow"),
    ]

    def compose(self) -> ComposeResult:
        yield ShellHeader(self.AREA)
        yield Static("", id="where")
        yield ClaimsBar()
        with TabbedContent(initial="capacity"):
            with TabPane("c Capacity", id="capacity"):
                with Panel(title="Game nodes (new orders are placed on enabled nodes)", id="capacity-panel"):
                    yield LiveTable(CAPACITY_COLUMNS, id="capacity-table")
                    yield Static("", id="capacity-summary")
                with Panel(title="Headroom forecast: more servers that fit, per plan", id="forecast-panel"):
                    yield Input(placeholder="game or plan (e.g. rust) — Enter filters, empty shows all",
                                id="forecast-filter")  # fmt: skip
                    yield LiveTable(FORECAST_COLUMNS, id="forecast-table")
            with TabPane("k Cluster", id="cluster"):
                with Panel(title="Cluster nodes: requested / allocatable", id="cluster-panel"):
                    yield LiveTable(CLUSTER_COLUMNS, id="cluster-table")
                with Panel(title="Deployments and autoscalers", id="workloads-panel"):
                    yield LiveTable(DEPLOYMENT_COLUMNS, id="deployments-table")
                    yield Static("", id="bot-health")
                    yield LiveTable(HPA_COLUMNS, id="hpa-table")
            with TabPane("p Pods", id="pods"), Panel(title="Pods", id="pods-panel"):
                yield LiveTable(POD_COLUMNS, id="pods-table")
            with TabPane("g Agones", id="agones"), Panel(title="Agones fleets", id="fleets-panel"):
                yield LiveTable(FLEET_COLUMNS, id="fleets-table")
                yield LiveTable(AUTOSCALER_COLUMNS, id="autoscalers-table")
                yield LiveTable(GAMESERVER_COLUMNS, id="gameservers-table")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        services = self.shell.services
        self.capacity: Capacity | None = None
        self.forecast_filter = ""
        self.watch: KubeWatch | None = None
        self.kube_error: str | None = None
        self._pending: dict[str, set[str] | None] = {}
        self._watch_paused = False
        self.context, self.namespace = self._initial_where()
        self._capacity = self.poll("capacity", services.nodes.capacity, self._show_capacity)
        if services.bot.configured:
            self.poll("bot", services.bot.endpoints, self._show_bot)
        else:
            self.query_one("#bot-health", Static).update(
                "[dim]bot health: not configured (OPSCONSOLE_BOT_URL)[/]"
            )
        self._start_watch()
        self.set_interval(0.25, self._flush)
        self.set_interval(AGE_TICK, self._tick_ages)
        self.poll_claims()
        self.set_interval(1.0, self._show_age)

    # -- capacity -----------------------------------------------------------------------

    def _show_capacity(self, capacity: Capacity) -> None:
        self.capacity = capacity
        table = self.query_one("#capacity-table", LiveTable)
        table.sync({n.name: capacity_row(n, capacity.level(n)) for n in capacity.nodes})
        self.query_one("#forecast-table", LiveTable).sync(forecast_rows(capacity, self.forecast_filter))
        enabled = [n for n in capacity.nodes if n.enabled]
        full = [n.name for n in enabled if capacity.level(n) == "critical"]
        hot = [n.name for n in enabled if capacity.level(n) == "warning"]
        lines = [
            Text(
                f"{len(enabled)} of {len(capacity.nodes)} nodes take new orders · "
                f"{capacity.available_ram_gb} GB free on them · "
                f"smallest plan {capacity.smallest_plan_gb or '?'} GB"
            )
        ]
        if full:  # node names come from the database: filled in as text
            lines.append(fill("[b red]full (not even the smallest plan fits): {}[/]", ", ".join(full)))
        if hot:
            lines.append(fill("[yellow]above 80%: {}[/]", ", ".join(hot)))
        self.query_one("#capacity-summary", Static).update(Text("\n").join(lines))
        self._show_age()
        self.app.post_message(DataShown())

    # -- kubernetes ---------------------------------------------------------------------

    def _initial_where(self) -> tuple[str | None, str]:
        kube = self.shell.services.kube
        return kube.where() if kube.configured else (None, "default")

    def _start_watch(self, *, fresh: bool = True) -> None:
        """Watch the current context and namespace; `fresh` empties the tables first (a
        switch), otherwise the last rows stay until the new list replaces them (a resume)."""
        kube = self.shell.services.kube
        if fresh:
            for table in self.query(LiveTable):
                if table.id not in ("capacity-table", "forecast-table"):
                    table.clear()
        where = self.query_one("#where", Static)
        if not kube.configured:
            self.kube_error = "Kubernetes is not configured: set KUBECONFIG"
            where.update(f"[dim]{self.kube_error}[/]")
            return
        where.update(
            fill(
                "context [b]{}[/] · namespace [b]{}[/]   [dim]x switch context · n namespace[/]",
                self.context or "?",
                self.namespace,
            )
        )
        previous = self.watch
        self.watch = KubeWatch(kube, self.context, self.namespace, self._changed)
        if previous is not None and not fresh:
            self.watch.rows = previous.rows
        self.run_worker(self._run_watch(self.watch), group="kube-watch", exclusive=True, exit_on_error=False)

    async def _run_watch(self, watch: KubeWatch) -> None:
        try:
            await watch.run()
        except NotConfigured as exc:
            self.kube_error = str(exc)
        except ServiceError as exc:  # the kubeconfig itself is unusable
            self.kube_error = inert(exc)
            self.notify(inert(exc), severity="error", title="Kubernetes", markup=False)

    def _changed(self, kind: str, keys: set[str] | None) -> None:
        """From the watch (same event loop): remember what to redraw at the next flush."""
        if keys is None:
            self._pending[kind] = None  # listed: redraw the whole kind
        elif kind not in self._pending:
            self._pending[kind] = set(keys)
        elif self._pending[kind] is not None:
            self._pending[kind] |= keys

    def _tick_ages(self) -> None:
        """Pod ages move on between watch events: redraw them while the pods are shown (the
        table redraws only the rows whose text changed)."""
        if self.watch is not None and self.is_current and self.query_one(TabbedContent).active == "pods":
            self._changed("pods", None)

    def _flush(self) -> None:
        """Redraw what changed since the last flush (at most four times a second), only
        while the screen is shown."""
        if not self._pending or self.watch is None or not self.is_current:
            return
        pending, self._pending = self._pending, {}
        rows = self.watch.rows
        for kind, keys in pending.items():
            if kind in KIND_ROWS:
                selector, row, order = KIND_ROWS[kind]
                self._apply(self.query_one(selector, LiveTable), rows[kind], keys, row, order)
        if {"fleets", "gameservers"} & pending.keys():
            states = km.fleet_states(rows["gameservers"])
            self._sync("#fleets-table", {k: fleet_row(f, dict(states.get(f.name, {})))
                                         for k, f in rows["fleets"].items()})  # fmt: skip
        if {"nodes", "pods"} & pending.keys():
            loads = km.node_loads(rows["nodes"], rows["pods"])
            self._sync("#cluster-table", {load.node.name: node_load_row(load) for load in loads})
        self._show_age()

    def _sync(self, selector: str, rows: dict[str, tuple]) -> None:
        self.query_one(selector, LiveTable).sync(rows)

    @staticmethod
    def _apply(table: LiveTable, items: dict[str, Any], keys: set[str] | None, row, order) -> None:
        """A kind's rows into its table: all of them after a list (sorted by `order`), else
        only the keys that changed (put, or dropped when gone)."""
        if keys is None:
            table.sync({k: row(v) for k, v in sorted(items.items(), key=order)})
            return
        for key in keys:
            value = items.get(key)
            if value is None:
                table.drop(key)
            else:
                table.put(key, row(value))

    def _show_bot(self, endpoints: list[BotEndpoint]) -> None:
        self.query_one("#bot-health", Static).update(bot_line(endpoints))

    def _show_age(self) -> None:
        capacity = self._capacity.freshness()
        self.query_one("#capacity-panel", Panel).show_freshness(capacity)
        self.query_one("#forecast-panel", Panel).show_freshness(capacity)
        for panel_id, kinds in PANEL_KINDS.items():
            panel = self.query_one(f"#{panel_id}", Panel)
            if self.watch is None:
                error = self.kube_error or "Kubernetes is not configured"
                panel.show_freshness(Freshness(None, True, error, 0, False))
            else:
                panel.show_freshness(self.watch.freshness(*kinds))

    def on_screen_suspend(self, event) -> None:
        super().on_screen_suspend(event)
        # Another area shown: stop watching (thousands of pods cost CPU nobody looks at).
        # A modal or the log view on top of this screen keeps it watching.
        if self not in self.app.screen_stack:
            self.workers.cancel_group(self, "kube-watch")
            self._watch_paused = True

    def on_screen_resume(self, event) -> None:
        super().on_screen_resume(event)
        if self.watch is not None and self._watch_paused:  # list again (what moved while hidden)
            self._watch_paused = False
            self._start_watch(fresh=False)

    # -- navigation ---------------------------------------------------------------------

    TAB_OF_KIND = {"node": "capacity", "deployment": "cluster", "fleet": "agones"}

    def shows(self, action: Action) -> bool:
        tab = self.active_tab()
        return tab is None or self.TAB_OF_KIND.get(action.target_kind) == tab

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        tab = self.active_tab()
        if tab is not None and action in ("switch_context", "switch_namespace"):
            return tab != "capacity"  # they change what the Kubernetes tabs watch
        if tab is not None and action == "logs":
            return tab == "pods"
        return super().check_action(action, parameters)

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        table_id = {"capacity": "#capacity-table", "cluster": "#deployments-table", "pods": "#pods-table",
                    "agones": "#fleets-table"}[tab]  # fmt: skip
        self.query_one(table_id, LiveTable).focus()

    def action_filter_forecast(self) -> None:
        self.action_tab("capacity")
        box = self.query_one("#forecast-filter", Input)
        box.add_class("-shown")
        box.focus()

    @on(Input.Submitted, "#forecast-filter")
    def _filtered(self, event: Input.Submitted) -> None:
        self.forecast_filter = event.value.strip()
        if self.capacity is not None:
            rows = forecast_rows(self.capacity, self.forecast_filter)
            self.query_one("#forecast-table", LiveTable).sync(rows)
            if not rows:
                self.notify(f"no plan matches {self.forecast_filter!r}", severity="warning")
        self.query_one("#forecast-table", LiveTable).focus()

    def key_escape(self) -> None:
        box = self.query_one("#forecast-filter", Input)
        if box.has_class("-shown"):
            box.remove_class("-shown")
            self.query_one("#forecast-table", LiveTable).focus()

    @work(exclusive=True, group="where", exit_on_error=False)
    async def action_switch_context(self) -> None:
        kube = self.shell.services.kube
        try:
            contexts, current = kube.contexts()
        except ServiceError as exc:
            self.notify(inert(exc), severity="error", title="Kubernetes", markup=False)
            return
        names = [c.name for c in contexts]
        answer = await self.app.push_screen_wait(
            ChooseScreen("Watch which kubeconfig context?", names, self.context or current)
        )
        if not answer or answer == self.context:
            return
        self.context = answer
        self.namespace = next(c.namespace for c in contexts if c.name == answer)
        self._start_watch()

    @work(exclusive=True, group="where", exit_on_error=False)
    async def action_switch_namespace(self) -> None:
        from services.kube_actions import parse_name

        answer = await self.ask_value("Namespace to watch", self.namespace, parse_name)
        if not answer or answer == self.namespace:
            return
        try:
            exists = await self.shell.services.kube.namespace_exists(answer, self.context)
        except ServiceError as exc:
            self.notify(inert(exc), severity="error", title="Kubernetes", markup=False)
            return
        if not exists:
            where = f"context {self.context or 'current'}"
            self.tell(
                f"there is no namespace {answer} in {where}: still watching {self.namespace}",
                severity="error",
            )
            return
        self.namespace = answer
        self._start_watch()

    # -- actions ------------------------------------------------------------------------

    def _selected(self, selector: str) -> str | None:
        return self.query_one(selector, LiveTable).selected_key

    def selection(self, action: Action) -> tuple[str, dict[str, str]] | None:
        selector, tab = {
            "node": ("#capacity-table", "capacity"),
            "deployment": ("#deployments-table", "cluster"),
            "fleet": ("#fleets-table", "agones"),
        }[action.target_kind]
        key = self._selected(selector)
        if key is None:
            self.action_tab(tab)
            self.notify(f"select a {action.target_kind} first", severity="warning")
            return None
        if action.target_kind == "node":
            return key, {}
        namespace, _, name = key.rpartition("/")
        given = {"namespace": namespace or self.namespace}
        if self.context:
            given["context"] = self.context
        return name, given

    async def after_action(self, action: Action, outcome: Outcome) -> None:
        if action.target_kind == "deployment":
            self._pending["deployments"] = None

    def action_logs(self) -> None:
        key = self._selected("#pods-table")
        if key is None or self.watch is None:
            self.action_tab("pods")
            self.notify("select a pod first", severity="warning")
            return
        namespace, _, name = key.rpartition("/")
        self.app.push_screen(PodLogScreen(namespace, name, self.context))


class PodLogScreen(Screen):
    """A pod's last 100 log lines, then new ones as they come, until closed."""

    DEFAULT_CSS = """
    PodLogScreen #log-title { height: 1; background: $panel; padding: 0 1; }
    PodLogScreen Log { height: 1fr; }
    """
    BINDINGS = [Binding("escape,q", "close", "Close"), Binding("f", "toggle_follow", "Follow on/off")]

    def __init__(self, namespace: str, pod: str, context: str | None):
        super().__init__()
        self.namespace = namespace
        self.pod = pod
        self.context = context
        self.following = True

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(fill("logs of pod {}/{} — connecting…", self.namespace, self.pod), id="log-title")
            yield Log(id="log", max_lines=5000)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._stream()

    def _title(self, state: str | Text) -> None:
        self.query_one("#log-title", Static).update(
            fill(
                "logs of pod [b]{}/{}[/] — {}   [dim]f follow · Esc closes[/]",
                self.namespace,
                self.pod,
                state,
            )
        )

    class Streamed(Message):
        """A log line, or (with `state`) how the stream stands; posted by the stream worker."""

        def __init__(self, line: str | None = None, state: str | Text | None = None) -> None:
            super().__init__()
            self.line = line
            self.state = state

    def on_pod_log_screen_streamed(self, message: Streamed) -> None:
        if message.line is not None:
            # A pod writes what it likes: shown inert (tabs laid out first, a stack trace
            # stays readable), never passed to the terminal.
            self.query_one(Log).write_line(inert(message.line.expandtabs(8)))
        if message.state is not None:
            self._title(message.state)

    @work(exclusive=True, group="logs", exit_on_error=False)
    async def _stream(self) -> None:
        kube = self.app.services.kube  # type: ignore[attr-defined]
        self.post_message(self.Streamed(state="last 100 lines, following"))
        try:
            async for line in kube.pod_log(self.namespace, self.pod, tail=100, follow=True,
                                           context=self.context):  # fmt: skip
                self.post_message(self.Streamed(line))
        except ServiceError as exc:
            self.post_message(self.Streamed(state=plain(exc, "red")))
            return
        self.post_message(self.Streamed(state="the log stream ended (the pod stopped or was replaced)"))

    def action_toggle_follow(self) -> None:
        log = self.query_one(Log)
        log.auto_scroll = not log.auto_scroll
        self.following = log.auto_scroll
        self._title("following" if self.following else "paused (f follows again)")

    def action_close(self) -> None:
        self.workers.cancel_group(self, "logs")
        self.dismiss()
