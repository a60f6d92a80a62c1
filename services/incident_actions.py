"""The incident and alert runbook actions: declare an incident, move it through the plan's
steps, take command, add a note, write the post-mortem fields; silence an alert in
Alertmanager and expire a silence. Each declared once for the runbook engine."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from services.incidents import SEVERITIES, STEPS, lock_incident
from services.postgres import named_queries, query_text
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
    labels,
)

MAX_SILENCE_MINUTES = 7 * 24 * 60


def parse_minutes(text: str | int) -> int:
    """A silence duration from '90', '2h', '30m', '1d'; raises ValueError with a message."""
    value = str(text).strip().lower()
    scale = {"m": 1, "h": 60, "d": 1440}.get(value[-1:], None)
    number = value[:-1] if scale else value
    try:
        minutes = int(float(number) * (scale or 1))
    except ValueError:
        raise ValueError(f"duration {text!r}: type minutes, or e.g. 2h or 1d") from None
    if not 1 <= minutes <= MAX_SILENCE_MINUTES:
        raise ValueError(f"duration must be between 1 minute and 7 days, not {minutes} minutes")
    return minutes


def parse_title(value: str) -> str:
    value = " ".join(value.split())
    if not value or len(value) > 200:
        raise ValueError("the incident needs a title of at most 200 characters")
    return value


def parse_operator(value: str) -> str:
    value = value.strip()
    if not value or len(value) > 64 or any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError(f"{value!r} is not an operator name")
    return value


def parse_optional_text(value: str) -> str:
    if len(value) > 10000:
        raise ValueError(f"at most 10,000 characters, not {len(value):,}")
    return value.strip()


def parse_items(value: str) -> str:
    """Action items, one per line; typed on one line they are separated with ';'."""
    return "\n".join(p.strip() for p in parse_optional_text(value).replace("\n", ";").split(";") if p.strip())


async def _me(env: ActionEnv, target: str, given: Mapping[str, str]) -> Suggestion:
    return Suggestion(env.actor.operator)


async def _next_step(env: ActionEnv, target: str, given: Mapping[str, str]) -> Suggestion:
    incident = await env.services.incidents.get(int(target)) if target.isdigit() else None
    if incident is None:
        return Suggestion()
    following = STEPS[min(STEPS.index(incident.status) + 1, len(STEPS) - 1)]
    return Suggestion(following, tuple(s for s in STEPS if s != incident.status))


def silence_matchers(target: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Equality matchers on the alert's labels (its name at least): this alert and no other."""
    found = {k: v for k, v in (params.get("labels") or {}).items() if k != "alertstate"}
    found.setdefault("alertname", target)
    return [{"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in sorted(found.items())]


# -- declare ----------------------------------------------------------------------------


async def _declare_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    severity = params.get("severity", "")
    level = SEVERITIES.get(severity, ("?", "unknown severity", None))
    alert = f" from alert {params['alert_name']}" if params.get("alert_name") else ""
    return Preview(
        f"Declare a {severity} ({level[0]}: {level[1]}) incident{alert}: {target!r}. Every open console "
        "shows it at once; runbook actions from now on join its timeline.",
        (query_text("declare_incident", title=target, severity=severity, commander=params.get("commander"),
                    alert_name=params.get("alert_name"),
                    alert_labels=json.dumps(params.get("alert_labels") or {}, sort_keys=True),
                    declared_by=env.actor.operator),),
    )  # fmt: skip


async def _declare_check(env: ActionEnv, conn, target: str, params: Mapping[str, Any]) -> str | None:
    if params.get("severity") not in SEVERITIES:
        return f"severity must be one of {', '.join(SEVERITIES)}"
    if not target.strip() or len(target) > 200:
        return "the incident needs a title (at most 200 characters)"
    return None


async def _declare_run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
    q = named_queries()
    incident_id = await q.declare_incident(
        conn, title=target.strip(), severity=params["severity"], commander=params.get("commander"),
        alert_name=params.get("alert_name"), alert_labels=json.dumps(params.get("alert_labels") or {}),
        declared_by=env.actor.operator,
    )  # fmt: skip
    body = f"{params['severity']}: {target.strip()}"
    if params.get("alert_name"):
        body += f" (alert {params['alert_name']})"
    await q.add_incident_event(
        conn, incident_id=incident_id, operator=env.actor.operator, kind="declared", body=body
    )
    if params.get("commander"):
        body = f"{params['commander']} commands it"
        await q.add_incident_event(conn, incident_id=incident_id, operator=env.actor.operator,
                                   kind="commander", body=body)  # fmt: skip
    return Result(f"INC-{incident_id} declared ({params['severity']})", {"incident_id": incident_id})


DECLARE_INCIDENT = Action(
    name="declare_incident", short="Declare", title="Declare incident", key="I", role="oncall",
    confirmation=Confirmation.YES_NO, help="open an incident (P0-P3), from the selected alert or none",
    target_kind="incident", preview=_declare_preview, check=_declare_check, run=_declare_run,
    in_transaction=True, audit_params=("severity", "alert_name", "commander"), verb="declaring",
    target_input="title", inputs=(
        Input("severity", "severity: P0 critical (bot down, payments broken), P1 high (major feature "
              "broken), P2 medium (minor), P3 low (cosmetic)", default="P2", choices=tuple(SEVERITIES)),
        Input("title", "title of the incident", parse_title),
        Input("commander", "who commands it (default: nobody yet; taking command is the first response)",
              parse_operator, optional=True, asked=False),
        Input("alert_name", "the alert it was declared from", optional=True, asked=False),
        Input("alert_labels", "that alert's labels", labels, optional=True, asked=False),
    ),
)  # fmt: skip


def _changing(field: str, query: str, allowed: tuple[str, ...], already: str):
    """The check and run of changing one field of the incident (its step, its severity):
    re-read it locked, refuse a value not allowed or the one it has, write it, and put
    "old → new" on its timeline."""

    async def check(env: ActionEnv, conn, target: str, params: Mapping[str, Any]) -> str | None:
        row = await lock_incident(conn, target)
        if row is None:
            return f"there is no incident {target}"
        if params.get(field) not in allowed:
            return f"{field} must be one of {', '.join(allowed)}"
        if getattr(row, field) == params[field]:
            return f"INC-{target} is already {already}{params[field]}"
        return None

    async def run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
        q = named_queries()
        old = getattr(await lock_incident(conn, target), field)
        await getattr(q, query)(conn, id=int(target), **{field: params[field]})
        await q.add_incident_event(conn, incident_id=int(target), operator=env.actor.operator, kind=field,
                                   body=f"{old} → {params[field]}")  # fmt: skip
        return Result(f"INC-{target}: {old} → {params[field]}", {"from": old})

    return check, run


_severity_check, _severity_run = _changing("severity", "set_incident_severity", tuple(SEVERITIES), "")
_status_check, _status_run = _changing("status", "set_incident_status", STEPS, "in ")


# -- severity ------------------------------------------------------------------------


async def _current_severity(env: ActionEnv, target: str, given: Mapping[str, str]) -> Suggestion:
    incident = await env.services.incidents.get(int(target)) if target.isdigit() else None
    others = tuple(s for s in SEVERITIES if incident is None or s != incident.severity)
    return Suggestion(others[0] if others else None, others)


async def _severity_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    severity = params.get("severity", "")
    level = SEVERITIES.get(severity, ("?", "unknown severity", None))
    return Preview(
        f"Re-grade INC-{target} to {severity} ({level[0]}: {level[1]}); its response target follows.",
        (query_text("set_incident_severity", id=target, severity=severity),),
    )


INCIDENT_SEVERITY = Action(
    name="incident_severity", short="Grade", title="Re-grade severity", key="G", role="oncall",
    confirmation=Confirmation.YES_NO, help="change the incident's severity (P0-P3), on its timeline",
    target_kind="incident", preview=_severity_preview, check=_severity_check, run=_severity_run,
    in_transaction=True, audit_params=("severity",), verb="re-grading",
    inputs=(Input("severity", "new severity", choices=tuple(SEVERITIES), suggest=_current_severity),),
)  # fmt: skip


# -- status, command, note, post-mortem fields ------------------------------------------


async def _status_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    status = params.get("status")
    return Preview(
        f"Move INC-{target} to {status}.", (query_text("set_incident_status", id=target, status=status),)
    )


INCIDENT_STATUS = Action(
    name="incident_status", short="Step",
    title="Incident status", key="T", role="oncall", confirmation=Confirmation.YES_NO,
    help="move the incident to the next step of the plan (detection → … → post-mortem)",
    target_kind="incident", preview=_status_preview, check=_status_check, run=_status_run,
    in_transaction=True, audit_params=("status",), verb="updating",
    inputs=(Input("status", "move it to", choices=STEPS, suggest=_next_step),),
)  # fmt: skip


async def _command_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    who = params.get("commander") or env.actor.operator
    return Preview(f"{who} takes command of INC-{target}.", (query_text("set_incident_commander", id=target,
                                                                         commander=who),))  # fmt: skip


async def _command_check(env: ActionEnv, conn, target: str, params: Mapping[str, Any]) -> str | None:
    row = await lock_incident(conn, target)
    if row is None:
        return f"there is no incident {target}"
    if row.commander == (params.get("commander") or env.actor.operator):
        return f"{row.commander} is already the commander"
    return None


async def _command_run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
    who = params.get("commander") or env.actor.operator
    q = named_queries()
    await q.set_incident_commander(conn, id=int(target), commander=who)
    await q.add_incident_event(conn, incident_id=int(target), operator=env.actor.operator, kind="commander",
                               body=f"{who} took command")  # fmt: skip
    return Result(f"{who} commands INC-{target}")


INCIDENT_COMMAND = Action(
    name="incident_command", short="Command",
    title="Take command", key="C", role="oncall", confirmation=Confirmation.YES_NO,
    help="become the incident's commander", target_kind="incident", preview=_command_preview,
    check=_command_check, run=_command_run, in_transaction=True, audit_params=("commander",),
    verb="commanding", inputs=(Input("commander", "who takes command (default: you)", parse_operator,
                                     suggest=_me, asked=False),),
)  # fmt: skip


async def _note_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    return Preview(f"Add a note to INC-{target} (a status update: the 30-minute clock starts over).",
                   (query_text("add_incident_event", incident_id=target, operator=env.actor.operator,
                               kind="note", body=params.get("text", "")),))  # fmt: skip


async def _note_check(env: ActionEnv, conn, target: str, params: Mapping[str, Any]) -> str | None:
    if await lock_incident(conn, target) is None:
        return f"there is no incident {target}"
    if not str(params.get("text", "")).strip():
        return "the note is empty"
    return None


async def _note_run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
    q = named_queries()
    await q.add_incident_event(conn, incident_id=int(target), operator=env.actor.operator, kind="note",
                               body=str(params["text"]).strip())  # fmt: skip
    await q.touch_incident(conn, id=int(target))
    return Result(f"note added to INC-{target}")


INCIDENT_NOTE = Action(
    name="incident_note", short="Note",
    title="Add note", key="N", role="support", confirmation=Confirmation.YES_NO,
    help="add a note (a status update) to the incident's timeline", target_kind="incident",
    preview=_note_preview, check=_note_check, run=_note_run, in_transaction=True, verb="writing a note on",
    inputs=(Input("text", "the note (a status update)"),),
)  # fmt: skip


async def _pm_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    fields = {k: params.get(k) for k in ("impact", "root_cause", "action_items")}
    kept = ", ".join(k.replace("_", " ") for k, v in fields.items() if v is None)
    call = query_text(
        "set_incident_text", id=target, **{k: "(kept)" if v is None else v for k, v in fields.items()}
    )
    if kept:
        call += f"\n-- {kept}: left as they are"
    return Preview(
        f"Write the post-mortem fields of INC-{target} (impact, root cause, action items).", (call,)
    )


async def _pm_check(env: ActionEnv, conn, target: str, params: Mapping[str, Any]) -> str | None:
    return None if await lock_incident(conn, target) is not None else f"there is no incident {target}"


async def _pm_run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
    q = named_queries()
    row = await lock_incident(conn, target)
    values = {
        k: str(params.get(k) if params.get(k) is not None else getattr(row, k))
        for k in ("impact", "root_cause", "action_items")
    }
    await q.set_incident_text(conn, id=int(target), **values)
    changed = [k.replace("_", " ") for k in values if values[k] != getattr(row, k)]
    await q.add_incident_event(conn, incident_id=int(target), operator=env.actor.operator, kind="field",
                               body="wrote " + (", ".join(changed) or "nothing new"))  # fmt: skip
    return Result(f"INC-{target}: post-mortem fields saved")


INCIDENT_POSTMORTEM = Action(
    name="incident_postmortem", short="Write", title="Post-mortem fields", key="W", role="oncall",
    confirmation=Confirmation.YES_NO, help="write the impact, root cause and action items",
    target_kind="incident", preview=_pm_preview, check=_pm_check, run=_pm_run, in_transaction=True,
    verb="writing the post-mortem of", inputs=(
        Input("impact", "impact: who was affected, how long (empty: keep)", parse_optional_text,
              optional=True),
        Input("root_cause", "root cause (empty: keep)", parse_optional_text, optional=True),
        Input("action_items", "action items, separated with ; (empty: keep)", parse_items, optional=True),
    ),
)  # fmt: skip


# -- silences ---------------------------------------------------------------------------


async def _silence_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    alerts = env.services.alerts
    minutes = int(params.get("minutes") or 0)
    return Preview(
        f"Silence alert {target} in Alertmanager for {minutes} minutes, created by {env.actor.operator}.",
        (alerts.silence_call_text(silence_matchers(target, params), minutes, params.get("comment", ""),
                                  env.actor.operator),),
    )  # fmt: skip


async def _silence_check(env: ActionEnv, conn, target: str, params: Mapping[str, Any]) -> str | None:
    if not str(params.get("comment", "")).strip():
        return "a silence needs a comment saying why"
    minutes = int(params.get("minutes") or 0)
    if not 1 <= minutes <= MAX_SILENCE_MINUTES:
        return "the duration must be between 1 minute and 7 days"
    return None


async def _silence_run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
    progress("creating the silence")
    silence_id = await env.services.alerts.create_silence(
        silence_matchers(target, params),
        int(params["minutes"]),
        str(params["comment"]).strip(),
        env.actor.operator,
    )
    return Result(f"alert {target} silenced for {params['minutes']} min (silence {silence_id[:8]})",
                  {"silence_id": silence_id})  # fmt: skip


async def _silence_verify(env: ActionEnv, target: str, params, result: Result, progress: Progress) -> Result:
    silence = await env.services.alerts.silence(result.detail["silence_id"])
    if silence is None or silence.state != "active":
        raise ActionFailed(
            f"Alertmanager did not keep the silence (state {silence.state if silence else 'gone'})"
        )
    return result


SILENCE_ALERT = Action(
    name="silence_alert", short="Silence",
    title="Silence alert", key="Z", role="oncall", confirmation=Confirmation.YES_NO,
    help="silence the selected alert in Alertmanager (duration, comment; created by you)",
    target_kind="alert", preview=_silence_preview, check=_silence_check, run=_silence_run,
    verify=_silence_verify, audit_params=("minutes", "comment", "labels"), verb="silencing",
    inputs=(
        Input("minutes", "for how long? (minutes, or 2h, 1d)", parse_minutes, default="2h"),
        Input("comment", "why? (the silence's comment)"),
        Input("labels", "the alert's labels the silence matches (default: its name)", labels, optional=True,
              asked=False),
    ),
)  # fmt: skip


async def _expire_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    return Preview(f"Expire silence {target}: the alerts it matches notify again.",
                   (f"DELETE {env.services.alerts.alertmanager_url}/api/v2/silence/{target}",))  # fmt: skip


async def _expire_check(env: ActionEnv, conn, target: str, params: Mapping[str, Any]) -> str | None:
    silence = await env.services.alerts.silence(target)
    if silence is None:
        return f"Alertmanager has no silence {target}"
    if silence.state == "expired":
        return f"silence {target[:8]} has already expired"
    return None


async def _expire_run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
    await env.services.alerts.expire_silence(target)
    return Result(f"silence {target[:8]} expired")


async def _expire_verify(env: ActionEnv, target: str, params, result: Result, progress: Progress) -> Result:
    silence = await env.services.alerts.silence(target)
    if silence is not None and silence.state != "expired":
        raise ActionFailed(f"silence {target[:8]} is still {silence.state}")
    return result


EXPIRE_SILENCE = Action(
    name="expire_silence", short="Unsilence",
    title="Expire silence", key="U", role="oncall", confirmation=Confirmation.YES_NO,
    help="end the selected silence now", target_kind="silence", preview=_expire_preview,
    check=_expire_check, run=_expire_run, verify=_expire_verify, verb="expiring",
)  # fmt: skip

ALERT_ACTIONS = (SILENCE_ALERT, EXPIRE_SILENCE)
INCIDENT_ACTIONS = (DECLARE_INCIDENT, INCIDENT_STATUS, INCIDENT_SEVERITY, INCIDENT_COMMAND, INCIDENT_NOTE,
                    INCIDENT_POSTMORTEM)  # fmt: skip
