"""The backup retention action (AGIS manual: 30 days of backups): prune the bucket to a
cutoff the operator sees and confirms, the newest verified backup always kept. Its deletions
are the ones its preview listed (BackupsService.prune_candidates with the same cutoff)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from services.action import ActionFailed, Input, Suggestion
from services.backup_model import MANIFEST_SUFFIX
from services.errors import ServiceError
from services.postgres import query_text
from services.runbook import Action, ActionEnv, Confirmation, Preview, Progress, Result
from services.text import human_bytes

PRUNE_SHOWN = 30


def show_when(value: Any) -> str:
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else str(value)


def parse_when(value: str) -> datetime:
    """An ISO date or time (UTC when no zone is given)."""
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO date or time: {value.strip()[:40]!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# -- prune -----------------------------------------------------------------------------


async def _locate_bucket(env: ActionEnv, selected: str) -> str:
    return env.services.backups.storage.bucket or "(no bucket)"


def _suggest_cutoff():
    async def suggest(env: ActionEnv, target: str, given: Mapping[str, str]) -> Suggestion:
        days = env.services.backups.retention_days
        cutoff = datetime.now(UTC).replace(microsecond=0) - timedelta(days=days)
        return Suggestion(cutoff.isoformat())

    return suggest


async def _prune_list(env: ActionEnv, params: Mapping[str, Any]):
    backups = env.services.backups
    status = await backups.status()
    return status, backups.prune_candidates(status, params["before"])


async def _prune_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    status, gone = await _prune_list(env, params)
    now = status.now
    total = sum(e.stored_bytes for e in gone)
    lines = [
        f"S3 DeleteObject s3://{target}/{e.key}"
        + ("" if e.legacy else f" (+{MANIFEST_SUFFIX})")
        + f"  -- {e.id}, {(now - e.finished_at).days} days old, {human_bytes(e.stored_bytes)}"
        for e in gone[:PRUNE_SHOWN]
    ]
    if len(gone) > PRUNE_SHOWN:
        lines.append(f"… and {len(gone) - PRUNE_SHOWN} more")
    if any(e.catalogued for e in gone):
        lines.append(query_text("catalog_pruned", id="<each catalogued one>"))
    kept = [e for e in status.entries if e not in gone]
    newest_verified = next((e for e in status.entries if (e.verify_ok or e.drill_ok) and e.good), None)
    warnings = (
        [f"the newest verified backup is kept whatever its age: {newest_verified.id}"]
        if newest_verified
        else ["no backup is verified: the newest backup is kept whatever its age"]
    )
    summary = (
        f"Prune s3://{target}: delete {len(gone)} backups finished before "
        f"{params['before']:%Y-%m-%d %H:%M} UTC ({human_bytes(total)}); {len(kept)} kept."
    )
    if not gone:
        summary = (
            f"Prune s3://{target}: nothing finished before {params['before']:%Y-%m-%d %H:%M} UTC to delete."
        )
    return Preview(summary, tuple(lines), tuple(warnings))


async def _prune_check(env: ActionEnv, conn, target: str, params: Mapping[str, Any]) -> str | None:
    if target != env.services.backups.storage.bucket:
        return f"the backups are in bucket {env.services.backups.storage.bucket}, not {target}"
    if params["before"] > datetime.now(UTC) - timedelta(days=1):
        return "keep at least a day of backups: give a time more than 24 hours ago"
    return None


async def _prune_run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
    _status, gone = await _prune_list(env, params)
    deleted: list[str] = []
    for n, entry in enumerate(gone, start=1):
        progress(f"deleting {n}/{len(gone)}: {entry.id}")
        try:
            await env.services.backups.delete(entry)
        except ServiceError as exc:
            raise ActionFailed(
                f"deleted {len(deleted)} of {len(gone)}, then: {exc}", detail={"deleted": deleted}
            ) from exc
        deleted.append(entry.id)
    freed = sum(e.stored_bytes for e in gone)
    return Result(
        f"pruned {len(deleted)} backups from s3://{target} ({human_bytes(freed)} freed)",
        {"deleted": deleted, "freed_bytes": freed},
    )


PRUNE_BACKUPS = Action(
    name="prune_backups",
    short="Prune",
    title="Prune backups",
    key="Y",
    role="oncall",
    confirmation=Confirmation.TYPED,
    help="delete backups past the retention from the bucket (the newest verified one is always kept)",
    target_kind="bucket",
    preview=_prune_preview,
    check=_prune_check,
    run=_prune_run,
    locate=_locate_bucket,
    inputs=(
        Input(
            "before",
            "delete backups that finished before (UTC)",
            parse_when,
            suggest=_suggest_cutoff(),
            show=show_when,
        ),
    ),
    audit_params=("before",),
    verb="pruning",
)
