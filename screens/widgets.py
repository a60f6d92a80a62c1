"""Shared widgets: the shell header (environment, operator, areas, backend badges), the
panel that shows its data age when stale, and the figure tile."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import ProgressBar, Static

from screens.shown import fill
from services.polling import Freshness, format_age
from services.text import inert

if TYPE_CHECKING:
    from screens.base import ShellApp
    from services.claims import Claim
    from services.health import BackendStatus

BADGE_STYLE = {
    "ok": ("●", "green"),
    "stale": ("◐", "yellow"),
    "down": ("✕", "bold red"),
    "not configured": ("·", "dim"),
}


def badge_text(status: BackendStatus, *, compact: bool = False) -> Text:
    """One backend badge: 'pg ●', 'prom ◐ 45 s', 'k8s ✕', 'am ·' (not configured)."""
    glyph, style = BADGE_STYLE[status.state]
    text = Text()
    text.append(status.short, style="dim" if status.state == "not configured" else "")
    text.append(glyph if compact else f" {glyph}", style=style)
    if status.state == "stale" and status.age is not None:
        text.append(f" {format_age(status.age)}", style="yellow")
    return text


class ShellHeader(Widget):
    """Two lines: environment, operator and role, modes, areas; then a badge per backend."""

    DEFAULT_CSS = """
    ShellHeader { height: 2; dock: top; background: $panel; }
    ShellHeader > .shell-line { height: 1; width: 1fr; }
    """

    def __init__(self, area: str) -> None:
        super().__init__()
        self.area = area

    def compose(self) -> ComposeResult:
        yield Static(id="shell-identity", classes="shell-line")
        yield Static(id="shell-badges", classes="shell-line")

    def on_mount(self) -> None:
        self.render_identity()
        self.refresh_badges()
        self.set_interval(1.0, self.refresh_badges)

    @property
    def shell(self) -> ShellApp:
        return self.app  # type: ignore[return-value]

    def render_identity(self) -> None:
        ctx = self.shell.context
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f" {ctx.environment.upper()} ", style=f"bold reverse {ctx.colour}")
        line.append(f" {ctx.operator}", style="bold")
        line.append(f" ({ctx.role})", style="dim")
        if ctx.read_only:
            line.append("  READ-ONLY", style="bold yellow")
        if ctx.dry_run:
            line.append("  DRY-RUN", style="bold cyan")
        line.append("  │ ", style="dim")
        full = self._areas(line.copy(), compact=False)
        # Every area's name when they all fit; else every key and only this area's name.
        fits = full.cell_len <= self.app.size.width
        self.query_one("#shell-identity", Static).update(full if fits else self._areas(line, compact=True))

    def _areas(self, line: Text, *, compact: bool) -> Text:
        for area in self.shell.areas:
            current = area.name == self.area
            line.append(f"{area.key} ", style="bold" if current else "dim")
            if current or not compact:
                line.append(area.title, style="bold reverse" if current else "")
            line.append(" " if compact and not current else "  ")
        return line

    def on_resize(self) -> None:
        self.render_identity()

    def refresh_badges(self) -> None:
        statuses = self.shell.backend_statuses()
        compact = self.app.size.width < 100
        line = Text(" ", no_wrap=True, overflow="ellipsis")
        for i, status in enumerate(statuses):
            if i:
                line.append(" " if compact else "  ")
            line.append_text(badge_text(status, compact=compact))
        self.query_one("#shell-badges", Static).update(line)


class Panel(Vertical):
    """A bordered panel whose subtitle shows the age of its data when it is stale."""

    DEFAULT_CSS = """
    Panel { border: round $primary-darken-2; height: auto; padding: 0 1; }
    Panel.-stale { border: round $warning; }
    Panel.-failing { border: round $error; }
    """

    def __init__(self, *children: Widget, title: str, id: str | None = None) -> None:
        super().__init__(*children, id=id)
        self.border_title = title

    def show_freshness(self, freshness: Freshness) -> None:
        """Show data age and error when stale; nothing when fresh."""
        self.set_class(freshness.stale and freshness.error is None, "-stale")
        self.set_class(freshness.error is not None, "-failing")
        said = freshness.describe()  # may quote a backend's error: plain and inert
        self.border_subtitle = Text(inert(said, limit=200)) if said else ""


class Tile(Static):
    """A headline figure: a big value over a small label."""

    DEFAULT_CSS = """
    Tile { width: 1fr; height: auto; content-align: center middle; text-align: center; }
    Tile.-alert { color: $error; text-style: bold; }
    """

    def __init__(self, label: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.label = label
        self.show("…")

    def show(self, value: str, *, alert: bool = False, note: str = "") -> None:
        text = Text(justify="center")
        text.append(value + "\n", style="bold")
        text.append(self.label, style="dim")
        if note:
            text.append(f"\n{note}", style="dim italic")
        self.set_class(alert, "-alert")
        self.update(text)


def short_age(created: datetime | None, now: datetime | None = None) -> str:
    """'45s', '12m', '5h', '3d' like kubectl."""
    if created is None:
        return "?"
    seconds = ((now or datetime.now(UTC)) - created).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{max(int(seconds), 0)}s"


def claim_lines(claims: list[Claim], now: datetime | None = None) -> list[str]:
    """'⚑ bob is scaling deployment agis-bot, 12 s' for each claim another console holds."""
    from services.actions import ALL_ACTIONS
    from services.runbook import short_id

    lines = []
    for c in claims:
        action = ALL_ACTIONS.get(c.action)
        doing = action.doing if action else c.action
        kind = c.target_kind
        age = ((now or datetime.now(UTC)) - c.started_at).total_seconds()
        lines.append(f"⚑ {c.operator} is {doing} {kind} {short_id(c.target)}, {age:.0f} s")
    return lines


class ClaimsBar(Static):
    """What other consoles are doing right now (their claims); empty and zero-height when
    nothing is."""

    DEFAULT_CSS = """
    ClaimsBar { height: auto; color: $warning; padding: 0 1; }
    """

    def on_mount(self) -> None:
        self.display = False

    def show(self, claims: list[Claim]) -> None:
        lines = claim_lines(claims)
        self.display = bool(lines)
        # Operator names and targets come from other consoles' rows: plain and inert.
        self.update(Text("\n".join(inert(line) for line in lines)))


class ActionProgress(Vertical):
    """A running runbook action's latest progress line and a bar: how far along when the line
    says so (a services.backup_run.ProgressLine's `fraction`), pulsing when it does not.
    Hidden while nothing it shows runs; with several running, the latest started is shown.
    `note` follows the line (how to stop it, say)."""

    DEFAULT_CSS = """
    ActionProgress { height: auto; padding: 0 1; display: none; }
    ActionProgress.-running { display: block; }
    ActionProgress #progress-line { height: 1; }
    """

    def __init__(self, note: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.note = note
        self._actions: dict[str, tuple[str, str]] = {}  # action name -> (title, last line)

    def compose(self) -> ComposeResult:
        yield Static("", id="progress-line")
        yield ProgressBar(id="progress-bar", show_eta=False)

    @property
    def running(self) -> bool:
        return bool(self._actions)

    def show(self, name: str, title: str, line: str) -> None:
        self._actions[name] = (title, line)
        self._draw()

    def end(self, name: str | None = None) -> None:
        """Action `name` ended (None: every one)."""
        if name is None:
            self._actions.clear()
        else:
            self._actions.pop(name, None)
        self._draw()

    def _draw(self) -> None:
        self.set_class(self.running, "-running")
        if not self._actions:
            return
        title, line = list(self._actions.values())[-1]
        text = fill("[b]{}[/b]: {}", title, line, limit=200)
        if self.note:
            text.append(f"   {self.note}", style="dim")
        self.query_one("#progress-line", Static).update(text)
        bar = self.query_one("#progress-bar", ProgressBar)
        fraction = getattr(line, "fraction", None)  # a ProgressLine says how far along it is
        if fraction is None:
            bar.update(total=None)  # how far is unknown: the bar pulses
        else:
            bar.update(total=100, progress=round(fraction * 100, 1))
