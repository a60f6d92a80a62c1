"""The runbook action modals: the preview with its exact calls and a confirmation (y/n for
reversible actions, the target id typed out for destructive ones), and the one-time
secret display (a new panel password), which keeps nothing once closed."""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static

from screens.shown import fill, plain
from services.runbook import Confirmation, Plan
from services.text import inert


def shown(value: object, limit: int | None = None) -> Text:
    """A backend's text, line by line, inert and never read as markup."""
    return Text("\n").join(plain(line, limit=limit) for line in str(value).split("\n"))


class ActionConfirmScreen(ModalScreen[dict | None]):
    """Shows what the action will do, with the inputs the operator gave; dismisses with
    {"confirm": what was typed} (destructive) or {} when confirmed, else None. It asks
    nothing else: the plan shown is the plan that runs."""

    DEFAULT_CSS = """
    ActionConfirmScreen { align: center middle; }
    ActionConfirmScreen > Vertical {
        width: 96; max-width: 96%; height: auto; max-height: 90%; border: thick $warning;
        padding: 0 1; background: $surface;
    }
    ActionConfirmScreen #calls { height: auto; max-height: 22; background: $panel; padding: 0 1; }
    ActionConfirmScreen .refusal { color: $error; text-style: bold; }
    ActionConfirmScreen .warning { color: $warning; text-style: bold; }
    ActionConfirmScreen .muted { color: $text-muted; }
    ActionConfirmScreen Input { margin: 0; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("y", "yes", "Yes", show=False),
                Binding("n", "cancel", "No", show=False)]  # fmt: skip

    def __init__(self, plan: Plan, *, dry_run: bool = False):
        super().__init__()
        self.plan = plan
        self.dry_run = dry_run

    @property
    def typed(self) -> bool:
        return self.plan.confirmation is Confirmation.TYPED

    def compose(self) -> ComposeResult:
        plan = self.plan
        with Vertical():
            yield Static(fill("[b]{}[/b] — {} {}", plan.action.title, plan.action.target_kind, plan.target))
            if plan.params:
                shown_params = plan.action.shown_params(plan.params)
                given = ", ".join(f"{k} = {inert(v, 80)}" for k, v in shown_params)
                yield Static(fill("[dim]with[/dim] {}", given), id="params")
            yield Static(shown(plan.preview.summary), id="summary")
            with VerticalScroll(id="calls"):
                yield Static(shown("\n\n".join(plan.preview.calls)), id="calls-text")
            for warning in plan.preview.warnings:
                yield Static(fill("! {}", warning), classes="warning")
            if plan.refusal:
                yield Static(fill("cannot run: {}", plan.refusal), classes="refusal", id="refusal")
                yield Static("Esc closes", classes="muted")
                return
            mode = " (dry run: nothing will change)" if self.dry_run else ""
            if self.typed:
                yield Input(placeholder=f"type {plan.typed_word} to confirm", id="typed")
                yield Static(f"Enter confirms{mode} · Esc cancels", classes="muted")
            else:
                yield Static(f"[b]y[/b] run it{mode} · [b]n[/b] / Esc cancel", classes="muted")

    def on_mount(self) -> None:
        inputs = self.query(Input)
        if inputs:
            inputs.first().focus()
        self.call_after_refresh(self._fit_calls)

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit_calls)

    def _fit_calls(self) -> None:
        """The calls scroll in whatever room the rest leaves, so the confirmation line and
        its keys stay on screen at 80x24."""
        box = self.query_one(Vertical)
        calls = self.query_one("#calls", VerticalScroll)
        others = sum(w.outer_size.height for w in box.children if w is not calls)
        room = int(self.size.height * 0.9) - 2 - others
        calls.styles.max_height = max(3, min(22, room))

    def action_yes(self) -> None:
        if self.plan.refusal or self.typed:
            return
        self.dismiss({})

    @on(Input.Submitted)
    def _submitted(self) -> None:
        if self.plan.refusal:
            return
        if self.typed and self.query_one("#typed", Input).value.strip() != self.plan.typed_word:
            kind = self.plan.action.target_kind
            self.notify(f"type the {kind} {'id' if kind == 'order' else 'name'} exactly to confirm",
                        severity="warning")  # fmt: skip
            return
        typed = self.query_one("#typed", Input).value.strip() if self.typed else None
        self.dismiss({"confirm": typed} if typed is not None else {})

    def action_cancel(self) -> None:
        self.dismiss(None)


class SecretScreen(ModalScreen[None]):
    """Shows a secret once (to pass on to the customer); it is dropped when closed."""

    DEFAULT_CSS = """
    SecretScreen { align: center middle; }
    SecretScreen > Vertical { width: 70; max-width: 96%; height: auto; border: thick $success;
        padding: 1 2; background: $surface; }
    SecretScreen #secret { text-style: bold; color: $success; margin: 1 0; }
    """
    BINDINGS = [Binding("escape,enter", "close", "Close")]

    def __init__(self, title: str, secret: str):
        super().__init__()
        self.title_text = title
        self._secret = secret

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(shown(self.title_text))
            yield Static(escape(self._secret), id="secret")
            yield Static("Shown once: it is not stored or logged. Enter / Esc closes.")

    def action_close(self) -> None:
        self._secret = ""
        self.query_one("#secret", Static).update("")
        self.dismiss(None)


class InfoScreen(ModalScreen[None]):
    """A read-only panel an action's failure leads to (node capacity, plan details)."""

    DEFAULT_CSS = """
    InfoScreen { align: center middle; }
    InfoScreen > Vertical { width: 90; max-width: 96%; height: auto; max-height: 90%;
        border: thick $accent; padding: 0 1; background: $surface; }
    """
    BINDINGS = [Binding("escape,enter", "close", "Close")]

    def __init__(self, title: str, body: str | Text):
        super().__init__()
        self.title_text = title
        self.body = body  # our markup, or Text holding a backend's values (screens.shown.fill)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(fill("[b]{}[/b]", self.title_text))
            with VerticalScroll():
                yield Static(self.body, id="info-body")
            yield Static("Enter / Esc closes", classes="muted")

    def action_close(self) -> None:
        self.dismiss(None)


