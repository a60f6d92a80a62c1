"""The runbook engine: every action is declared once (role, preview, precondition,
confirmation, run, verify, audit detail) and run the same way from a screen or the CLI:
role and read-only checks, a claim no other console can take, an audit intent, the
precondition re-checked just before the change, the call, verification, the outcome."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from services.audit import AuditService
from services.errors import ServiceError

if TYPE_CHECKING:
    import asyncpg

    from services.bundle import Services

log = logging.getLogger(__name__)

ROLES = ("viewer", "support", "oncall", "admin")
Progress = Callable[[str], None]


def role_rank(role: str) -> int:
    return ROLES.index(role) if role in ROLES else 0


class Confirmation(Enum):
    YES_NO = "y/n"  # reversible
    TYPED = "typed"  # destructive: the operator types the target id


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
    status: str  # ok | failed | refused | busy | dry-run
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


@dataclass(frozen=True)
class Action:
    """One runbook action, declared once. The key binding, the palette entry, the help
    text, role and read-only enforcement, dry-run and the audit trail all come from here.

    `check` re-reads the target inside the transaction (SELECT ... FOR UPDATE) and returns
    why the action cannot run, or None. With `in_transaction`, `run` gets that same
    connection and its changes commit with the lock still held; otherwise the transaction
    ends before `run` (needed when the call itself writes the row, as the provisioning
    function does) and the claim alone keeps other consoles off the target.
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
    audit_params: tuple[str, ...] = ()  # which params are recorded (never secrets)
    verb: str = ""  # "retrying" in "alice is retrying order 8f3c..."
    # Destructive only for some params (scaling to 0): those need the typed confirmation.
    typed_when: Callable[[Mapping[str, Any]], bool] | None = None

    @property
    def doing(self) -> str:
        return self.verb or self.title.lower()

    def confirmation_for(self, params: Mapping[str, Any]) -> Confirmation:
        """y/n, or the typed target when the action (or these params) is destructive."""
        if self.confirmation is Confirmation.TYPED or (self.typed_when and self.typed_when(params)):
            return Confirmation.TYPED
        return Confirmation.YES_NO


@dataclass(frozen=True)
class ActionEnv:
    services: Services
    actor: Actor


@dataclass(frozen=True)
class Plan:
    """What the operator sees before confirming: the preview and whether it may run."""

    action: Action
    target: str
    preview: Preview
    refusal: str | None  # why it cannot run now (role, read-only, precondition, claim)
    confirmation: Confirmation = Confirmation.YES_NO


def short_id(target: str) -> str:
    return target[:8] + "…" if len(target) > 12 else target


