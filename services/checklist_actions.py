"""The checklist actions: answer a manual item of the open run (done or not, with a note), and
sign the run off. Both go through the runbook engine, so who answered what and who signed is
in the audit log as well as in the run. A signed-off run cannot change (the database refuses);
what is unresolved at sign-off carries over into the next run."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from services.checklist_items import CHECKLISTS, find_item
from services.checklists import run_item
from services.postgres import named_queries, query_text
from services.runbook import Action, ActionEnv, Confirmation, Input, Preview, Progress, Result, text, yes_no

FRESH = timedelta(minutes=15)  # a sign-off signs evidence at most this old


def parse_target(target: str) -> tuple[str, str]:
    """`daily/stuck-paid` as (checklist, item)."""
    checklist, _, item = target.partition("/")
    if checklist not in CHECKLISTS or find_item(checklist, item) is None:
        raise ValueError(f"{target!r} is not a checklist item (CHECKLIST/ITEM, e.g. weekly/support-tickets)")
    return checklist, item


def _optional_note(value: str) -> str:
    return text(value) if value.strip() else ""


# -- answer ---------------------------------------------------------------------------------


async def _answer_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    checklist, item_id = parse_target(target)
    item = find_item(checklist, item_id)
    done = params["done"]
    state = "pass" if done else "fail"
    run = await env.services.postgres.run("checklist_open_run", checklist=checklist)
    run_id = run["id"] if run else "(no open run)"
    summary = (
        f"Answer “{item.title}” of the {checklist} checklist (run {run_id}): "
        f"{'done' if done else 'NOT done'}"
        + (f", noting: {params['note']}" if params.get("note") else "")
        + "."
    )
    call = query_text(
        "checklist_item_answer",
        run_id=run_id,
        item=item_id,
        state=state,
        answered_by=env.actor.operator,
        note=params.get("note") or None,
    )
    return Preview(summary, (call,))


async def _answer_check(env: ActionEnv, conn, target: str, params: Mapping[str, Any]) -> str | None:
    checklist, item_id = parse_target(target)
    item = find_item(checklist, item_id)
    if item.kind != "manual":
        return f"“{item.title}” is checked automatically: fix what it found and refresh the checklist"
    run = await named_queries().checklist_open_run(conn, checklist=checklist)
    if run is None:
        return f"the {checklist} checklist has no open run: start one (opsconsole check {checklist})"
    await named_queries().checklist_run_for_update(conn, id=run["id"])
    if not params["done"] and not params.get("note"):
        return "say why it was not done (a note): the next shift reads it in the handover"
    return None


async def _answer_run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
    checklist, item_id = parse_target(target)
    run = await named_queries().checklist_open_run(conn, checklist=checklist)
    state = "pass" if params["done"] else "fail"
    await named_queries().checklist_item_answer(
        conn,
        run_id=run["id"],
        item=item_id,
        state=state,
        answered_by=env.actor.operator,
        note=params.get("note") or None,
    )
    return Result(
        f"{checklist}/{item_id}: {'done' if params['done'] else 'not done'} (run {run['id']})",
        {"run": run["id"], "state": state},
    )


ANSWER = Action(
    name="checklist_answer",
    short="Answer",
    title="Answer a checklist item",
    key="=",
    role="support",
    confirmation=Confirmation.YES_NO,
    help="answer a manual item of the open checklist run: done or not, with a note (kept in the run)",
    target_kind="checklist item",
    preview=_answer_preview,
    check=_answer_check,
    run=_answer_run,
    in_transaction=True,
    inputs=(
        Input("done", "done? (yes/no)", yes_no, default="yes", choices=("yes", "no")),
        Input(
            "note",
            "a note for the run and the handover (why not, what was done)",
            _optional_note,
            optional=True,
        ),
    ),
    audit_params=("done", "note"),
    verb="answering",
)


# -- sign off --------------------------------------------------------------------------------


async def _open_items(env: ActionEnv, conn, checklist: str):
    run = await env.services.postgres.run("checklist_open_run", conn=conn, checklist=checklist)
    if run is None:
        return None, []
    rows = await env.services.postgres.run("checklist_items", conn=conn, run_id=run["id"])
    return run, [run_item(r) for r in rows]


async def _sign_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    run, items = await _open_items(env, None, target)
    if run is None:
        return Preview(f"Sign off the {target} checklist: it has no open run.", ())
    todo = [i for i in items if i.unresolved]
    summary = (
        f"Sign off the {target} checklist run {run['id']} (started by {run['started_by']}): "
        f"{len(items) - len(todo)} of {len(items)} items resolved. Once signed it cannot change."
    )
    warnings = [
        f"{i.shown_state}: {i.title} ({i.figure or 'not answered'}) carries over to the next run"
        for i in todo
    ]
    call = query_text(
        "checklist_sign_off", id=run["id"], signed_off_by=env.actor.operator, note=params.get("note") or None
    )
    return Preview(summary, (call,), tuple(warnings))


async def _sign_check(env: ActionEnv, conn, target: str, params: Mapping[str, Any]) -> str | None:
    if target not in CHECKLISTS:
        return f"no checklist {target!r}: {', '.join(CHECKLISTS)}"
    run = await named_queries().checklist_open_run(conn, checklist=target)
    if run is None:
        return f"the {target} checklist has no open run to sign off"
    await named_queries().checklist_run_for_update(conn, id=run["id"])
    _, items = await _open_items(env, conn, target)
    stale = [i for i in items if i.kind == "auto" and datetime.now(UTC) - i.checked_at > FRESH]
    if stale:
        return (
            f"{len(stale)} automatic items were checked over {FRESH.seconds // 60} min ago: refresh the run "
            f"(r, or opsconsole check {target}) so the sign-off signs what is true now"
        )
    return None


async def _sign_run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
    run = await named_queries().checklist_open_run(conn, checklist=target)
    _, items = await _open_items(env, conn, target)
    todo = [i.item for i in items if i.unresolved]
    await named_queries().checklist_sign_off(
        conn, id=run["id"], signed_off_by=env.actor.operator, note=params.get("note") or None
    )
    carried = f"; {len(todo)} unresolved carry over" if todo else "; everything resolved"
    return Result(f"{target} run {run['id']} signed off{carried}", {"run": run["id"], "carried_over": todo})


SIGN_OFF = Action(
    name="checklist_sign_off",
    short="Sign off",
    title="Sign off a checklist run",
    key="!",
    role="support",
    confirmation=Confirmation.YES_NO,
    help="sign the open run off: frozen from then on; unresolved items carry over into the next run",
    target_kind="checklist",
    preview=_sign_preview,
    check=_sign_check,
    run=_sign_run,
    in_transaction=True,
    inputs=(Input("note", "a note for the handover (optional)", _optional_note, optional=True),),
    audit_params=("note",),
    verb="signing off",
)

CHECKLIST_ACTIONS = (ANSWER, SIGN_OFF)
