"""What every area screen shares: the shell context it is shown in, the pollers it owns
(paused while the screen is hidden, triggered by ops_events), and its data-age display."""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen

from services.errors import ServiceError
from services.polling import Freshness, Poller

if TYPE_CHECKING:
    from services.audit import Claim
    from services.bundle import Services
    from services.health import BackendStatus
    from services.runbook import Action, Outcome, Runbook

T = TypeVar("T")


@dataclass(frozen=True)
class ShellContext:
    """Who is at the console, where, and how: shown on every screen."""

    environment: str
    colour: str
    operator: str
    role: str
    read_only: bool = False
    dry_run: bool = False
    refresh: Callable[[str], float] = lambda _area: 10.0


@dataclass(frozen=True)
class Area:
    """One area of the console: its mode name, title, switch key, and where its screen
    class lives ("screens.orders:OrdersScreen"), imported when the area is first opened
    so that start-up pays only for the first screen."""

    name: str
    title: str
    key: str
    screen: str
    description: str

    def make_screen(self) -> Screen:
        module, _, cls = self.screen.partition(":")
        return getattr(importlib.import_module(module), cls)()


class DataShown(Message):
    """Posted to the app when a screen has shown data (the start-up probe waits for it)."""


class PollHub:
    """Every live poller of the app, so one ops_event can refresh them all."""

    def __init__(self) -> None:
        self._pollers: set[Poller[Any]] = set()

    def add(self, poller: Poller[Any]) -> None:
        self._pollers.add(poller)

    def discard(self, poller: Poller[Any]) -> None:
        self._pollers.discard(poller)

    def trigger_all(self) -> None:
        for poller in self._pollers:
            poller.trigger()

    def __len__(self) -> int:
        return len(self._pollers)


class ShellApp(Protocol):
    """What screens may ask of the app (console.app.OpsConsole provides it)."""

    services: Services
    context: ShellContext
    poll_hub: PollHub
    areas: tuple[Area, ...]

    def backend_statuses(self) -> list[BackendStatus]: ...

    def health_check_now(self, backend: str | None = None) -> None: ...


