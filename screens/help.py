"""The help screen: every key of the screen underneath, the app's keys, and the areas."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from screens.base import AreaScreen


def describe_key(key: str) -> str:
    """'ctrl+p' -> 'Ctrl+P', 'question_mark' -> '?'."""
    names = {"question_mark": "?", "escape": "Esc", "space": "Space", "enter": "Enter"}
    return "+".join(names.get(part, part.capitalize() if len(part) > 1 else part) for part in key.split("+"))


def help_lines(screen: Screen) -> Text:
    """Every binding active on `screen` (its own, its widgets', the app's), one per line."""
    text = Text()
    seen: set[tuple[str, str]] = set()
    text.append("Keys on this screen\n", style="bold underline")
    for key, active in sorted(screen.active_bindings.items(), key=lambda kv: kv[1].binding.action):
        binding = active.binding
        description = binding.description or binding.tooltip or binding.action.replace("_", " ")
        if (description, binding.action) in seen and not binding.show:
            continue
        seen.add((description, binding.action))
        label = describe_key(binding.key_display or key)
        style = "" if active.enabled else "dim"
        text.append(f"  {label:<12}", style=f"bold {style}")
        text.append(f"{description}", style=style)
        if binding.tooltip and binding.tooltip != description:
            text.append(f"  {binding.tooltip}", style="dim")
        text.append("\n")
    areas = getattr(screen.app, "areas", ())
    if areas:
        text.append("\nAreas\n", style="bold underline")
        for area in areas:
            text.append(f"  {area.key:<12}", style="bold")
            text.append(f"{area.title}: {area.description}\n")
    text.append("\n  Ctrl+P      ", style="bold")
    text.append("command palette: every area and action by name\n")
    return text


class HelpScreen(ModalScreen[None]):
    """Shows help_lines for the screen it was opened over; Esc, q or ? closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%; max-width: 100; height: 90%; border: round $primary; padding: 0 1;
        background: $surface;
    }
    """
    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("q", "dismiss", "Close", show=False),
        Binding("question_mark", "dismiss", "Close", show=False),
    ]

    def __init__(self, over: Screen) -> None:
        super().__init__()
        self._lines = help_lines(over)
        self._title = over.AREA.title() if isinstance(over, AreaScreen) else "opsconsole"

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = f"Help: {self._title}"
            scroll.border_subtitle = "Esc closes"
            yield Static(self._lines)
