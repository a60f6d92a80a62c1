"""OpsConsole: the Textual app. It owns the areas (one mode each), the backend health
monitor behind the header badges, the ops_events listener, and the quit guard."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.message import Message

from screens.base import Area, DataShown, PollHub, ShellContext
from screens.confirm import ConfirmScreen
from screens.help import HelpScreen
from screens.palette import AreaCommands
from services.bundle import Services
from services.errors import ServiceError
from services.health import BackendStatus, Ping, Probe, backend_status
from services.polling import Poller
from services.postgres import OpsEvent

AREAS: tuple[Area, ...] = (
    Area(
        "overview", "Overview", "1", "screens.overview:OverviewScreen",
        "stuck and error orders, today's orders, recent actions",
    ),
    Area(
        "orders", "Orders", "2", "screens.orders:OrdersScreen",
        "stuck, failed and recent orders; retry, panel sync, cancel and refund",
    ),
    Area(
        "nodes", "Nodes", "3", "screens.nodes:NodesScreen",
        "game-node capacity and headroom forecast; cluster, pods, Agones fleets; scaling runbooks",
    ),
    Area(
        "incidents", "Incidents", "4", "screens.incidents:IncidentsScreen",
        "firing alerts, silences, the last hour's metrics; incidents with SLA clocks and timelines",
    ),
    Area(
        "backups", "Backups", "5", "screens.backups:BackupsScreen",
        "database backups in S3, the RPO, restore drills and their evidence; the server saves bucket",
    ),
    Area(
        "pricing", "Pricing", "6", "screens.pricing:PricingScreen",
        "game prices per hour, live servers and what they bring in; price changes with their history",
    ),
    Area(
        "database", "Database", "7", "screens.database:DatabaseScreen",
        "client sessions live, the lock tree, table health, slow queries; cancel, terminate, maintenance",
    ),
    Area(
        "audit", "Audit", "8", "screens.audit:AuditScreen",
        "every runbook action: who, what, on which target, outcome; filter and page",
    ),
    Area(
        "checklists", "Checklists", "9", "screens.checklists:ChecklistScreen",
        "daily to quarterly checklists: each item's evidence, answers and sign-off; what is due",
    ),
    Area(
        "payments", "Payments", "0", "screens.payments:PaymentsScreen",
        "Stripe webhook deliveries and endpoints; paid sessions never credited: resend or credit them",
    ),
    # "-" is the key after 0 on the digit row (Textual binds it as "minus"; shown as "-").
    Area(
        "backends", "Backends", "-", "screens.backends:BackendsScreen",
        "every backend's state, version and last error",
    ),
)  # fmt: skip


HEALTH_RETRY = 2.0  # seconds between pings of a backend that is down: back within a poll


class OpsConsole(App):
    """The console. `services` is built by console.cli from Settings."""

    TITLE = "opsconsole"
    CSS = "Screen { layers: base overlay; }"
    MODES: ClassVar = {area.name: area.make_screen for area in AREAS}
    DEFAULT_MODE = "overview"
    COMMANDS = App.COMMANDS | {AreaCommands}
    # Ids name the bindings the [keymap] table may rebind (`help = "f1"`, `"area.orders" = "o"`).
    BINDINGS = [
        *(
            Binding(a.key, f"switch_mode('{a.name}')", a.title, show=False, id=f"area.{a.name}")
            for a in AREAS
        ),
        Binding("question_mark", "help", "Help", key_display="?", id="help"),
        Binding("ctrl+q", "quit", "Quit", priority=True, id="quit"),
        Binding("q", "quit", "Quit", show=False),
    ]

    class OpsEventReceived(Message):
        def __init__(self, event: OpsEvent) -> None:
            super().__init__()
            self.event = event

    def __init__(
        self,
        services: Services,
        context: ShellContext,
        *,
        health_interval: float = 15.0,
        keymap: Mapping[str, str] | None = None,
    ):
        super().__init__()
        self._config_keymap = dict(keymap or {})
        self.services = services
        self.context = context
        # The header and help name each area by the key that switches to it, rebound or not.
        self.areas = tuple(
            replace(a, key=self._config_keymap[f"area.{a.name}"].split(",")[0])
            if f"area.{a.name}" in self._config_keymap
            else a
            for a in AREAS
        )
        self.poll_hub = PollHub()
        self.listener_connected = False
        self._health_interval = health_interval
        self._probes: list[Probe] = services.probes()
        self._health: dict[str, Poller[Ping]] = {}
        self._down: set[str] = set()  # backends whose last health check failed
        self._pings: dict[str, Ping] = {}
        self._startup_probe = os.environ.get("OPSCONSOLE_STARTUP_PROBE")

    # ---- lifecycle ----------------------------------------------------------------

    async def on_mount(self) -> None:
        self.theme = "textual-dark"
        if self._config_keymap:
            self.set_keymap(self._config_keymap)
        await self.services.open()
        # Health checks and the listener wait until the first data is on screen (or a
        # second has passed): on a cold start they would compete with it for Postgres.
        self._background_started = False
        self.set_timer(1.0, self._start_background)

    def _start_background(self) -> None:
        if self._background_started:
            return
        self._background_started = True
        for probe in self._probes:
            if probe.configured:
                self._start_health_poller(probe)
        self.listen_for_events()

    async def on_unmount(self) -> None:
        await self.services.close()

    def _start_health_poller(self, probe: Probe) -> None:
        def remember(ping: Ping, name: str = probe.name) -> None:
            self._pings[name] = ping
            if name in self._down:  # back: every panel reads it again now, not after its backoff
                self._down.discard(name)
                self.poll_hub.trigger_all()

        def lost(_error: ServiceError, name: str = probe.name) -> None:
            self._down.add(name)

        poller: Poller[Ping] = Poller(
            f"health.{probe.name}",
            probe.ping,
            self._health_interval,
            on_result=remember,
            on_error=lost,
            retry_every=HEALTH_RETRY,  # a ping is cheap: a backend that is down is asked every few seconds
        )
        self._health[probe.name] = poller
        self.run_worker(poller.run(), group=f"health-{probe.name}", exit_on_error=False)

    @work(group="ops-events", exit_on_error=False)
    async def listen_for_events(self) -> None:
        """LISTEN on ops_events; every notification refreshes every open panel."""

        def connected(state: bool) -> None:
            self.listener_connected = state
            if state:  # anything may have changed while we were not listening
                self.poll_hub.trigger_all()

        await self.services.postgres.listen(
            lambda event: self.post_message(self.OpsEventReceived(event)), on_state=connected
        )

    def on_ops_console_ops_event_received(self, message: OpsEventReceived) -> None:
        self.poll_hub.trigger_all()

    def on_data_shown(self, _message: DataShown) -> None:
        self.call_after_refresh(self._start_background)
        # The start-up benchmark's probe: the time of the first frame that shows data.
        if self._startup_probe:
            path, self._startup_probe = self._startup_probe, None
            self.call_after_refresh(self._write_startup_probe, path)

    def _write_startup_probe(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(f"{time.time():.6f}\n")
        self.exit()

    # ---- what screens ask of the app ----------------------------------------------

    def backend_statuses(self) -> list[BackendStatus]:
        """One status per backend, in header order."""
        return [
            backend_status(
                probe,
                self._health[probe.name].freshness() if probe.name in self._health else None,
                self._pings.get(probe.name),
                self._health_interval,
            )
            for probe in self._probes
        ]

    def health_check_now(self, backend: str | None = None) -> None:
        """Check `backend` (or every backend) now rather than at its next interval."""
        for name, poller in self._health.items():
            if backend is None or name == backend:
                poller.trigger()

    # ---- actions ------------------------------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    async def action_quit(self) -> None:
        """Quit, after a y/n: a stray q or Ctrl+Q at 3 a.m. must not drop the console."""
        if isinstance(self.screen, ConfirmScreen):
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.exit()

        self.push_screen(ConfirmScreen("Quit opsconsole?"), answered)
