"""The Database Outage runbook walked in the console (`o` in the Database area): the AGIS
manual's six steps in order, each one confirmation (the action's own, or the note that puts
what was found, done, verified or watched on the open incident's timeline), with the
figures of the investigate, verify and watch steps shown as they are read."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from screens.shown import fill, plain
from screens.widgets import Panel, ShellHeader
from services.db_outage import STEPS, investigate, verify, watch
from services.errors import ServiceError
from services.incident_actions import DECLARE_INCIDENT, INCIDENT_NOTE
from services.kube_actions import SCALE_DEPLOYMENT
from services.runbook import Action, Outcome
from services.text import inert

BOT = "agis-bot"  # the manual's deployment
WATCH_SECONDS = 120.0
MARKS = {
    "done": ("✓", "green"),
    "now": ("▶", "bold yellow"),
    "todo": ("·", "dim"),
    "failed": ("✕", "bold red"),
}


class OutageScreen(Screen):
    """The runbook's steps and the current one's figures; Enter runs the current step."""

    DEFAULT_CSS = """
    OutageScreen #outage-title { height: auto; padding: 0 1; background: $panel; }
    OutageScreen #outage-steps { height: auto; padding: 0 1; }
    OutageScreen Panel { height: 1fr; }
    OutageScreen #outage-detail { height: auto; }
    """
    BINDINGS = [
        Binding("enter", "step", "Run this step"),
        Binding("escape", "close", "Close"),
    ]

    class Shown(Message):
        """What a step's worker has to show (the title, the current step's text): drawn by
        the handler, never by the worker."""

        def __init__(self, detail: Text | None = None, title: Text | None = None) -> None:
            super().__init__()
            self.detail = detail
            self.title = title

    def __init__(self, area, *, watch_seconds: float | None = None) -> None:
        super().__init__()
        self.area = area  # the Database screen: its runbook (operator, role, console)
        self.watch_seconds = watch_seconds or WATCH_SECONDS
        self.step = 0
        self.marks = ["todo"] * len(STEPS)
        self.incident = None
        self.before: int | None = None  # the bot's replicas before step 1 (None: no Kubernetes)
        self.namespace = "default"
        self.busy = False

    def compose(self) -> ComposeResult:
        yield ShellHeader("database")  # the environment stays on screen
        yield Static("Database outage runbook (AGIS manual): reading the open incident…", id="outage-title")
        yield Static("", id="outage-steps")
        with Panel(title="This step", id="outage-panel"), VerticalScroll():
            yield Static("", id="outage-detail")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.marks[0] = "now"
        self._draw()
        self._prepare()

    # -- drawing --------------------------------------------------------------------------

    def on_outage_screen_shown(self, message: Shown) -> None:
        if message.title is not None:
            self.query_one("#outage-title", Static).update(message.title)
        self._draw(message.detail)

    def _show(self, detail: Text | None = None, title: Text | None = None) -> None:
        self.post_message(self.Shown(detail, title))

    def _draw(self, detail: Text | str | None = None) -> None:
        lines = Text()
        for n, ((_key, title), mark) in enumerate(zip(STEPS, self.marks, strict=True), start=1):
            sign, style = MARKS[mark]
            lines.append(f"{sign} {n}. {title}\n", style=style)
        lines.append("Enter runs the step (one confirmation, on the incident's timeline) · Esc closes",
                     style="dim")  # fmt: skip
        self.query_one("#outage-steps", Static).update(lines)
        if detail is not None:
            self.query_one("#outage-detail", Static).update(detail)

    def _say(self, lines: list[str] | tuple[str, ...], head: str = "") -> Text:
        text = fill("[b]{}[/b]\n", head) if head else Text()
        return text + Text("\n").join(plain(line) for line in lines)

    @work(group="outage", exclusive=True, exit_on_error=False)
    async def _prepare(self) -> None:
        services = self.app.services  # type: ignore[attr-defined]
        try:
            open_ = await services.incidents.open_incidents()
            if services.kube.configured:
                self.namespace = services.kube.where(None)[1]
                found = await services.kube.read_deployment(self.namespace, BOT, None)
                self.before = int(found.desired) if found is not None else None
        except ServiceError as exc:
            self._show(fill("[b red]{}[/]", str(exc)))
            return
        self.incident = open_[0] if open_ else None
        if self.incident is None:
            title = Text(
                "Database outage runbook (AGIS manual): no incident is open; Enter declares a P0 first"
            )
        else:
            title = fill("Database outage runbook (AGIS manual) on [b]INC-{}[/b] {} ({})", self.incident.id,
                         self.incident.title, self.incident.severity)  # fmt: skip
        self._show(self._explain(), title)

    def _explain(self) -> Text:
        key = STEPS[self.step][0]
        if key == "scale":
            if self.before is None:
                return Text("Kubernetes is not configured: scale the bot to 0 by hand, then Enter notes it.")
            return fill("Scale deployment {}/{} from {} to 0 replicas: the bot stops writing. "
                        "Its name is typed.", self.namespace, BOT, self.before)  # fmt: skip
        if key == "fix":
            return Text("Fix the root cause (expand the disk, raise max_connections, terminate runaway "
                        "sessions in the Activity tab); Enter asks what was done and notes it.")  # fmt: skip
        if key == "scale_up":
            if self.before is None:
                return Text("Scale the bot back up by hand, then Enter notes it.")
            return fill("Scale deployment {} back to {} replicas.", BOT, max(self.before, 1))
        watching = f"Enter watches for {self.watch_seconds:.0f} s, then notes what it saw."
        return Text({"investigate": "Enter reads the figures and offers to note them.",
                     "verify": "Enter checks the database's health and, when healthy, notes the checks.",
                     "watch": watching}[key])  # fmt: skip

    # -- running the steps ----------------------------------------------------------------

    def action_close(self) -> None:
        self.workers.cancel_group(self, "outage")
        self.dismiss()

    def action_step(self) -> None:
        if not self.busy and self.step < len(STEPS):
            self._run_step()

    async def _act(self, action: Action, target: str, raw: dict[str, str]) -> Outcome | None:
        """Plan `action` with exactly `raw`, show its confirmation, run it: None when the
        operator said no or it could not be planned."""
        from screens.action_modal import ActionConfirmScreen

        book = self.area.runbook()
        try:
            plan = await book.plan(action, target, action.parse(raw))
        except (ServiceError, ValueError) as exc:
            self.notify(inert(exc), severity="error", markup=False, title=action.title)
            return None
        answer = await self.app.push_screen_wait(ActionConfirmScreen(plan, dry_run=book.actor.dry_run))
        if answer is None:
            return None
        outcome = await book.run(plan, confirmed=answer.get("confirm"))
        severity = "information" if outcome.status in ("ok", "dry-run") else "error"
        self.notify(inert(outcome.message), markup=False, severity=severity,
                    title=f"{action.title}: {outcome.status}")  # fmt: skip
        return outcome

    async def _note(self, text: str) -> bool:
        outcome = await self._act(INCIDENT_NOTE, str(self.incident.id), {"text": text})
        return outcome is not None and outcome.status in ("ok", "dry-run")

    @work(group="outage", exclusive=True, exit_on_error=False)
    async def _run_step(self) -> None:
        self.busy = True
        try:
            if self.incident is None:
                await self._declare()
                return
            if await self._do(STEPS[self.step][0]):
                self.marks[self.step] = "done"
                self.step += 1
                if self.step < len(STEPS):
                    self.marks[self.step] = "now"
                    self._show(self._explain())
                else:
                    done = "The runbook is done: resolve the incident and write its post-mortem (4, i)."
                    self._show(Text(done, style="bold green"))
        except ServiceError as exc:
            self._show(fill("[b red]{}[/]", str(exc)))
        finally:
            self.busy = False

    async def _declare(self) -> None:
        done = await self._act(
            DECLARE_INCIDENT, "Database outage", {"severity": "P0", "title": "Database outage"}
        )
        if done is not None and done.ok:
            self._prepare()

    async def _do(self, key: str) -> bool:
        services = self.app.services  # type: ignore[attr-defined]
        where = {"namespace": self.namespace}
        if key in ("scale", "scale_up") and self.before is not None:
            replicas = "0" if key == "scale" else str(max(self.before, 1))
            if key == "scale" and self.before == 0:
                return True
            outcome = await self._act(SCALE_DEPLOYMENT, BOT, {**where, "replicas": replicas})
            return outcome is not None and outcome.status in ("ok", "dry-run")
        if key in ("scale", "scale_up"):
            return await self._note(f"step {1 if key == 'scale' else 5}: the bot was scaled "
                                    f"{'to 0' if key == 'scale' else 'back up'} by hand")  # fmt: skip
        if key == "investigate":
            lines = (await investigate(services)).lines()
            self._show(self._say(lines, "Found:"))
            return await self._note("step 2, investigated: " + "; ".join(lines))
        if key == "fix":
            from screens.action_modal import AskScreen

            fixed = await self.app.push_screen_wait(AskScreen("What was done to fix it? (on the timeline)"))
            return bool(fixed and fixed.strip()) and await self._note(f"step 3, fixed: {fixed.strip()}")
        if key == "verify":
            verdict = await verify(services)
            self._show(self._say(verdict.lines, "Healthy:" if verdict.ok else "NOT healthy yet:"))
            if not verdict.ok:
                self.marks[self.step] = "failed"
                await self._note("step 4, verify FAILED: " + "; ".join(verdict.lines))
                self.marks[self.step] = "now"
                return False
            return await self._note("step 4, verified: " + "; ".join(verdict.lines))
        watched = await watch(services, self.watch_seconds, say=lambda line: self._show(Text(line)))
        self._show(self._say(watched.lines, "Watched:"))
        return await self._note("step 6, watched: " + "; ".join(watched.lines))
