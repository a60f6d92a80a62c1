"""The runbook engine: every action (services.action) runs the same way from a screen or
the CLI. Plan: the inputs parsed, the preview built from them, the refusal read now; the
plan is sealed. Execute: only a sealed plan, exactly as shown: role and read-only checks,
an audit intent, a claim on the target no other console can take, the precondition
re-checked just before the change, the call, verification, the outcome (retried until the
database takes it)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from services.action import (  # noqa: F401  (re-exported: action modules import from here)
    ROLES,
    Action,
    ActionEnv,
    ActionFailed,
    Actor,
    Confirmation,
    Input,
    InputError,
    Outcome,
    Plan,
    Preview,
    Progress,
    Result,
    Suggestion,
    labels,
    role_rank,
    short_id,
    show_value,
    text,
    yes_no,
)
from services.claims import HEARTBEAT_SECONDS, DeadClaim
from services.errors import ServiceError, Unreachable

if TYPE_CHECKING:
    import asyncpg

    from services.bundle import Services

log = logging.getLogger(__name__)

SWEEP_EVERY = 5.0  # seconds between two looks for dead consoles' actions when planning
OUTCOME_RETRY_SECONDS = 60.0  # how long an outcome write is retried while the database is away


def _canonical(action: Action, target: str, params: Mapping[str, Any]) -> bytes:
    return json.dumps([action.name, target, dict(params)], sort_keys=True, default=str).encode()


class Runbook:
    """Runs actions for one actor. Used by screens (in workers) and by the CLI."""

    def __init__(self, services: Services, actor: Actor, *, outcome_retry: float = OUTCOME_RETRY_SECONDS):
        self.services = services
        self.actor = actor
        self.env = ActionEnv(services, actor)
        self.audit = services.audit
        self.claims = services.claims
        self.outcome_retry = outcome_retry
        self._key = secrets.token_bytes(32)  # seals this runbook's plans
        self._swept_at = float("-inf")

    # -- what may run ---------------------------------------------------------------

    def forbidden(self, action: Action) -> str | None:
        """Why this actor may not run `action` at all, or None."""
        if self.actor.read_only:
            return "the console is read-only: no action can run"
        if role_rank(self.actor.role) < role_rank(action.role):
            return f"{action.title} needs the {action.role} role; {self.actor.operator} is {self.actor.role}"
        return None

    async def busy(self, action: Action, target: str, params: Mapping[str, Any]) -> str | None:
        kind, key = action.claim_key(target, params)
        holder = await self.claims.holder(kind, key)
        if holder is None or holder.console_id == self.actor.console_id:
            return None
        doing = action.doing if holder.action == action.name else _doing(holder.action)
        return f"{holder.operator} is {doing} {kind} {short_id(key)} ({holder.seconds:.0f} s)"

    # -- inputs and the plan --------------------------------------------------------

    async def locate(self, action: Action, selected: str) -> str:
        """The target for what is selected (an order's customer for the panel sync)."""
        if action.locate is None:
            return selected
        return await action.locate(self.env, selected)

    async def suggest(self, action: Action, target: str, given: Mapping[str, str]) -> dict[str, Suggestion]:
        """Per asked input, the default and choices to offer for this target."""
        out = {}
        for spec in action.inputs:
            suggestion = Suggestion(given.get(spec.name, spec.default), spec.choices)
            if spec.suggest is not None and spec.name not in given:
                found = await spec.suggest(self.env, target, given)
                suggestion = Suggestion(found.default if found.default is not None else suggestion.default,
                                        found.choices or suggestion.choices)  # fmt: skip
            out[spec.name] = suggestion
        return out

    def target_of(self, action: Action, target: str, params: Mapping[str, Any]) -> str:
        return str(params.get(action.target_input) or target) if action.target_input else target

    async def plan(self, action: Action, target: str, params: Mapping[str, Any] | None = None) -> Plan:
        """The preview of exactly `params` and, read now, whether the action could run;
        changes nothing. The plan is sealed: `run` runs it only unchanged."""
        params = MappingProxyType(dict(params or {}))
        target = self.target_of(action, target, params)
        if time.monotonic() - self._swept_at >= SWEEP_EVERY:  # not once per order of a bulk plan
            self._swept_at = time.monotonic()
            await self.sweep()
        preview = await action.preview(self.env, target, params)
        refusal = self.forbidden(action) or await self.busy(action, target, params)
        if refusal is None:
            async with self.services.postgres.connection() as conn, _rolled_back(conn):
                refusal = await action.check(self.env, conn, target, params)
        confirmation = action.confirmation_for(params)
        seal = self._seal(action, target, params)
        return Plan(action, target, params, preview, refusal, confirmation, seal)

    def _seal(self, action: Action, target: str, params: Mapping[str, Any]) -> str:
        return hmac.new(self._key, _canonical(action, target, params), hashlib.sha256).hexdigest()

    # -- running --------------------------------------------------------------------

    async def execute(
        self,
        action: Action,
        target: str,
        params: Mapping[str, Any] | None = None,
        progress: Progress | None = None,
    ) -> Outcome:
        """Plan and run in one step, for callers that showed the plan another way (a bulk
        retry's list) or none (tests): params["confirm"] is the typed confirmation."""
        params = dict(params or {})
        confirmed = params.pop("confirm", None)
        plan = await self.plan(action, target, params)
        return await self.run(plan, confirmed=confirmed, progress=progress)

    async def run(
        self, plan: Plan, *, confirmed: str | None = None, progress: Progress | None = None
    ) -> Outcome:
        """Run `plan` exactly as it was shown, with every safeguard (a destructive one only
        when `confirmed` is the target as the operator typed it). Never raises for the
        action's own failures (they come back as an Outcome), only when the intent cannot
        be written to the audit log (then nothing was done)."""
        action, target, params = plan.action, plan.target, plan.params
        last = [""]

        def report(message: str) -> None:
            last[0] = message
            (progress or (lambda _m: None))(message)

        started = time.perf_counter()

        def finish(status: str, message: str, **extra: Any) -> Outcome:
            return Outcome(
                action.name, target, status, message,
                duration_ms=int((time.perf_counter() - started) * 1000), **extra,
            )  # fmt: skip

        if self.actor.read_only:  # a read-only console writes nothing, not even audit rows
            return finish("refused", self.forbidden(action) or "read-only")
        if not hmac.compare_digest(plan.seal, self._seal(action, target, params)):
            return finish("refused", "the plan was changed after it was shown: nothing was run")
        detail = {k: show_value(params[k]) if isinstance(params[k], bool) else params[k]
                  for k in action.audit_params if k in params}  # fmt: skip
        detail["console"] = self.actor.console_id
        intent = await self._record(action, target, "intent", detail=detail)

        refusal = self.forbidden(action)
        if refusal is None and action.confirmation_for(params) is not plan.confirmation:
            refusal = "the plan's confirmation does not match its params: nothing was run"
        if refusal is None and plan.confirmation is Confirmation.TYPED and not self.actor.dry_run:
            word = action.typed_word(target, params)
            if str(confirmed or "").strip() != word:
                what = "id" if action.target_kind in ("order", "user", "incident") else "name"
                refusal = (f"not confirmed: type the {action.target_kind} {what} {target} to confirm"
                           if word == target else f"not confirmed: type {word} to confirm")  # fmt: skip
        if refusal:
            return await self._close(intent, finish("refused", refusal), report)
        kind, key = action.claim_key(target, params)
        claim, dead = await self.claims.take(kind, key, action.name, self.actor.operator,
                                             self.actor.console_id, intent)  # fmt: skip
        if dead is not None:
            await self._abandon(dead)
        if claim is None:
            holder = await self.busy(action, target, params)
            return await self._close(intent, finish("busy", holder or "busy"), report)
        beat = asyncio.create_task(self._heartbeat(kind, key, last))
        try:
            try:
                outcome = await self._run(action, target, params, report, finish)
            except asyncio.CancelledError:
                # The console closed mid-action: the outcome is unknown, and the log says so.
                interrupted = finish("unknown", "interrupted: the console closed before the action finished; "
                                     f"check {action.target_kind} {target}")  # fmt: skip
                await asyncio.shield(self._close(intent, interrupted, report, retry=5.0))
                raise
            return await self._close(intent, outcome, report)
        finally:
            beat.cancel()
            with contextlib.suppress(ServiceError):
                await self.claims.release(kind, key, self.actor.console_id)

    async def _heartbeat(self, kind: str, key: str, last: list[str]) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            with contextlib.suppress(ServiceError):
                await self.claims.heartbeat(kind, key, self.actor.console_id, last[0][:500])

    async def _run(self, action: Action, target, params, progress: Progress, finish) -> Outcome:
        sent = False  # once the change may have left the console, a lost answer is "unknown"
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
                        sent = True
                        result = await action.run(self.env, target, params, conn, progress)
                    open_tx = False
                    await tx.commit()
                    if not action.in_transaction:
                        sent = True
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
            if sent and isinstance(exc, Unreachable):
                return finish("unknown", f"the call was sent, its result is unknown ({exc}): "
                              f"check {action.target_kind} {target}")  # fmt: skip
            return finish("failed", str(exc))
        except Exception as exc:  # a bug or an unexpected library error: still audited
            log.exception("%s on %s failed unexpectedly", action.name, target)
            if sent:
                return finish("unknown", f"unexpected error after the call was sent: {type(exc).__name__}: "
                              f"{exc}; check {action.target_kind} {target}")  # fmt: skip
            return finish("failed", f"unexpected error: {type(exc).__name__}: {exc}")
        return finish("ok", result.message, detail=dict(result.detail), secret=result.secret)

    # -- the audit trail ------------------------------------------------------------

    async def _record(self, action: Action, target: str, phase: str, **fields: Any) -> int:
        return await self.audit.record(
            operator=self.actor.operator, role=self.actor.role, action=action.name,
            target=target, phase=phase, **fields,
        )  # fmt: skip

    async def _close(self, intent_id: int, outcome: Outcome, progress: Progress,
                     retry: float | None = None) -> Outcome:  # fmt: skip
        """Write the outcome row for `intent_id` (the secret is never part of it). While the
        database is away the write is retried, so the log ends up with it."""
        status = "refused" if outcome.status == "busy" else outcome.status
        detail = dict(outcome.detail)
        if outcome.hint:
            detail["hint"] = outcome.hint
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.outcome_retry if retry is None else retry)
        wait = 0.25
        while True:
            try:
                await self.audit.record(
                    operator=self.actor.operator, role=self.actor.role, action=outcome.action,
                    target=outcome.target, phase="outcome", outcome=status, intent_id=intent_id,
                    duration_ms=outcome.duration_ms, detail=detail,
                    error=None if outcome.status in ("ok", "dry-run") else outcome.message,
                )  # fmt: skip
                return outcome
            except ServiceError as exc:
                if loop.time() + wait > deadline:
                    log.error("audit outcome for %s %s not written: %s", outcome.action, outcome.target, exc)
                    return Outcome(
                        outcome.action, outcome.target, outcome.status,
                        f"{outcome.message} (its outcome is not in the audit log yet: {exc}; another console "
                        "will record it as abandoned)",
                        outcome.detail, outcome.hint, outcome.secret, outcome.duration_ms,
                    )  # fmt: skip
                progress(f"the audit log cannot be written ({exc}); retrying the outcome")
                await asyncio.sleep(wait)
                wait = min(wait * 2, 5.0)

    async def sweep(self) -> int:
        """Record every dead console's unfinished action as abandoned; returns how many."""
        try:
            dead = await self.claims.dead()
        except ServiceError:
            return 0
        for claim in dead:
            await self._abandon(claim)
            with contextlib.suppress(ServiceError):
                await self.claims.drop_dead(claim)
        return len(dead)

    async def _abandon(self, claim: DeadClaim) -> None:
        if claim.intent_id is None:
            return
        with contextlib.suppress(ServiceError):
            intent = await self.claims.open_intent(claim.intent_id)
            if intent is None:
                return
            last = claim.progress or "none reported"
            await self.audit.record(
                operator=intent["operator"], role=intent["role"], action=intent["action"],
                target=intent["target"], phase="outcome", outcome="abandoned", intent_id=claim.intent_id,
                detail={"last_progress": claim.progress, "noticed_by": self.actor.console_id},
                error=f"abandoned: the console running it stopped answering (last progress: {last}); "
                f"check {claim.target_kind} {claim.target}",
            )  # fmt: skip


def _doing(action_name: str) -> str:
    from services.actions import ALL_ACTIONS

    action = ALL_ACTIONS.get(action_name)
    return action.doing if action else action_name.replace("_", " ")


@contextlib.asynccontextmanager
async def _rolled_back(conn: asyncpg.Connection):
    tx = conn.transaction()
    await tx.start()
    try:
        yield
    finally:
        await tx.rollback()
