"""How a runbook action is declared: who may run it, the inputs it asks and how it finds
its target, its preview (every outbound call with its real values), precondition,
confirmation, run and verify. The engine that runs them is services.runbook."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncpg

    from services.bundle import Services

ROLES = ("viewer", "support", "oncall", "admin")
Progress = Callable[[str], None]


# The keys that run runbook actions: an uppercase letter, or (the 26 letters being taken) one
# of these symbols. Lowercase letters, digits and other keys never act.
ACTION_SYMBOLS = (">", "+", "=", "!")
_SYMBOL_NAMES = {"greater_than_sign": ">", "plus": "+", "equals_sign": "=", "exclamation_mark": "!"}


def is_action_key(key: str) -> bool:
    """Whether `key` (a character, or Textual's name for it: `plus`) is an action's key."""
    key = _SYMBOL_NAMES.get(key, key)
    return len(key) == 1 and (key.isupper() or key in ACTION_SYMBOLS)


def role_rank(role: str) -> int:
    return ROLES.index(role) if role in ROLES else 0


class Confirmation(Enum):
    YES_NO = "y/n"  # reversible
    TYPED = "typed"  # destructive: the operator types the target id


class InputError(ValueError):
    """What the operator gave an action cannot be used; the message says why."""


def text(value: str) -> str:
    """A non-empty line of text (at most 2,000 characters)."""
    value = value.strip()
    if not value:
        raise ValueError("it cannot be empty")
    if len(value) > 2000:
        raise ValueError(f"at most 2,000 characters, not {len(value):,}")
    return value


def yes_no(value: str) -> bool:
    """yes/no as the operator types it."""
    answer = value.strip().lower()
    if answer in ("y", "yes", "true", "1"):
        return True
    if answer in ("", "n", "no", "false", "0"):
        return False
    raise ValueError(f"answer yes or no, not {value!r}")


def labels(value: str) -> dict[str, str]:
    """Labels as a JSON object or `name=value,name=value`."""
    value = value.strip()
    if value.startswith("{"):
        try:
            data = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a JSON object: {exc.msg}") from None
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object of labels")
        return {str(k): str(v) for k, v in data.items()}
    pairs = [p for p in value.split(",") if p.strip()]
    out = {}
    for pair in pairs:
        name, sep, val = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{pair!r} is not name=value")
        out[name.strip()] = val.strip()
    return out


def show_value(value: Any) -> str:
    """A parsed input value as the operator typed it, for pre-filling and --set."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else str(value)


Suggest = Callable[["ActionEnv", str, Mapping[str, Any]], Awaitable["Suggestion"]]


@dataclass(frozen=True)
class Suggestion:
    """What the operator is offered for one input of one target: a default, and the
    choices when the answer is one of a few."""

    default: str | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Input:
    """One value an action asks for. `parse` turns the text into the value or raises
    ValueError saying why not. An input that is not `asked` comes with the selection (the
    namespace of the selected deployment, the selected alert's labels); on the command line
    every input is `--set NAME=VALUE`."""

    name: str
    prompt: str
    parse: Callable[[str], Any] = text
    default: str | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False  # may be left out (then absent from the params)
    asked: bool = True
    suggest: Suggest | None = None
    show: Callable[[Any], str] = show_value  # a parsed value as the operator reads it back

    def value(self, raw: str) -> Any:
        if self.choices and raw.strip() not in self.choices:
            raise InputError(f"{self.name}: choose one of {', '.join(self.choices)}")
        try:
            return self.parse(raw)
        except ValueError as exc:
            raise InputError(f"{self.name}: {exc}") from None


@dataclass(frozen=True)
class Actor:
    """Who is acting, from which console, in which mode."""

    operator: str
    role: str
    console_id: str
    read_only: bool = False
    dry_run: bool = False


@dataclass(frozen=True)
class Preview:
    """What the action will do, in words and as the exact calls (secrets masked)."""

    summary: str
    calls: tuple[str, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Result:
    """What `run`/`verify` report: a message, audit detail (no secrets), and at most one
    secret to show the operator once (a new panel password), which is never recorded."""

    message: str
    detail: Mapping[str, Any] = field(default_factory=dict)
    secret: str | None = field(default=None, repr=False)


class ActionFailed(Exception):
    """The action ran and failed; `hint` names where the operator should look next."""

    def __init__(self, message: str, *, hint: str | None = None, detail: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.hint = hint
        self.detail = dict(detail or {})


@dataclass(frozen=True)
class Outcome:
    action: str
    target: str
    status: str  # ok | failed | unknown | refused | busy | dry-run
    message: str
    detail: Mapping[str, Any] = field(default_factory=dict)
    hint: str | None = None
    secret: str | None = field(default=None, repr=False)
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


Check = Callable[["ActionEnv", "asyncpg.Connection", str, Mapping[str, Any]], Awaitable[str | None]]
Run = Callable[
    ["ActionEnv", str, Mapping[str, Any], "asyncpg.Connection | None", Progress], Awaitable[Result]
]
Verify = Callable[["ActionEnv", str, Mapping[str, Any], Result, Progress], Awaitable[Result]]
MakePreview = Callable[["ActionEnv", str, Mapping[str, Any]], Awaitable[Preview]]
Locate = Callable[["ActionEnv", str], Awaitable[str]]


@dataclass(frozen=True)
class Action:
    """One runbook action, declared once. The key binding, the palette entry, the help
    text, `opsconsole act`, the inputs asked, role and read-only enforcement, dry-run,
    the claim and the audit trail all come from here.

    `check` re-reads the target inside the transaction (SELECT ... FOR UPDATE) and returns
    why the action cannot run, or None. With `in_transaction`, `run` gets that same
    connection and its changes commit with the lock still held; otherwise the transaction
    ends before `run` (needed when the call itself writes the row, as the provisioning
    function does) and the claim on the target keeps other consoles off it.
    """

    name: str
    title: str
    key: str
    role: str
    confirmation: Confirmation
    help: str
    target_kind: str
    preview: MakePreview
    check: Check
    run: Run
    verify: Verify | None = None
    in_transaction: bool = False
    inputs: tuple[Input, ...] = ()
    # What is selected on screen, when that is not the target itself (an order, for the
    # panel sync of its customer), and how to get from it to the target.
    selects: str = ""
    locate: Locate | None = None
    target_input: str | None = None  # the target is this input's value (an incident's title)
    audit_params: tuple[str, ...] = ()  # which params are recorded (never secrets)
    verb: str = ""  # "retrying" in "alice is retrying order 8f3c..."
    # Destructive only for some params (scaling to 0): those need the typed confirmation.
    typed_when: Callable[[Mapping[str, Any]], bool] | None = None
    short: str = ""  # the footer's word for it ("Retry"); the title everywhere else
    # Where one change at a time is enforced: (kind, key) of the thing changed.
    claim_on: Callable[[str, Mapping[str, Any]], tuple[str, str]] | None = None
    # What a destructive action's operator types, when not the target (a restore: the name
    # of the database it overwrites).
    confirm_word: Callable[[str, Mapping[str, Any]], str] | None = None

    @property
    def doing(self) -> str:
        return self.verb or self.title.lower()

    @property
    def selection_kind(self) -> str:
        return self.selects or self.target_kind

    def confirmation_for(self, params: Mapping[str, Any]) -> Confirmation:
        """y/n, or the typed target when the action (or these params) is destructive."""
        if self.confirmation is Confirmation.TYPED or (self.typed_when and self.typed_when(params)):
            return Confirmation.TYPED
        return Confirmation.YES_NO

    def typed_word(self, target: str, params: Mapping[str, Any]) -> str:
        """What the operator types to confirm this destructive action."""
        return self.confirm_word(target, params) if self.confirm_word else target

    def claim_key(self, target: str, params: Mapping[str, Any]) -> tuple[str, str]:
        return self.claim_on(target, params) if self.claim_on else (self.target_kind, target)

    def input(self, name: str) -> Input | None:
        return next((i for i in self.inputs if i.name == name), None)

    def parse(self, raw: Mapping[str, str]) -> dict[str, Any]:
        """The params from the operator's text for each input; raises InputError for an
        unknown name, a missing required input or a value that does not parse."""
        unknown = [k for k in raw if self.input(k) is None]
        if unknown:
            names = ", ".join(i.name for i in self.inputs) or "none"
            raise InputError(f"{self.name} has no input {', '.join(sorted(unknown))} (its inputs: {names})")
        params: dict[str, Any] = {}
        for spec in self.inputs:
            given = raw.get(spec.name)
            if given is None:
                given = spec.default
            if given is None or (spec.optional and not str(given).strip()):
                if not spec.optional:
                    raise InputError(f"{spec.name} is needed: {spec.prompt}")
                continue
            params[spec.name] = spec.value(str(given))
        return params

    def shown_params(self, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(name, value as the operator reads it) for each input given, in declared order."""
        return [(i.name, i.show(params[i.name])) for i in self.inputs if i.name in params]

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "key": self.key, "role": self.role,
            "target_kind": self.target_kind, "selects": self.selection_kind,
            "confirmation": self.confirmation.value if self.typed_when is None else "typed when destructive",
            "help": self.help,
            "inputs": [{"name": i.name, "prompt": i.prompt, "default": i.default, "choices": list(i.choices),
                        "optional": i.optional, "asked": i.asked} for i in self.inputs],
        }  # fmt: skip


@dataclass(frozen=True)
class ActionEnv:
    services: Services
    actor: Actor


@dataclass(frozen=True)
class Plan:
    """What the operator sees before confirming: the preview of exactly these params and
    whether it may run. Sealed by the engine that made it: it runs only as shown."""

    action: Action
    target: str
    params: Mapping[str, Any]
    preview: Preview
    refusal: str | None  # why it cannot run now (role, read-only, precondition, claim)
    confirmation: Confirmation = Confirmation.YES_NO
    seal: str = ""

    @property
    def typed_word(self) -> str:
        """What the operator types to confirm it, when it is destructive."""
        return self.action.typed_word(self.target, self.params)


def short_id(target: str) -> str:
    """An order or user id (a uuid) as its first 8 characters; any other name whole."""
    return target[:8] + "…" if len(target) == 36 and target.count("-") == 4 else target
