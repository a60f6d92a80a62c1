"""The Kubernetes runbook actions (the ops manual's Scaling and Database Corruption steps):
scale a deployment (typed confirmation when scaling to 0), rollout restart, scale an
Agones fleet. Target is the object's name; params carry namespace and context. Each
re-reads its object from the API just before the change."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from services.runbook import (
    Action,
    ActionEnv,
    ActionFailed,
    Confirmation,
    Input,
    Preview,
    Progress,
    Result,
    Suggestion,
)

MAX_REPLICAS = 200  # a typo guard: nobody means 3000 bot replicas
VERIFY_TIMEOUT = 30.0


def parse_replicas(text: str | int) -> int:
    """Replicas from what the operator typed; raises ValueError with a message."""
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ValueError(f"replicas {text!r} is not a whole number") from None
    if not 0 <= value <= MAX_REPLICAS:
        raise ValueError(f"replicas must be between 0 and {MAX_REPLICAS}, not {value}")
    return value


def parse_name(text: str) -> str:
    """A namespace or context name: an RFC 1123 label (lower-case letters, digits, '-')."""
    value = text.strip()
    if not value or len(value) > 63 or not all(c.isdigit() or ("a" <= c <= "z") or c == "-" for c in value) \
            or value[0] == "-" or value[-1] == "-":  # fmt: skip
        raise ValueError(f"{text!r} is not a valid name (lower-case letters, digits and '-', at most 63)")
    return value


def parse_context(text: str) -> str:
    value = text.strip()
    if not value or len(value) > 253 or any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError(f"{text!r} is not a kubeconfig context name")
    return value


async def _namespace_of_context(env: ActionEnv, target: str, given: Mapping[str, str]) -> Suggestion:
    return Suggestion(env.services.kube.where(given.get("context") or None)[1])


def _current(kind: str):
    async def suggest(env: ActionEnv, target: str, given: Mapping[str, str]) -> Suggestion:
        ns = given.get("namespace") or env.services.kube.where(given.get("context") or None)[1]
        kube = env.services.kube
        try:
            if kind == "deployment":
                found = await kube.read_deployment(ns, target, given.get("context") or None)
                return Suggestion(None if found is None else str(found.desired))
            found = await kube.read_fleet(ns, target, given.get("context") or None)
            return Suggestion(None if found is None else str(found.replicas))
        except Exception:  # a suggestion is a convenience: no answer means no default
            return Suggestion()

    return suggest


def _where_inputs() -> tuple[Input, ...]:
    return (
        Input("context", "kubeconfig context (default: the current one)", parse_context, optional=True,
              asked=False),
        Input("namespace", "namespace (default: the context's)", parse_name, asked=False,
              suggest=_namespace_of_context),
    )  # fmt: skip


def _claim_on(kind: str):
    def claim(target: str, params: Mapping[str, Any]) -> tuple[str, str]:
        ns, context = _where(params)
        return kind, f"{context}:{ns}/{target}" if context else f"{ns}/{target}"

    return claim


def _where(params: Mapping[str, Any]) -> tuple[str, str | None]:
    return str(params.get("namespace") or "default"), params.get("context")


def _replicas(params: Mapping[str, Any]) -> int:
    return parse_replicas(params.get("replicas", ""))


# -- scale deployment -------------------------------------------------------------------


async def _scale_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    ns, context = _where(params)
    replicas = _replicas(params)
    current = await env.services.kube.read_deployment(ns, target, context)
    now = f" (now {current.desired}, {current.ready} ready)" if current else ""
    warnings = []
    if replicas == 0:
        warnings.append(f"every {target} pod stops: the service is down until it is scaled up again")
    for hpa in await env.services.kube.autoscalers_of(ns, target, context):
        if replicas and not hpa.min_replicas <= replicas <= hpa.max_replicas:
            warnings.append(
                f"HPA {hpa.name} keeps {target} between {hpa.min_replicas} and {hpa.max_replicas} "
                "replicas: it will undo this scale (change the HPA to make it stick)"
            )
        elif replicas:
            warnings.append(f"HPA {hpa.name} manages {target} ({hpa.min_replicas}-{hpa.max_replicas}) "
                            "and may change the count again with load")  # fmt: skip
    return Preview(
        f"Scale deployment {ns}/{target} to {replicas} replicas{now}.",
        (env.services.kube.scale_call_text("deployment", ns, target, replicas),),
        tuple(warnings),
    )


def _scaling(kind: str):
    """The check and run of scaling a deployment or a fleet: re-read the object, refuse a
    missing one or a no-op, patch its scale subresource."""
    unit = "replicas" if kind == "deployment" else "gameservers"

    async def current(env: ActionEnv, ns: str, name: str, context) -> int | None:
        kube = env.services.kube
        if kind == "deployment":
            found = await kube.read_deployment(ns, name, context)
            return None if found is None else found.desired
        found = await kube.read_fleet(ns, name, context)
        return None if found is None else found.replicas

    async def check(env: ActionEnv, conn, target: str, params: Mapping[str, Any]) -> str | None:
        ns, context = _where(params)
        try:
            replicas = _replicas(params)
        except ValueError as exc:
            return str(exc)
        now = await current(env, ns, target, context)
        if now is None:
            return f"there is no {kind} {ns}/{target}"
        if now == replicas:
            return f"{kind} {ns}/{target} already asks for {replicas} {unit}"
        return None

    async def run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
        ns, context = _where(params)
        replicas = _replicas(params)
        before = await current(env, ns, target, context)
        progress(f"patching {ns}/{target}/scale")
        scale = env.services.kube.scale_deployment if kind == "deployment" else env.services.kube.scale_fleet
        now = await scale(ns, target, replicas, context)
        return Result(f"{kind} {ns}/{target} scaled to {now}", {"from": before, "to": now})

    return check, run


_scale_check, _scale_run = _scaling("deployment")
_fleet_check, _fleet_run = _scaling("fleet")


async def _wait_ready(env: ActionEnv, ns: str, name: str, context, want, progress: Progress, what: str):
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        current = await env.services.kube.read_deployment(ns, name, context)
        if current is not None and want(current):
            return current
        if loop.time() - started > VERIFY_TIMEOUT:
            state = f"{current.ready}/{current.desired} ready" if current else "gone"
            raise ActionFailed(f"{what}, but after {VERIFY_TIMEOUT:.0f} s it is {state}: check its pods")
        progress(f"waiting: {current.ready if current else 0}/{current.desired if current else 0} ready")
        await asyncio.sleep(0.5)


async def _scale_verify(env: ActionEnv, target: str, params, result: Result, progress: Progress) -> Result:
    ns, context = _where(params)
    replicas = _replicas(params)
    current = await _wait_ready(
        env, ns, target, context, lambda d: d.ready == replicas and d.desired == replicas, progress,
        f"scaled to {replicas}",
    )  # fmt: skip
    return Result(f"deployment {ns}/{target}: {current.ready}/{current.desired} ready", result.detail)


SCALE_DEPLOYMENT = Action(
    name="scale_deployment",
    short="Scale",
    title="Scale deployment",
    key="S",
    role="oncall",
    confirmation=Confirmation.YES_NO,
    typed_when=lambda params: str(params.get("replicas", "")).strip() == "0",
    help="set a deployment's replicas (scaling to 0 needs its name typed)",
    target_kind="deployment",
    preview=_scale_preview,
    check=_scale_check,
    run=_scale_run,
    verify=_scale_verify,
    inputs=(
        *_where_inputs(),
        Input("replicas", "how many replicas?", parse_replicas, suggest=_current("deployment")),
    ),
    claim_on=_claim_on("deployment"),
    audit_params=("namespace", "context", "replicas"),
    verb="scaling",
)


# -- rollout restart --------------------------------------------------------------------


async def _restart_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    ns, _ = _where(params)
    return Preview(
        f"Rollout restart {ns}/{target}: stamp the pod template so every pod is replaced, "
        "as `kubectl rollout restart` does.",
        (env.services.kube.restart_call_text(ns, target),),
    )


async def _restart_check(env: ActionEnv, conn, target: str, params: Mapping[str, Any]) -> str | None:
    ns, context = _where(params)
    current = await env.services.kube.read_deployment(ns, target, context)
    if current is None:
        return f"there is no deployment {ns}/{target}"
    if current.desired == 0:
        return f"deployment {ns}/{target} is scaled to 0: there is nothing to restart"
    return None


async def _restart_run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
    ns, context = _where(params)
    progress(f"patching {ns}/{target}")
    at = await env.services.kube.restart_deployment(ns, target, context)
    return Result(f"deployment {ns}/{target} restarted at {at}", {"restarted_at": at})


async def _restart_verify(env: ActionEnv, target: str, params, result: Result, progress: Progress) -> Result:
    ns, context = _where(params)
    at = result.detail.get("restarted_at")
    current = await _wait_ready(
        env, ns, target, context,
        lambda d: d.restarted_at == at and d.ready == d.desired and d.updated == d.desired,
        progress, "restarted",
    )  # fmt: skip
    message = f"deployment {ns}/{target} restarted: {current.ready}/{current.desired} ready"
    return Result(message, result.detail)


RESTART_DEPLOYMENT = Action(
    name="rollout_restart",
    short="Restart",
    title="Rollout restart",
    key="B",
    role="oncall",
    confirmation=Confirmation.YES_NO,
    help="replace every pod of a deployment (the restartedAt patch kubectl uses)",
    target_kind="deployment",
    preview=_restart_preview,
    check=_restart_check,
    run=_restart_run,
    verify=_restart_verify,
    inputs=_where_inputs(),
    claim_on=_claim_on("deployment"),
    audit_params=("namespace", "context"),
    verb="restarting",
)


# -- scale fleet ------------------------------------------------------------------------


async def _fleet_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    ns, context = _where(params)
    replicas = _replicas(params)
    current = await env.services.kube.read_fleet(ns, target, context)
    warnings = []
    if current is not None and replicas < current.allocated:
        warnings.append(
            f"{current.allocated} gameservers are allocated (players on them): Agones keeps those, "
            "so the fleet cannot shrink below that until they end"
        )
    now = ""
    if current:
        now = f" (now {current.replicas}: {current.ready} ready, {current.allocated} allocated)"
    return Preview(
        f"Scale Agones fleet {ns}/{target} to {replicas} gameservers{now}. A fleet autoscaler, "
        "if one targets this fleet, may change it again.",
        (env.services.kube.scale_call_text("fleet", ns, target, replicas),),
        tuple(warnings),
    )


SCALE_FLEET = Action(
    name="scale_fleet",
    short="Scale fleet",
    title="Scale fleet",
    key="F",
    role="oncall",
    confirmation=Confirmation.YES_NO,
    typed_when=lambda params: str(params.get("replicas", "")).strip() == "0",
    help="set an Agones fleet's gameserver count (to 0 needs its name typed)",
    target_kind="fleet",
    preview=_fleet_preview,
    check=_fleet_check,
    run=_fleet_run,
    inputs=(
        *_where_inputs(),
        Input("replicas", "how many replicas?", parse_replicas, suggest=_current("fleet")),
    ),
    claim_on=_claim_on("fleet"),
    audit_params=("namespace", "context", "replicas"),
    verb="scaling",
)

KUBE_ACTIONS = (SCALE_DEPLOYMENT, RESTART_DEPLOYMENT, SCALE_FLEET)
