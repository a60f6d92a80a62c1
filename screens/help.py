"""The help screen: every key of the screen underneath and of the app, and the areas."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from screens.base import AreaScreen


def help_lines(screen: Screen) -> Text:
    """Every binding active on `screen`, grouped: this screen's (and its widgets'), then
    the app's; then the areas and the command palette."""
    app = screen.app
    here: list[tuple[str, str, bool]] = []
    everywhere: list[tuple[str, str, bool]] = []
    seen: set[str] = set()
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if key.startswith("super+"):  # the macOS twin of a ctrl key: listed once
            continue
        description = binding.description or binding.tooltip or binding.action.replace("_", " ")
        if binding.tooltip and binding.tooltip != description:
            description = f"{description}: {binding.tooltip}"
        label = app.get_key_display(binding) if binding.key_display else app.get_key_display(Binding(key, ""))
        if f"{label}{description}" in seen:
            continue
        seen.add(f"{label}{description}")
        (everywhere if isinstance(active.node, App) else here).append((label, description, active.enabled))
    text = Text()
    width = max((len(label) for label, _, _ in here + everywhere), default=8) + 2
    for title, rows in (("This screen", here), ("Everywhere", everywhere)):
        if not rows:
            continue
        text.append(f"{title}\n", style="bold underline")
        for label, description, enabled in rows:
            text.append(f"  {label:<{width}}", style="bold" if enabled else "dim")
            text.append(f"{description}\n", style="" if enabled else "dim")
        text.append("\n")
    areas = getattr(app, "areas", ())
    if areas:
        text.append("Areas\n", style="bold underline")
        for area in areas:
            text.append(f"  {area.key:<{width}}", style="bold")
            text.append(f"{area.title}: {area.description}\n")
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