class AreaScreen(Screen):
    """A screen of one area. Subclasses add pollers in on_mount with `poll(...)`."""

    AREA = ""
    ACTIONS: tuple[Action, ...] = ()  # the runbook actions this screen offers (keys, palette, help)
    SELECTION = ""  # what the actions act on, for the palette ("order"); else each action's target kind
    BINDINGS = [Binding("r", "refresh_now", "Refresh", tooltip="Poll every source of this screen now")]

    @staticmethod
    def action_bindings(actions: tuple[Action, ...]) -> list[Binding]:
        """One key binding per action, its help as the tooltip (the help screen shows it)."""
        return [
            Binding(a.key, f"act('{a.name}')", a.title, tooltip=f"{a.help} (role: {a.role})") for a in actions
        ]

    def __init__(self) -> None:
        super().__init__()
        self._pollers: list[Poller[Any]] = []
        # Who "this console" is for claims: other consoles see and respect its actions.
        self.console_id = f"tui-{os.getpid()}-{uuid.uuid4().hex[:6]}"

    @property
    def shell(self) -> ShellApp:
        return cast("ShellApp", self.app)

    def poll(
        self,
        name: str,
        fetch: Callable[[], Awaitable[T]],
        on_result: Callable[[T], None],
        *,
        interval: float | None = None,
        on_error: Callable[[ServiceError], None] | None = None,
    ) -> Poller[T]:
        """Start polling `fetch` in a worker; results go to `on_result` in the event loop."""

        def failed(error: ServiceError) -> None:
            if on_error:
                on_error(error)
            # A failing panel is news for the header badge: check that backend now.
            self.shell.health_check_now(error.backend)

        poller: Poller[T] = Poller(
            f"{self.AREA}.{name}",
            fetch,
            interval or self.shell.context.refresh(self.AREA),
            on_result=on_result,
            on_error=failed,
        )
        self._pollers.append(poller)
        self.shell.poll_hub.add(poller)
        self.run_worker(poller.run(), group=f"poll-{name}", exit_on_error=False, exclusive=False)
        return poller

    def palette_commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        """(name, help, callback) entries this screen adds to the command palette: its
        actions, unless the console is read-only."""
        if self.shell.context.read_only:
            return []
        return [
            (f"{a.title} (selected {self.SELECTION or a.target_kind})",
             f"{a.help}; key {a.key}, role {a.role}", partial(self.action_act, a.name))
            for a in self.ACTIONS
        ]  # fmt: skip

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "act" and self.shell.context.read_only:
            return False  # read-only hides every action
        return True

    def find_action(self, name: str) -> Action:
        return next(a for a in self.ACTIONS if a.name == name)

    def action_act(self, name: str) -> None:
        """Run the screen's action `name` on what is selected (subclasses say how)."""

    async def ask_value(self, question: str, value: str, parse: Callable[[str], T]) -> T | None:
        """Ask the operator for one value and parse it; None when they cancel, or when it
        does not parse (they are told why, and nothing is done)."""
        from screens.action_modal import AskScreen

        answer = await self.app.push_screen_wait(AskScreen(question, value))
        if answer is None:
            return None
        try:
            return parse(answer)
        except ValueError as exc:
            self.notify(str(exc), severity="error", title="Nothing was done")
            return None

    def poll_claims(self) -> None:
        """Keep this screen's ClaimsBar showing what other consoles are doing (their live
        claims, with their age); call from on_mount."""
        from services.audit import AuditService

        self.claims: list[Claim] = []

        def shown(claims: list[Claim]) -> None:
            self.claims = [c for c in claims if c.console_id != self.console_id]
            self.render_claims()

        self.poll("claims", AuditService(self.shell.services.postgres).live_claims, shown)
        self.set_interval(1.0, self.render_claims)

    def render_claims(self) -> None:
        from screens.widgets import ClaimsBar

        for bar in self.query(ClaimsBar):
            bar.show(self.claims)

    def show_freshness(self, freshness: Freshness) -> None:
        """Every panel of the screen shows the age of its data when stale."""
        from screens.widgets import Panel

        for panel in self.query(Panel):
            panel.show_freshness(freshness)

    def runbook(self) -> Runbook:
        """The runbook engine acting as this console's operator."""
        from services.runbook import Actor, Runbook

        ctx = self.shell.context
        actor = Actor(ctx.operator, ctx.role, self.console_id, read_only=ctx.read_only, dry_run=ctx.dry_run)
        return Runbook(self.shell.services, actor)

    async def confirm_and_run(
        self, action: Action, target: str, params: dict[str, Any] | None = None
    ) -> Outcome | None:
        """Preview `action`, ask the operator (y/n, or the target typed when destructive),
        run it and say how it went. None when the operator declined or it could not be
        planned. Call from a worker."""
        from screens.action_modal import ActionConfirmScreen

        book = self.runbook()
        params = dict(params or {})
        try:
            plan = await book.plan(action, target, params)
        except ServiceError as exc:
            self.notify(str(exc), severity="error", title=action.title)
            return None
        answer = await self.app.push_screen_wait(ActionConfirmScreen(plan, dry_run=book.actor.dry_run))
        if answer is None:
            return None
        params.update(answer)
        self.notify(f"{action.title}: {target}…", timeout=2)
        try:
            outcome = await book.execute(action, target, params)
        except ServiceError as exc:
            self.notify(f"not run: the audit log cannot be written ({exc})", severity="error")
            return None
        severity = "information" if outcome.status in ("ok", "dry-run") else "error"
        self.notify(outcome.message, title=f"{action.title}: {outcome.status}", severity=severity, timeout=8)
        for poller in self._pollers:
            poller.trigger()
        return outcome

    def action_refresh_now(self) -> None:
        for poller in self._pollers:
            poller.trigger()
        self.notify("Refreshing…", timeout=1.5)

    def on_screen_suspend(self, _event: events.ScreenSuspend) -> None:
        for poller in self._pollers:
            poller.pause()

    def on_screen_resume(self, _event: events.ScreenResume) -> None:
        for poller in self._pollers:
            poller.resume()

    def on_unmount(self) -> None:
        for poller in self._pollers:
            self.shell.poll_hub.discard(poller)
