"""The backup runbook actions (AGIS manual: backups, monthly restore verification, database
corruption): back up now, verify a backup, restore drill, restore into another database,
and prune the bucket to the retention. Each previews its exact calls; BackupsService runs them."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from services.action import ActionFailed, Input, yes_no
from services.backup_model import MANIFEST_SUFFIX, drill_database, object_key
from services.backup_restore import SMOKE_QUERY, dsn_for_database
from services.backup_run import ProgressLine
from services.backups import BackupNotFound
from services.dsn import describe_dsn, dsn_problems
from services.errors import ServiceError
from services.pgtools import without_password
from services.postgres import query_text
from services.prune_actions import PRUNE_BACKUPS
from services.runbook import Action, ActionEnv, Confirmation, Preview, Progress, Result
from services.text import human_bytes, mask_url

PROGRESS_EVERY = 0.5  # seconds between progress lines (the claim carries the latest)


def parse_dsn(value: str) -> str:
    """A PostgreSQL DSN to restore into."""
    value = value.strip()
    if not value:
        raise ValueError("give the DSN of the database to restore into")
    problems = dsn_problems(value, environ={})
    if problems:
        raise ValueError(problems[0])
    return value


def _database_of(dsn: str) -> str:
    return describe_dsn(dsn).rpartition("/")[2]


def _bare(dsn: str) -> str:
    return mask_url(without_password(dsn)[0])


async def _entry(env: ActionEnv, target: str):
    try:
        return await env.services.backups.get(target)
    except BackupNotFound:
        return None


def _throttled(progress: Progress):
    last = [0.0]

    def report(state) -> None:
        if time.monotonic() - last[0] >= PROGRESS_EVERY:
            last[0] = time.monotonic()
            progress(ProgressLine.of(state))

    return report


# -- back up now -----------------------------------------------------------------------


async def _locate_database(env: ActionEnv, selected: str) -> str:
    return env.services.backups.database


async def _run_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    backups = env.services.backups
    bucket = backups.storage.bucket or "(no bucket)"
    where = f"s3://{bucket}/{object_key(target, '<started UTC>-<random>')}"
    expected = await backups.expected_size()
    size = f"; the last one was {human_bytes(expected)} before compression" if expected else ""
    calls = (
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT pg_export_snapshot()",
        "pg_dump --format=custom --compress=0 --snapshot=<that snapshot> "
        f"--dbname={_bare(backups._dsn or '')}",
        f"zstd level 3 + AES-256-GCM in chunks of {backups.chunk_size // 1048576} MiB, per-backup key "
        "wrapped under BACKUP_ENCRYPTION_KEY",
        f"S3 CreateMultipartUpload + UploadPart + CompleteMultipartUpload {where}",
        "row counts of every table and the audit chain head, in the same snapshot",
        f"S3 PutObject {where}{MANIFEST_SUFFIX}",
        "INSERT INTO ops.backup_catalog (...) -- only once both objects are stored",
    )
    return Preview(
        f"Back up database {target} ({backups.where}) to S3, encrypted{size}.",
        calls,
        tuple(backups.problems()),
    )


async def _run_check(env: ActionEnv, conn, target: str, params: Mapping[str, Any]) -> str | None:
    backups = env.services.backups
    if target != backups.database:
        return f"this console backs up {backups.database}, not {target}"
    problems = backups.problems()
    return problems[0] if problems else None


async def _run_run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
    progress("dumping")
    try:
        done = await env.services.backups.run(env.actor.operator, on_progress=_throttled(progress))
    except ServiceError as exc:
        raise ActionFailed(str(exc), hint="nothing was catalogued; the upload was aborted") from exc
    d = done.dumped
    ratio = d.plaintext_bytes / d.upload.size if d.upload.size else 0
    return Result(
        f"backup {done.id} stored: {human_bytes(d.plaintext_bytes)} dumped, {human_bytes(d.upload.size)} "
        f"in S3 ({ratio:.1f}x smaller), {len(d.snapshot.tables)} tables, {d.seconds:.1f} s",
        {
            "id": done.id,
            "key": done.key,
            "plaintext_bytes": d.plaintext_bytes,
            "stored_bytes": d.upload.size,
            "plaintext_sha256": d.plaintext_sha256,
            "seconds": round(d.seconds, 2),
        },
    )


BACKUP_RUN = Action(
    name="backup_run",
    short="Backup",
    title="Back up the database",
    key="K",
    role="oncall",
    confirmation=Confirmation.YES_NO,
    help="dump the database now, compressed and encrypted, into the S3 bucket, and catalogue it",
    target_kind="database",
    preview=_run_preview,
    check=_run_check,
    run=_run_run,
    locate=_locate_database,
    verb="backing up",
)


# -- verify ----------------------------------------------------------------------------


async def _verify_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    backups = env.services.backups
    entry = await _entry(env, target)
    if entry is None:
        return Preview(f"Verify backup {target}: there is no such backup.", ())
    where = f"s3://{backups.storage.bucket}/{entry.key}"
    if entry.legacy:
        return Preview(
            f"Verify legacy backup {target}: read it and check the gzip stream to its end.",
            (
                f"S3 GetObject {where} ({human_bytes(entry.stored_bytes)})",
                "gunzip in memory: CRC and length of every member",
            ),
        )
    calls = (
        f"S3 GetObject {where} ({human_bytes(entry.stored_bytes)})",
        "every chunk's AES-GCM tag, index and final flag checked; the plaintext's sha256 against the "
        "manifest's; nothing written to disk",
        query_text("catalog_verified", id=target, verify="<the result>"),
    )
    return Preview(f"Verify backup {target} of {entry.database}.", calls)


async def _exists(env: ActionEnv, conn, target: str, params: Mapping[str, Any]) -> str | None:
    try:
        entry = await _entry(env, target)
    except ServiceError as exc:
        return str(exc)
    if entry is None:
        return f"there is no backup {target}"
    if not entry.legacy:
        try:
            env.services.backups.key()
        except ServiceError as exc:
            return str(exc)
    return None


async def _verify_run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
    entry = await env.services.backups.get(target)
    checked = await env.services.backups.verify(entry, say=progress)
    if not checked.ok:
        raise ActionFailed(
            f"backup {target} is damaged: {checked.problem}",
            hint="do not restore it; back up again now",
            detail=checked.as_json(),
        )
    return Result(
        f"backup {target} verified: {checked.chunks} chunks, {human_bytes(checked.plaintext_bytes)}, "
        f"sha256 matches the manifest, {checked.seconds:.1f} s",
        checked.as_json(),
    )


VERIFY_BACKUP = Action(
    name="verify_backup",
    short="Verify",
    title="Verify backup",
    key="V",
    role="oncall",
    confirmation=Confirmation.YES_NO,
    help="download a backup and check every chunk and its sha256 (nothing written to disk)",
    target_kind="backup",
    preview=_verify_preview,
    check=_exists,
    run=_verify_run,
    verb="verifying",
)


# -- restore drill ---------------------------------------------------------------------


async def _drill_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    backups = env.services.backups
    entry = await _entry(env, target)
    if entry is None:
        return Preview(f"Restore drill of backup {target}: there is no such backup.", ())
    into = params.get("into")
    name = drill_database(target)
    admin = backups._restore_dsn or ""
    scratch = into or dsn_for_database(admin, name)
    tool = (
        "psql --set=ON_ERROR_STOP=1 --single-transaction"
        if entry.legacy
        else "pg_restore --jobs=4 --no-owner --no-acl --exit-on-error"
    )
    calls = [
        f"S3 GetObject s3://{backups.storage.bucket}/{entry.key} into a private temporary file, "
        "checked to its last chunk before anything is restored"
    ]
    if not into:
        calls.append(f"CREATE DATABASE {name} TEMPLATE template0  -- on {describe_dsn(admin)}")
    calls += [
        f"{tool} --dbname={_bare(scratch)}",
        "row counts of every table against the manifest; CREATE EXTENSION IF NOT EXISTS amcheck; "
        f"bt_index_check on every B-tree index; {SMOKE_QUERY}",
    ]
    if not into:
        calls.append(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    if entry.catalogued:
        calls.append(query_text("catalog_drilled", id=target, drill="<the evidence>"))
    where = describe_dsn(into) if into else f"a scratch database {name}, dropped afterwards"
    return Preview(
        f"Restore drill of backup {target}: restore it into {where} and gather the evidence.", tuple(calls)
    )


async def _drill_run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
    entry = await env.services.backups.get(target)
    drill = await env.services.backups.drill(entry, into=params.get("into"), say=progress)
    detail = drill.as_json()
    if not drill.checked.ok:
        raise ActionFailed(
            f"backup {target} is damaged: {drill.checked.problem}; nothing was restored",
            hint="back up again now",
            detail=detail,
        )
    evidence = drill.evidence
    assert evidence is not None
    if not drill.ok:
        problems = [f"tables differ: {', '.join(evidence.mismatched[:5])}"] if evidence.mismatched else []
        problems += list(evidence.index_failures[:3])
        if evidence.amcheck != "ok":
            problems.append(evidence.amcheck)
        if evidence.smoke_error:
            problems.append(f"smoke query: {evidence.smoke_error}")
        raise ActionFailed(f"restore drill of {target} failed: " + "; ".join(problems), detail=detail)
    total = sum(v["found"] or 0 for v in evidence.tables.values())
    return Result(
        f"restore drill of {target} passed: {len(evidence.tables)} tables, {total:,} rows as in the "
        "manifest, "
        f"{evidence.indexes_checked} indexes checked by amcheck, users = {evidence.smoke:,}; "
        f"restore {drill.seconds.get('restore', 0):.1f} s",
        detail,
    )


DRILL_BACKUP = Action(
    name="drill_backup",
    short="Drill",
    title="Restore drill",
    key="L",
    role="oncall",
    confirmation=Confirmation.YES_NO,
    help="restore a backup into a scratch database and check it: row counts, amcheck, the smoke query",
    target_kind="backup",
    preview=_drill_preview,
    check=_exists,
    run=_drill_run,
    inputs=(
        Input(
            "into",
            "restore into (DSN; default: a scratch database)",
            parse_dsn,
            optional=True,
            asked=False,
            show=mask_url,
        ),
    ),
    verb="drilling",
)


# -- restore ---------------------------------------------------------------------------


def _restore_word(target: str, params: Mapping[str, Any]) -> str:
    return _database_of(params.get("into") or "") or target


async def _restore_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    backups = env.services.backups
    entry = await _entry(env, target)
    into = params.get("into") or ""
    if entry is None:
        return Preview(f"Restore backup {target}: there is no such backup.", ())
    tool = (
        "psql --set=ON_ERROR_STOP=1 --single-transaction"
        if entry.legacy
        else "pg_restore --jobs=4 --exit-on-error"
        + ("" if params.get("replace_live") else " --no-owner --no-acl")
        + " --clean --if-exists"
    )
    calls = (
        f"S3 GetObject s3://{backups.storage.bucket}/{entry.key} into a private temporary file, checked "
        "to its last chunk before anything is restored",
        f"{tool} --dbname={_bare(into)}",
        f"row counts of every table against the manifest; amcheck; {SMOKE_QUERY}",
    )
    warnings = ["objects in that database that the backup also holds are dropped and replaced"]
    if params.get("replace_live"):
        warnings[:0] = [
            "THIS IS THE LIVE DATABASE: scale the bot to 0 first (the runbook's step 1)",
            "the audit log is part of the database: its rows after this backup's audit head "
            f"({(entry.manifest or {}).get('audit_head') or 'none'}) are replaced by the backup's; "
            "`opsconsole audit verify` will report the cut",
        ]
    return Preview(
        f"Restore backup {target} ({entry.finished_at:%Y-%m-%d %H:%M} UTC) into {describe_dsn(into)}.",
        calls,
        tuple(warnings),
    )


async def _restore_check(env: ActionEnv, conn, target: str, params: Mapping[str, Any]) -> str | None:
    refusal = await _exists(env, conn, target, params)
    if refusal:
        return refusal
    try:
        live = await env.services.backups.is_live(params["into"])
    except ServiceError as exc:
        return f"cannot tell whether that is the live database: {exc}"
    if live and not params.get("replace_live"):
        return (
            "that is the live database: restoring over it needs --replace-live, which walks the "
            "database-corruption runbook (scale the bot to 0, restore, verify, scale back up)"
        )
    return None


async def _restore_run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
    backups = env.services.backups
    entry = await backups.get(target)
    started = time.perf_counter()
    # Over the live database, owners and grants come back too (the console's role keeps
    # its access to the audit log); anywhere else the restoring login owns what it restores.
    live = bool(params.get("replace_live"))
    checked, evidence = await backups.restore(entry, params["into"], keep_acl=live, say=progress)
    where = describe_dsn(params["into"])
    if not checked.ok:
        raise ActionFailed(
            f"backup {target} is damaged: {checked.problem}; nothing was restored",
            hint="choose an older backup",
            detail=checked.as_json(),
        )
    assert evidence is not None
    detail = {
        "into": where,
        "evidence": evidence.as_json(),
        "seconds": round(time.perf_counter() - started, 2),
    }
    if not evidence.ok:
        raise ActionFailed(
            f"backup {target} restored into {where}, but the checks failed "
            f"(tables differ: {', '.join(evidence.mismatched[:5]) or 'none'}; "
            f"{evidence.smoke_error or evidence.amcheck})",
            detail=detail,
        )
    return Result(
        f"backup {target} restored into {where}: every table's rows as in the manifest, "
        f"users = {evidence.smoke:,}, {time.perf_counter() - started:.1f} s",
        detail,
    )


RESTORE_BACKUP = Action(
    name="restore_backup",
    short="Restore",
    title="Restore backup",
    key="O",
    role="admin",
    confirmation=Confirmation.TYPED,
    help="restore a backup into another database (the live one only with --replace-live)",
    target_kind="backup",
    preview=_restore_preview,
    check=_restore_check,
    run=_restore_run,
    inputs=(
        Input("into", "restore into which database (DSN)?", parse_dsn, show=mask_url),
        Input("replace_live", "replace the live database?", yes_no, default="no", asked=False),
    ),
    audit_params=("replace_live",),
    confirm_word=_restore_word,
    verb="restoring",
)


BACKUP_ACTIONS = (BACKUP_RUN, VERIFY_BACKUP, DRILL_BACKUP, RESTORE_BACKUP, PRUNE_BACKUPS)
