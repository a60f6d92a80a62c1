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
from services.runbook import Confirmation, short_id
from services.text import inert

if TYPE_CHECKING:
    from services.bundle import Services
    from services.claims import Claim
    from services.health import BackendStatus
    from services.runbook import Action, Outcome, Plan, Runbook

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
    BINDINGS = [
        Binding("r", "refresh_now", "Refresh", tooltip="Poll every source of this screen now", show=False)
    ]

    @staticmethod
    def action_bindings(actions: tuple[Action, ...]) -> list[Binding]:
        """One key binding per action, its help as the tooltip (the help screen shows it)."""
        return [
            Binding(
                a.key, f"act('{a.name}')", a.short or a.title, tooltip=f"{a.title}: {a.help} (role: {a.role})"
            )
            for a in actions
        ]

    def __init__(self) -> None:
        super().__init__()
        self._pollers: list[Poller[Any]] = []
        self._failing: dict[str, str | None] = {}  # poller key -> the backend it failed on
        self._poll_handlers: dict[
            str, tuple[Callable[[Any], None], Callable[[ServiceError], None] | None]
        ] = {}
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
        """Start polling `fetch` in a worker. Its results and failures reach the screen the
        one way worker results do: as a message (`Polled`, `PollFailed`), whose handler
        calls `on_result` / `on_error`; nothing the poller runs touches a widget."""
        key = f"{self.AREA}.{name}"
        self._poll_handlers[key] = (on_result, on_error)
        poller: Poller[T] = Poller(
            key,
            fetch,
            interval or self.shell.context.refresh(self.AREA),
            on_result=lambda result: self.post_message(self.Polled(key, result)),
            on_error=lambda error: self.post_message(self.PollFailed(key, error)),
        )
        self._pollers.append(poller)
        self.shell.poll_hub.add(poller)
        self.run_worker(poller.run(), group=f"poll-{name}", exit_on_error=False, exclusive=False)
        return poller

    class Polled(Message):
        """One poller's fresh result (posted by the poller, handled on the screen)."""

        def __init__(self, key: str, result: Any) -> None:
            super().__init__()
            self.key = key
            self.result = result

    class PollFailed(Message):
        """One poller's failure."""

        def __init__(self, key: str, error: ServiceError) -> None:
            super().__init__()
            self.key = key
            self.error = error

    class ActionProgressed(Message):
        """A running action's latest progress line (a services.backup_run.ProgressLine also
        says how far along it is), posted from wherever the action reports it; a screen that
        shows progress handles it, the others ignore it."""

        bubble = False

        def __init__(self, action: Action, line: str) -> None:
            super().__init__()
            self.action = action
            self.line = line

    class ActionEnded(Message):
        """A runbook action run from this screen has ended, whatever its outcome."""

        bubble = False

        def __init__(self, action: Action) -> None:
            super().__init__()
            self.action = action

    def on_area_screen_polled(self, message: Polled) -> None:
        message.stop()
        on_result, _ = self._poll_handlers[message.key]
        on_result(message.result)
        backend = self._failing.pop(message.key, None)
        if backend is not None:  # the panel is back: so is its backend's badge, now
            self.shell.health_check_now(backend)

    def on_area_screen_poll_failed(self, message: PollFailed) -> None:
        message.stop()
        _, on_error = self._poll_handlers[message.key]
        self._failing[message.key] = message.error.backend
        if on_error:
            on_error(message.error)
        # A failing panel is news for the header badge: check that backend now.
        self.shell.health_check_now(message.error.backend)

    def palette_commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        """(name, help, callback) entries this screen adds to the command palette: its
        actions, unless the console is read-only."""
        if self.shell.context.read_only:
            return []
        return [
            (f"{a.title} (selected {a.selection_kind})",
             f"{a.help}; key {a.key}, role {a.role}", partial(self.action_act, a.name))
            for a in self.ACTIONS
        ]  # fmt: skip

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "act":
            if self.shell.context.read_only:
                return False  # read-only hides every action
            return self.shows(self.find_action(str(parameters[0])))
        return True

    def shows(self, action: Action) -> bool:
        """Whether `action`'s key is live in what the screen shows now (a tab whose rows it
        acts on); hidden keys leave the footer to the ones that are."""
        return True

    def active_tab(self) -> str | None:
        from textual.css.query import NoMatches
        from textual.widgets import TabbedContent

        try:
            return self.query_one(TabbedContent).active
        except NoMatches:  # not composed yet
            return None

    def on_tabbed_content_tab_activated(self, _event) -> None:
        self.refresh_bindings()

    def find_action(self, name: str) -> Action:
        return next(a for a in self.ACTIONS if a.name == name)

    # -- actions: one path for every action of every area ---------------------------

    def selection(self, action: Action) -> tuple[str, dict[str, str]] | None:
        """What `action` acts on here: (the selected key, values that come with the
        selection: a namespace, an alert's labels; for asked inputs, what to pre-fill).
        None when nothing fitting is selected (after telling the operator why)."""
        return None

    def marked_keys(self) -> list[str]:
        """Keys marked for a bulk action (the orders list marks with space)."""
        return []

    def hint_line(self, outcome: Outcome) -> str:
        """Where the operator should look next, for an outcome with a hint (a new line)."""
        return ""

    async def after_action(self, action: Action, outcome: Outcome) -> None:
        """What the screen does once an action ended (follow a hint, open a tab)."""

    def action_act(self, name: str) -> None:
        """Run the screen's action `name` on what is selected (or on every marked key)."""
        action = self.find_action(name)
        marked = self.marked_keys()
        if marked and not any(i.asked for i in action.inputs):
            self.run_worker(self.run_bulk(action, marked), group="action", exit_on_error=False)
            return
        chosen = self.selection(action)
        if chosen is not None:
            self.run_worker(self.run_action(action, *chosen), group="action", exit_on_error=False)

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
            self.tell(str(exc), severity="error", title="Nothing was done")
            return None

    async def _ask_inputs(self, book: Runbook, action: Action, target: str,
                          given: dict[str, str]) -> dict[str, str] | None:  # fmt: skip
        """The operator's text for every input: asked ones through a modal (pre-filled with
        the selection's value or the suggestion), the others from the selection."""
        from screens.action_modal import AskScreen, ChooseScreen

        suggestions = await book.suggest(action, target, given)
        raw = {k: v for k, v in given.items() if action.input(k) is not None}
        for spec in action.inputs:
            offer = suggestions[spec.name]
            if not spec.asked:
                if spec.name not in raw and offer.default is not None:
                    raw[spec.name] = offer.default
                continue
            question = (
                f"{action.title} {short_id(target)}: {spec.prompt}"
                if target
                else f"{action.title}: {spec.prompt}"
            )
            if offer.choices:
                answer = await self.app.push_screen_wait(
                    ChooseScreen(question, list(offer.choices), preset=offer.default)
                )
            else:
                answer = await self.app.push_screen_wait(AskScreen(question, offer.default or ""))
            if answer is None:
                return None
            raw[spec.name] = answer
        return raw

    async def run_action(
        self, action: Action, selected: str, given: dict[str, str] | None = None
    ) -> Outcome | None:
        """The one path: find the target, ask the inputs, plan with them (the preview shows
        exactly those), confirm (y/n, or the target typed when destructive), run that plan
        and say how it went. None when the operator stopped or it could not be planned.
        Call from a worker."""
        from screens.action_modal import ActionConfirmScreen, SecretScreen
        from services.runbook import InputError

        book = self.runbook()
        try:
            target = await book.locate(action, selected)
            raw = await self._ask_inputs(book, action, target, dict(given or {}))
            if raw is None:
                return None
            params = action.parse(raw)
            plan = await book.plan(action, target, params)
        except InputError as exc:
            self.tell(str(exc), severity="error", title="Nothing was done")
            return None
        except ServiceError as exc:
            self.tell(str(exc), severity="error", title=action.title)
            return None
        answer = await self.app.push_screen_wait(ActionConfirmScreen(plan, dry_run=book.actor.dry_run))
        if answer is None:
            return None
        self.tell(f"{action.title}: {short_id(plan.target)}…", timeout=2)
        try:
            outcome = await book.run(
                plan,
                confirmed=answer.get("confirm"),
                progress=lambda line: self.post_message(self.ActionProgressed(action, line)),
            )
        except ServiceError as exc:
            self.tell(f"not run: the audit log cannot be written ({exc})", severity="error")
            return None
        finally:
            self.post_message(self.ActionEnded(action))
        severity = "information" if outcome.status in ("ok", "dry-run") else "error"
        # The backend's words inert, our hint (its own line) as written.
        self.notify(inert(outcome.message) + self.hint_line(outcome), markup=False, severity=severity,
                    title=f"{action.title}: {outcome.status}", timeout=8)  # fmt: skip
        if outcome.secret:
            await self.app.push_screen_wait(
                SecretScreen(
                    f"{action.title} for {action.target_kind} {plan.target}: shown once", outcome.secret
                )
            )
        for poller in self._pollers:
            poller.trigger()
        await self.after_action(action, outcome)
        return outcome

    async def run_bulk(self, action: Action, keys: list[str]) -> dict[str, Outcome]:
        """`action` on every marked key: each planned (its unasked inputs from their
        suggestions, as a single run fills them), one confirmation listing them all (with what
        would refuse; typed as the count for a destructive action), each run and audited on
        its own, a summary naming every failure and why."""
        from screens.action_modal import AskScreen, shown
        from screens.confirm import ConfirmScreen

        book = self.runbook()
        plans = []
        try:
            for key in keys:
                target = await book.locate(action, key)
                given = {name: s.default for name, s in (await book.suggest(action, target, {})).items()
                         if s.default is not None}  # fmt: skip
                plans.append(await book.plan(action, target, action.parse(given)))
        except (ServiceError, ValueError) as exc:
            self.tell(str(exc), severity="error", title=f"{action.title}: nothing was done")
            return {}
        typed = any(p.confirmation is Confirmation.TYPED for p in plans)

        def line(p: Plan) -> str:
            said = p.target if not typed else inert(p.preview.summary.split(". ")[0], 110)
            return f"  {said}" + (f"  (will refuse: {p.refusal})" if p.refusal else "")

        # As many as the terminal shows beside the question and the modal's own lines (80x24: 10).
        room = max(3, min(20, self.app.size.height - 14))
        lines = [line(p) for p in plans[:room]]
        more = [f"  … and {len(plans) - room} more"] if len(plans) > room else []
        calls = plans[0].preview.calls[0].split("\n")[0] if plans and plans[0].preview.calls else ""
        question = f"{action.title} for {len(plans)} {action.target_kind}s, each: {calls}\n" + "\n".join(
            lines + more
        )
        if typed:
            word = str(len(plans))
            answer = await self.app.push_screen_wait(
                AskScreen(f"{question}\n\nType {word} to confirm all {word}.")
            )
            if answer is None:
                return {}
            if answer.strip() != word:
                self.tell(f"not confirmed: type {word} (the count) to confirm", severity="error",
                          title=f"{action.title}: nothing was done")  # fmt: skip
                return {}
        elif not await self.app.push_screen_wait(ConfirmScreen(shown(question))):
            return {}
        outcomes: dict[str, Outcome] = {}
        for n, plan in enumerate(plans, start=1):
            self.tell(f"{action.title} {n}/{len(plans)}: {short_id(plan.target)}", timeout=1.5)
            try:
                confirmed = plan.typed_word if plan.confirmation is Confirmation.TYPED else None
                outcomes[plan.target] = await book.run(plan, confirmed=confirmed)
            except ServiceError as exc:
                self.tell(f"stopped: {exc}", severity="error")
                break
        bad = {k: o for k, o in outcomes.items() if o.status not in ("ok", "dry-run")}
        summary = f"bulk {action.title.lower()} done: {len(outcomes) - len(bad)} of {len(plans)} ok"
        summary += "".join(f"\n{short_id(k)} {o.status}: {inert(o.message)}" for k, o in bad.items())
        # One line per failure: each message made inert on its own, the lines kept apart.
        self.notify(summary, markup=False, title=action.title, timeout=15,
                    severity="warning" if bad else "information")  # fmt: skip
        self.last_bulk = outcomes
        for poller in self._pollers:
            poller.trigger()
        return outcomes

    def poll_claims(self) -> None:
        """Keep this screen's ClaimsBar showing what other consoles are doing (their live
        claims, with their age); call from on_mount."""
        self.claims: list[Claim] = []

        def shown(claims: list[Claim]) -> None:
            self.claims = [c for c in claims if c.console_id != self.console_id]
            self.render_claims()

        async def live() -> list[Claim]:
            await self.runbook().sweep()  # a dead console's action: recorded as abandoned
            return await self.shell.services.claims.live()

        self.poll("claims", live, shown)
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

    def tell(self, message: str, **kwargs: Any) -> None:
        """A notification whose text may carry a backend's words: shown, never read as markup."""
        self.notify(inert(message), markup=False, **kwargs)

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