class AskScreen(ModalScreen[str | None]):
    """Asks for one value (replicas, a namespace); dismisses with the text, or None on Esc."""

    DEFAULT_CSS = """
    AskScreen { align: center middle; }
    AskScreen > Vertical { width: 70; max-width: 96%; height: auto; border: thick $accent;
        padding: 0 1; background: $surface; }
    AskScreen .muted { color: $text-muted; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, value: str = ""):
        super().__init__()
        self.question = question
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(shown(self.question))
            yield Input(value=inert(self.value), id="answer")
            yield Static("Enter answers · Esc cancels", classes="muted")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChooseScreen(ModalScreen[str | None]):
    """Picks one of `options` (a kubeconfig context, a severity): arrows and Enter, Esc
    cancels. `current` is marked as such; the cursor starts on `preset`, else on it."""

    DEFAULT_CSS = """
    ChooseScreen { align: center middle; }
    ChooseScreen > Vertical { width: 60; max-width: 96%; height: auto; max-height: 80%;
        border: thick $accent; padding: 0 1; background: $surface; }
    ChooseScreen OptionList { height: auto; max-height: 20; }
    ChooseScreen .muted { color: $text-muted; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, options: list[str], current: str | None = None, *,
                 preset: str | None = None):  # fmt: skip
        super().__init__()
        self.question = question
        self.options = options
        self.current = current  # marked "(current)"
        self.preset = preset or current  # where the cursor starts

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(shown(self.question))
            yield OptionList(*(plain(f"{o} (current)" if o == self.current else o) for o in self.options))
            yield Static("↑↓ choose · Enter picks · Esc cancels", classes="muted")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = self.options.index(self.preset) if self.preset in self.options else 0
        options.focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.options[event.option_index])

    def action_cancel(self) -> None:
        self.dismiss(None)
