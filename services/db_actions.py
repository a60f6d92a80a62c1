"""The Database area's runbook actions: cancel a session's query (pg_cancel_backend), then, when
that did not end it, terminate the session (pg_terminate_backend, typed: it closes the
session, not just the query); and maintenance (VACUUM (ANALYZE), ANALYZE, REINDEX
[CONCURRENTLY]) of a table, an index or the database, with its progress, duration and the
sizes before and after. Signals go out as the console's runtime role (pg_signal_backend,
migration 0015); maintenance runs as the maintenance login (services.dbmaint). Each audits
what the session ran, its secrets masked."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from services.dbcare_model import CLIENT_BACKEND, human_seconds, mask_sql, one_line
from services.dbmaint import BLOCKING, COMMANDS, Target, parse_command
from services.errors import ServiceError
from services.postgres import query_text
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
from services.text import human_bytes

CANCEL_WAIT = 3.0  # seconds a cancelled query has to end before terminate is offered
TERMINATE_WAIT_MS = 5000
SHOWN_QUERY = 300  # characters of the session's query in a preview


def parse_pid(value: str) -> int:
    """A backend's process id."""
    try:
        pid = int(str(value).strip())
    except ValueError:
        raise ValueError(f"a backend pid is a number, not {str(value).strip()[:20]!r}") from None
    if not 0 < pid < 2**31:
        raise ValueError(f"{pid} is not a process id")
    return pid


def parse_wait(value: str) -> float:
    seconds = float(value)
    if not 0 <= seconds <= 60:
        raise ValueError("wait between 0 and 60 seconds")
    return seconds


def _pid(target: str) -> int | None:
    try:
        return parse_pid(target)
    except ValueError:
        return None


async def _backend(env: ActionEnv, target: str, conn=None) -> dict[str, Any] | None:
    """The backend `target` names (None when there is none, or `target` is no pid)."""
    pid = _pid(target)
    if pid is None:
        return None
    row = await env.services.postgres.run("db_backend", read=False, conn=conn, pid=pid)
    return dict(row) if row else None


def _who(row: Mapping[str, Any]) -> str:
    app = f", {row['application']}" if row.get("application") else ""
    return f"{row['username'] or '?'}@{row['database'] or '?'}{app}"


def _detail(row: Mapping[str, Any]) -> dict[str, Any]:
    """What the audit log keeps of the session: who and what it ran, its secrets masked."""
    ran = row["query_seconds"]
    return {"user": row["username"], "database": row["database"], "application": row["application"],
            "state": row["state"], "query": mask_sql(row["query"]),
            "query_seconds": None if ran is None else round(ran, 1)}  # fmt: skip


def signal_refusal(row: Mapping[str, Any] | None, target: str, *, query_only: bool) -> str | None:
    """Why the console may not signal backend `target` (or, with `query_only`, why it has no
    query to cancel), or None."""
    if _pid(target) is None:
        return f"{target.strip()[:20]!r} is not a backend pid (a number: see opsconsole db activity)"
    if row is None:
        return f"there is no session with pid {target} (it has ended)"
    if row["backend_type"] != CLIENT_BACKEND:
        return f"pid {target} is a {row['backend_type']}, not a client session: the console never signals it"
    if row["me"]:
        return f"pid {target} is this console's own connection"
    if not row["may_signal"]:
        if row["superuser"]:
            return (f"pid {target} is superuser {row['username']}'s session: only a superuser may signal it "
                    f"(the console logs in as {row['login']})")  # fmt: skip
        return (f"{row['login']} may not signal {row['username']}'s sessions: a DBA grants it with "
                "GRANT pg_signal_backend TO ops_runtime (migration 0015 does where it may)")  # fmt: skip
    if query_only and row["state"] != "active":
        what = "idle in a transaction" if str(row["state"]).startswith("idle in") else row["state"] or "idle"
        return (f"pid {target} is {what}: there is no running query to cancel"
                + ("; terminate it (Q) to end its transaction" if "transaction" in what else ""))  # fmt: skip
    return None


# -- cancel ----------------------------------------------------------------------------


async def _cancel_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    row = await _backend(env, target)
    calls = [query_text("db_cancel_backend", pid=_pid(target))]
    if row is None:
        return Preview(f"Cancel the query of pid {target}: there is no such session.", tuple(calls))
    ran = human_seconds(row["query_seconds"])
    calls.append(f"-- it runs ({ran}): {one_line(mask_sql(row['query']), SHOWN_QUERY)}")
    return Preview(
        f"Cancel the query of pid {target} ({_who(row)}, {row['state']} {ran}): the query stops with an "
        "error and its transaction is aborted; the session stays connected.",
        tuple(calls),
        (f"if it still runs {params.get('wait', CANCEL_WAIT):g} s later, terminate is offered (it closes "
         "the session)",),
    )  # fmt: skip