class Runbook:
    """Runs actions for one actor. Used by screens (in workers) and by the CLI."""

    def __init__(self, services: Services, actor: Actor):
        self.services = services
        self.actor = actor
        self.env = ActionEnv(services, actor)
        self.audit = AuditService(services.postgres)

    def forbidden(self, action: Action) -> str | None:
        """Why this actor may not run `action` at all, or None."""
        if self.actor.read_only:
            return "the console is read-only: no action can run"
        if role_rank(self.actor.role) < role_rank(action.role):
            return f"{action.title} needs the {action.role} role; {self.actor.operator} is {self.actor.role}"
        return None

    async def busy(self, action: Action, target: str) -> str | None:
        holder = await self.audit.holder(action.name, target)
        if holder is None or holder.console_id == self.actor.console_id:
            return None
        return (
            f"{holder.operator} is {action.doing} {action.target_kind} {short_id(target)} "
            f"({holder.seconds:.0f} s)"
        )

    async def plan(self, action: Action, target: str, params: Mapping[str, Any] | None = None) -> Plan:
        """The preview and, read now, whether the action could run; changes nothing."""
        params = params or {}
        preview = await action.preview(self.env, target, params)
        refusal = self.forbidden(action) or await self.busy(action, target)
        if refusal is None:
            async with self.services.postgres.connection() as conn, _rolled_back(conn):
                refusal = await action.check(self.env, conn, target, params)
        return Plan(action, target, preview, refusal, action.confirmation_for(params))

    async def execute(
        self,
        action: Action,
        target: str,
        params: Mapping[str, Any] | None = None,
        progress: Progress | None = None,
    ) -> Outcome:
        """Run `action` on `target` with every safeguard (a destructive one only with
        params["confirm"] equal to the target, as the operator typed it); never raises for the action's own
        failures (they come back as an Outcome), only when the audit log cannot be written."""
        params = params or {}
        progress = progress or (lambda _m: None)
        started = time.perf_counter()
        if self.actor.read_only:  # a read-only console writes nothing, not even audit rows
            return Outcome(action.name, target, "refused", self.forbidden(action) or "read-only")
        detail = {k: params[k] for k in action.audit_params if k in params}
        intent = await self._record(action, target, "intent", detail=detail)

        def finish(status: str, message: str, **extra: Any) -> Outcome:
            return Outcome(
                action.name, target, status, message,
                duration_ms=int((time.perf_counter() - started) * 1000), **extra,
            )  # fmt: skip

        refusal = self.forbidden(action)
        if refusal is None and action.confirmation_for(params) is Confirmation.TYPED:
            if str(params.get("confirm", "")).strip() != target:
                what = "id" if action.target_kind == "order" else "name"
                refusal = f"not confirmed: type the {action.target_kind} {what} {target} to confirm"
        if refusal:
            return await self._close(intent, finish("refused", refusal))
        claim = await self.audit.claim(action.name, target, self.actor.operator, self.actor.console_id)
        if claim is None:
            return await self._close(intent, finish("busy", await self.busy(action, target) or "busy"))
        try:
            try:
                outcome = await self._run(action, target, params, progress, finish)
            except asyncio.CancelledError:
                # The console closed mid-action: the outcome is unknown, and the log says so.
                await asyncio.shield(
                    self._close(
                        intent,
                        finish(
                            "failed",
                            "interrupted: the console closed before the action finished; check its target",
                        ),
                    )
                )
                raise
            return await self._close(intent, outcome)
        finally:
            with contextlib.suppress(ServiceError):
                await self.audit.release(action.name, target, self.actor.console_id)

    async def _run(self, action, target, params, progress, finish) -> Outcome:
        try:
            async with self.services.postgres.connection() as conn:
                tx = conn.transaction()
                await tx.start()
                open_tx = True
                try:
                    progress("checking the precondition")
                    refusal = await action.check(self.env, conn, target, params)
                    if refusal or self.actor.dry_run:
                        open_tx = False
                        await tx.rollback()
                        if refusal:
                            return finish("refused", refusal)
                        return finish("dry-run", "dry run: the precondition holds; nothing was changed")
                    if action.in_transaction:
                        result = await action.run(self.env, target, params, conn, progress)
                    open_tx = False
                    await tx.commit()
                    if not action.in_transaction:
                        result = await action.run(self.env, target, params, None, progress)
                except BaseException:
                    if open_tx:
                        with contextlib.suppress(Exception):
                            await tx.rollback()
                    raise
            if action.verify is not None:
                progress("verifying")
                result = await action.verify(self.env, target, params, result, progress)
        except ActionFailed as exc:
            return finish("failed", str(exc), hint=exc.hint, detail=exc.detail)
        except ServiceError as exc:
            return finish("failed", str(exc))
        except Exception as exc:  # a bug or an unexpected library error: still audited
            log.exception("%s on %s failed unexpectedly", action.name, target)
            return finish("failed", f"unexpected error: {type(exc).__name__}: {exc}")
        return finish("ok", result.message, detail=dict(result.detail), secret=result.secret)

    async def _record(self, action: Action, target: str, phase: str, **fields: Any) -> int:
        return await self.audit.record(
            operator=self.actor.operator, role=self.actor.role, action=action.name,
            target=target, phase=phase, **fields,
        )  # fmt: skip

    async def _close(self, intent_id: int, outcome: Outcome) -> Outcome:
        """Write the outcome row for `intent_id` (the secret is never part of it)."""
        status = "refused" if outcome.status == "busy" else outcome.status
        detail = dict(outcome.detail)
        if outcome.hint:
            detail["hint"] = outcome.hint
        try:
            await self.audit.record(
                operator=self.actor.operator, role=self.actor.role, action=outcome.action,
                target=outcome.target, phase="outcome", outcome=status, intent_id=intent_id,
                duration_ms=outcome.duration_ms, detail=detail,
                error=None if outcome.status in ("ok", "dry-run") else outcome.message,
            )  # fmt: skip
        except ServiceError as exc:
            log.error("audit outcome for %s %s not written: %s", outcome.action, outcome.target, exc)
            return Outcome(
                outcome.action, outcome.target, outcome.status,
                f"{outcome.message} (the audit outcome could not be written: {exc})",
                outcome.detail, outcome.hint, outcome.secret, outcome.duration_ms,
            )  # fmt: skip
        return outcome


@contextlib.asynccontextmanager
async def _rolled_back(conn: asyncpg.Connection):
    tx = conn.transaction()
    await tx.start()
    try:
        yield
    finally:
        await tx.rollback()