async def _cancel_check(env: ActionEnv, conn, target: str, params: Mapping[str, Any]) -> str | None:
    return signal_refusal(await _backend(env, target, conn), target, query_only=True)


async def _cancel_run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
    pid = parse_pid(target)
    postgres = env.services.postgres
    row = await _backend(env, target)
    if row is None:
        raise ActionFailed(f"pid {pid} ended before it was cancelled")
    detail = _detail(row)
    progress(f"pg_cancel_backend({pid})")
    if not await postgres.run("db_cancel_backend", read=False, pid=pid):
        raise ActionFailed(f"PostgreSQL did not signal pid {pid} (it had ended?)", detail=detail)
    wait = float(params.get("wait", CANCEL_WAIT))
    deadline = time.monotonic() + wait
    while True:
        now = await _backend(env, target)
        ended = now is None or now["state"] != "active" or now["query_start"] != row["query_start"]
        if ended:
            state = "its session ended" if now is None else f"the session stays ({now['state']})"
            return Result(f"query of pid {pid} cancelled: {state}", {**detail, "still_running": False})
        if time.monotonic() >= deadline:
            raise ActionFailed(
                f"pid {pid} still runs the same query {wait:g} s after the cancel",
                hint=f"terminate session {pid} (Q): it closes the session, not just the query",
                detail={**detail, "still_running": True},
            )
        await asyncio.sleep(0.2)


CANCEL_QUERY = Action(
    name="cancel_query",
    short="Cancel",
    title="Cancel query",
    key="J",
    role="oncall",
    confirmation=Confirmation.YES_NO,
    help="cancel the selected session's running query (pg_cancel_backend); the session stays",
    target_kind="session",
    preview=_cancel_preview,
    check=_cancel_check,
    run=_cancel_run,
    inputs=(
        Input("wait", "seconds the query has to end", parse_wait, default=f"{CANCEL_WAIT:g}", asked=False),
    ),
    verb="cancelling the query of",
)


# -- terminate -------------------------------------------------------------------------


async def _terminate_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    row = await _backend(env, target)
    calls = [query_text("db_terminate_backend", pid=_pid(target), timeout_ms=TERMINATE_WAIT_MS)]
    if row is None:
        return Preview(f"Terminate session pid {target}: there is no such session.", tuple(calls))
    calls.append(f"-- it runs ({row['state']}): {one_line(mask_sql(row['query']), SHOWN_QUERY)}")
    return Preview(
        f"Terminate session pid {target} ({_who(row)}): this CLOSES THE SESSION, not just its query. Its "
        "open transaction rolls back and the client's connection drops; the application must reconnect.",
        tuple(calls),
        ("a connection pool or the bot sees a dropped connection and may log errors",),
    )


async def _terminate_check(env: ActionEnv, conn, target: str, params: Mapping[str, Any]) -> str | None:
    return signal_refusal(await _backend(env, target, conn), target, query_only=False)


async def _terminate_run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
    pid = parse_pid(target)
    row = await _backend(env, target)
    if row is None:
        raise ActionFailed(f"pid {pid} ended before it was terminated")
    detail = _detail(row)
    progress(f"pg_terminate_backend({pid}, {TERMINATE_WAIT_MS})")
    ended = await env.services.postgres.run("db_terminate_backend", read=False, pid=pid,
                                            timeout_ms=TERMINATE_WAIT_MS)  # fmt: skip
    if not ended or await _backend(env, target) is not None:
        raise ActionFailed(f"pid {pid} was signalled but had not ended {TERMINATE_WAIT_MS // 1000} s later",
                           detail=detail)  # fmt: skip
    return Result(f"session {pid} terminated ({_who(row)}): its transaction rolled back", detail)


TERMINATE_SESSION = Action(
    name="terminate_session",
    short="Terminate",
    title="Terminate session",
    key="Q",
    role="oncall",
    confirmation=Confirmation.TYPED,
    help="close the selected session (pg_terminate_backend): its transaction rolls back, the client drops",
    target_kind="session",
    preview=_terminate_preview,
    check=_terminate_check,
    run=_terminate_run,
    verb="terminating",
)


# -- maintenance -----------------------------------------------------------------------

WHAT = {
    "vacuum analyze": "reclaims the space of dead rows for reuse and refreshes the planner's statistics",
    "vacuum": "reclaims the space of dead rows for reuse",
    "analyze": "refreshes the planner's statistics",
    "reindex concurrently": "rebuilds the indexes beside the old ones, then swaps them",
    "reindex": "rebuilds the indexes in place",
}


async def _target(env: ActionEnv, target: str) -> Target | None:
    return await env.services.dbcare.maintenance.target(target)


async def _locate_maintenance(env: ActionEnv, selected: str) -> str:
    """The target by its full name (schema.table, schema.index), so that every console claims
    the same one; the database's name for an empty selection (`db vacuum` with no table)."""
    if not selected:
        database = await env.services.postgres.run("db_connections", read=False)
        return database["database"]
    found = await _target(env, selected)
    return found.name if found is not None else selected


async def _suggest_command(env: ActionEnv, target: str, given: Mapping[str, str]) -> Suggestion:
    found = await _target(env, target)
    if found is not None and found.kind == "index":
        return Suggestion("reindex concurrently", ("reindex concurrently", "reindex"))
    return Suggestion("vacuum analyze", tuple(COMMANDS))


async def _maint_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    command = params.get("command", "vacuum analyze")
    maintenance = env.services.dbcare.maintenance
    found = await _target(env, target)
    if found is None:
        return Preview(f"{command.upper()} {target}: there is no such table, index or database.", ())
    statement = found.statement(command)
    view = {"vacuum": "pg_stat_progress_vacuum", "analyze": "pg_stat_progress_analyze",
            "index": "pg_stat_progress_create_index"}[COMMANDS[command][2]]  # fmt: skip
    calls = (
        f"{statement};  -- as {found.login} on {maintenance.where}",
        f"-- progress: SELECT ... FROM {view} WHERE pid = <its backend>, every 0.5 s",
        "-- sizes before and after: "
        + ("pg_database_size" if found.kind == "database" else "pg_total_relation_size"),
    )
    warnings = []
    if command in BLOCKING:
        warnings.append(f"REINDEX without CONCURRENTLY locks writes out of {found.name} (and reads that "
                        "use its indexes) until it ends: prefer 'reindex concurrently'")  # fmt: skip
    if command == "reindex concurrently":
        warnings.append("if it fails it leaves an invalid index (…_ccnew) to drop; it waits for running "
                        "transactions on the table before each phase")  # fmt: skip
        if found.kind == "database":
            warnings.append("system catalogs are skipped: they cannot be reindexed concurrently")
    if command.startswith("vacuum") and found.kind == "database":
        warnings.append(
            "every table of the database in turn; the space goes back to the tables, not the disk"
        )
    what = "the whole database" if found.kind == "database" else f"{found.kind} {found.name}"
    return Preview(
        f"{statement}: {WHAT[command]} ({what}, {human_bytes(found.bytes)} now).",
        calls,
        tuple(warnings),
    )


async def _maint_check(env: ActionEnv, conn, target: str, params: Mapping[str, Any]) -> str | None:
    try:
        found = await _target(env, target)
    except ServiceError as exc:
        return str(exc)
    if found is None:
        return f"there is no table, index or database {target}"
    return found.refusal(params.get("command", "vacuum analyze"))


async def _maint_run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
    command = params.get("command", "vacuum analyze")
    found = await _target(env, target)
    if found is None:
        raise ActionFailed(f"{target} is gone")
    try:
        done = await env.services.dbcare.maintenance.run(command, found, progress)
    except ServiceError as exc:
        hint = "drop the invalid index it left (…_ccnew)" if command == "reindex concurrently" else None
        raise ActionFailed(str(exc), hint=hint) from exc
    detail = {"statement": done.statement, "before_bytes": done.before_bytes, "after_bytes": done.after_bytes,
              "seconds": round(done.seconds, 2), "backend": done.pid}  # fmt: skip
    if done.warnings:
        raise ActionFailed(f"{done.statement} skipped what the login may not maintain: {done.warnings[0]}",
                           detail={**detail, "warnings": list(done.warnings)})  # fmt: skip
    return Result(f"{done.statement} done in {done.seconds:.1f} s: {done.line()}", detail)


DB_MAINTENANCE = Action(
    name="db_maintenance",
    short="Maintain",
    title="Database maintenance",
    key="H",
    role="oncall",
    confirmation=Confirmation.YES_NO,
    typed_when=lambda params: params.get("command") in BLOCKING,
    help="VACUUM (ANALYZE), ANALYZE or REINDEX [CONCURRENTLY] of a table, an index or the database, "
    "with its progress and the sizes before and after",
    target_kind="relation",
    preview=_maint_preview,
    check=_maint_check,
    run=_maint_run,
    locate=_locate_maintenance,
    inputs=(
        Input(
            "command", "which maintenance?", parse_command, default="vacuum analyze", suggest=_suggest_command
        ),
    ),
    audit_params=("command",),
    verb="maintaining",
)

DB_ACTIONS = (CANCEL_QUERY, TERMINATE_SESSION, DB_MAINTENANCE)
