"""BackupsService: the database's backups in S3 (ours, catalogued in ops.backup_catalog
with a manifest beside each object, and the legacy `pg_dump | gzip` ones the AGIS manual's
cron script wrote), the RPO and restore-drill status, and run / verify / drill / restore /
prune. The actions in services/backup_actions.py call it; so do the CLI and the screen."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.backup_format import DEFAULT_CHUNK_SIZE, BackupKey, derive_key
from services.backup_model import (
    FORMAT,
    LEGACY_NAME,
    LEGACY_PREFIX,
    MANIFEST_SUFFIX,
    OBJECT_SUFFIX,
    OURS_PREFIX,
    BackupEntry,
    BackupsStatus,
    drill_database,
    entry_from_row,
    legacy_entry,
    new_backup_id,
    object_key,
)
from services.backup_restore import (
    Checked,
    Evidence,
    Say,
    dsn_for_database,
    gather_evidence,
    private_dir,
    read_backup,
    read_legacy,
    restore_file,
    scratch_database,
)
from services.backup_run import Dumped, DumpProgress, dump_to_storage
from services.dsn import describe_dsn
from services.errors import BackendFailed, NotConfigured, ServiceError
from services.pgtools import tool_version
from services.postgres import PostgresService
from services.storage import StorageService


class BackupNotFound(BackendFailed):
    """No backup with that id (in the catalogue or the bucket)."""


@dataclass(frozen=True)
class RunResult:
    id: str
    key: str
    manifest: dict[str, Any]
    dumped: Dumped


@dataclass(frozen=True)
class DrillResult:
    id: str
    checked: Checked
    evidence: Evidence | None
    database: str
    seconds: dict[str, float]

    @property
    def ok(self) -> bool:
        return self.checked.ok and self.evidence is not None and self.evidence.ok

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "database": self.database, "verify": self.checked.as_json(),
                "evidence": self.evidence.as_json() if self.evidence else None,
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()}}  # fmt: skip


class BackupsService:
    backend = "backup"

    def __init__(
        self,
        postgres: PostgresService,
        storage: StorageService,
        *,
        dsn: str | None,
        encryption_key: str | None,
        restore_dsn: str | None = None,
        retention_days: int = 30,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ):
        self.postgres = postgres
        self.storage = storage
        self._dsn = dsn
        self._encryption_key = encryption_key
        self._restore_dsn = restore_dsn or dsn
        self.retention_days = retention_days
        self.chunk_size = chunk_size

    # -- configuration ------------------------------------------------------------------

    def key(self) -> BackupKey:
        """The master key; raises BackupKeyMissing / BackupKeyInvalid (NotConfigured)."""
        return derive_key(self._encryption_key)

    @property
    def database(self) -> str:
        """The live database's name (the backup action's target)."""
        return describe_dsn(self._dsn or "").rpartition("/")[2] or "postgres"

    @property
    def where(self) -> str:
        return describe_dsn(self._dsn or "")

    def problems(self) -> list[str]:
        """What stops a backup from running, as lines (empty when it can run)."""
        out = []
        if not self._dsn:
            out.append("the database is not configured (DATABASE_URL)")
        if not self.storage.configured:
            out.append("S3 is not configured (S3_ENDPOINT and S3_BUCKET)")
        try:
            self.key()
        except ServiceError as exc:
            out.append(str(exc))
        try:
            tool_version("pg_dump")
        except ServiceError as exc:
            out.append(str(exc))
        return out

    # -- reading ------------------------------------------------------------------------

    async def status(self, now: datetime | None = None, limit: int = 500) -> BackupsStatus:
        """Every backup (catalogued ones from the catalogue, legacy ones from the bucket),
        newest first, with the RPO and drill status. Raises ServiceError when S3 cannot be
        listed; a catalogue that cannot be read is reported, not raised."""
        now = now or datetime.now(UTC)
        entries: dict[str, BackupEntry] = {}
        problem = None
        try:
            for row in await self.postgres.run("catalog_list", limit=limit):
                entries[row["object_key"]] = entry_from_row(row)
        except ServiceError as exc:
            problem = str(exc)
        for prefix in (LEGACY_PREFIX, OURS_PREFIX):
            async with aclosing(self.storage.list_objects(prefix)) as pages:
                async for page in pages:
                    for obj in page:
                        if obj.key in entries:
                            continue
                        if prefix == LEGACY_PREFIX:
                            legacy = legacy_entry(obj.key, obj.size)
                            if legacy:
                                entries[obj.key] = legacy
                        elif obj.key.endswith(OBJECT_SUFFIX) and problem is not None:
                            # The catalogue is away: show our objects from the bucket.
                            backup_id = obj.key.rpartition("/")[2].removesuffix(OBJECT_SUFFIX)
                            entries[obj.key] = BackupEntry(
                                id=backup_id, kind="opsconsole", key=obj.key,
                                finished_at=obj.modified or now, stored_bytes=obj.size,
                            )  # fmt: skip
        ordered = tuple(sorted(entries.values(), key=lambda e: e.finished_at, reverse=True))
        last_good = next((e for e in ordered if e.good), None)
        drilled = [e for e in ordered if e.drill_ok and e.drilled_at]
        last_drill = max(drilled, key=lambda e: e.drilled_at) if drilled else None
        return BackupsStatus(ordered, now, last_good, last_drill, problem)

    async def get(self, backup_id: str) -> BackupEntry:
        """One backup by id (ours) or by file name (legacy). Raises BackupNotFound."""
        backup_id = backup_id.strip()
        if LEGACY_NAME.match(LEGACY_PREFIX + backup_id):
            found = await self.storage.head(LEGACY_PREFIX + backup_id)
            entry = legacy_entry(found.key, found.size)
            assert entry is not None
            return entry
        row = await self.postgres.run("catalog_get", id=backup_id)
        if row is None:
            raise BackupNotFound(
                f"there is no backup {backup_id} in ops.backup_catalog", backend=self.backend
            )
        return entry_from_row(row)

    async def latest(self) -> BackupEntry:
        """The newest backup; raises BackupNotFound when there is none."""
        status = await self.status()
        if not status.entries:
            raise BackupNotFound("there are no backups", backend=self.backend)
        return status.entries[0]

    async def expected_size(self) -> int | None:
        try:
            return await self.postgres.run("catalog_last_sizes", database=self.database)
        except ServiceError:
            return None

    # -- making one ---------------------------------------------------------------------

    async def run(self, operator: str, on_progress: Callable[[DumpProgress], None] | None = None,
                  *, level: int | None = None, at: datetime | None = None) -> RunResult:  # fmt: skip
        """Back up the live database: dump, upload, manifest, catalogue. Nothing is
        catalogued unless all of it succeeded; a failure after the upload deletes the
        object again. Raises ServiceError (NotConfigured without a key: never plaintext)."""
        key = self.key()
        if not self._dsn:
            raise NotConfigured("the database is not configured (DATABASE_URL)", backend=self.backend)
        # `at` dates a backup made now as if it had started then (the sandbox's nightly history).
        started = at or datetime.now(UTC)
        backup_id = new_backup_id(started)
        where = object_key(self.database, backup_id)
        dumped = await dump_to_storage(
            self._dsn, self.storage, where, key, where=self.where, expected_size=await self.expected_size(),
            chunk_size=self.chunk_size, level=level, on_progress=on_progress,
            metadata={"opsconsole-backup": FORMAT, "backup-id": backup_id},
        )  # fmt: skip
        finished = started + timedelta(seconds=dumped.seconds)
        manifest = {
            "format": FORMAT, "id": backup_id, "database": self.database, "object_key": where,
            "started_at": started.isoformat(), "finished_at": finished.isoformat(), "operator": operator,
            "plaintext_bytes": dumped.plaintext_bytes, "compressed_bytes": dumped.compressed_bytes,
            "stored_bytes": dumped.upload.size, "plaintext_sha256": dumped.plaintext_sha256,
            "stored_sha256": dumped.upload.sha256, "chunks": dumped.chunks, "chunk_size": self.chunk_size,
            "key_id": key.key_id.hex(), "pg_dump_version": tool_version("pg_dump"),
            "server_version": dumped.snapshot.server_version, "audit_head": dumped.snapshot.audit_head,
            "tables": dumped.snapshot.tables, "seconds": round(dumped.seconds, 3),
        }  # fmt: skip
        try:
            await self.storage.put_bytes(where + MANIFEST_SUFFIX, json.dumps(manifest, indent=1).encode(),
                                         "application/json")  # fmt: skip
            await self.postgres.run(
                "catalog_insert", read=False, id=backup_id, object_key=where, database=self.database,
                operator=operator, started_at=started, finished_at=finished,
                plaintext_bytes=dumped.plaintext_bytes, stored_bytes=dumped.upload.size,
                plaintext_sha256=dumped.plaintext_sha256, manifest=json.dumps(manifest),
            )  # fmt: skip
        except ServiceError as exc:
            await self._forget(where)
            raise type(exc)(f"{exc}; the uploaded backup was deleted again (not catalogued)",
                            backend=exc.backend) from exc  # fmt: skip
        return RunResult(backup_id, where, manifest, dumped)

    async def _forget(self, where: str) -> None:
        for key in (where, where + MANIFEST_SUFFIX):
            try:
                await self.storage.delete(key)
            except ServiceError:
                pass

    # -- checking one -------------------------------------------------------------------

    async def verify(self, entry: BackupEntry, say: Callable[[str], None] | None = None) -> Checked:
        """Read the whole object back and check it (nothing written to disk); the result
        is recorded in the catalogue. Raises ServiceError when S3 cannot be read."""
        if entry.legacy:
            return await read_legacy(self.storage, entry.key)
        checked = await read_backup(self.storage, entry.key, self.key(), entry.manifest, say=say)
        await self.postgres.run(
            "catalog_verified", read=False, id=entry.id, verify=json.dumps(checked.as_json())
        )
        return checked

    async def fetch_checked(self, entry: BackupEntry, path, say=None) -> Checked:
        """Download `entry` into file `path`, checked to its last chunk."""
        with open(path, "wb") as sink:  # noqa: ASYNC230 - a local file; every write goes to a thread
            if entry.legacy:
                return await read_legacy(self.storage, entry.key, sink=sink)
            return await read_backup(self.storage, entry.key, self.key(), entry.manifest, sink=sink, say=say)

    async def drill(self, entry: BackupEntry, *, into: str | None = None, jobs: int = 4,
                    say: Callable[[str], None] | None = None) -> DrillResult:  # fmt: skip
        """Restore drill: restore into a scratch database (made and dropped here) or
        `into`, gather the evidence, record it. Nothing is restored unless the whole
        object checked. Raises ServiceError."""
        import time

        say = say or (lambda _m: None)
        seconds: dict[str, float] = {}
        name = drill_database(entry.id)
        admin = self._restore_dsn or ""
        target = into or dsn_for_database(admin, name)
        with private_dir("opsconsole-drill-") as tmp:
            say("downloading and checking every chunk")
            checked = await self.fetch_checked(entry, tmp / "archive", say)
            seconds["download"] = checked.seconds
            if not checked.ok:
                result = DrillResult(
                    entry.id, checked, None, name if not into else describe_dsn(into), seconds
                )
                if entry.catalogued:
                    await self._record_drill(entry, result)
                return result
            if not into:
                await scratch_database(admin, name, describe_dsn(admin), drop=True)
                await scratch_database(admin, name, describe_dsn(admin))
            try:
                say("restoring" + (" with psql" if entry.legacy else " with pg_restore -j"))
                started = time.perf_counter()
                await restore_file(tmp / "archive", target, legacy=entry.legacy, jobs=jobs)
                seconds["restore"] = time.perf_counter() - started
                say("checking row counts, indexes (amcheck) and the smoke query")
                started = time.perf_counter()
                expected = (entry.manifest or {}).get("tables", {})
                evidence = await gather_evidence(target, expected, describe_dsn(target))
                seconds["evidence"] = time.perf_counter() - started
            finally:
                if not into:
                    await scratch_database(admin, name, describe_dsn(admin), drop=True)
        result = DrillResult(entry.id, checked, evidence, describe_dsn(target), seconds)
        if entry.catalogued:
            await self._record_drill(entry, result)
        return result

    async def _record_drill(self, entry: BackupEntry, result: DrillResult) -> None:
        await self.postgres.run(
            "catalog_drilled", read=False, id=entry.id, drill=json.dumps(result.as_json())
        )

    async def is_live(self, dsn: str) -> bool:
        """Whether `dsn` is the live database (same cluster system identifier and database
        oid, whatever host name reaches it). Raises ServiceError when either cannot be read."""
        import asyncpg

        from services.postgres import explain_failure, named_queries

        live = await self.postgres.run("audit_database_identity", read=False)
        try:
            conn = await asyncpg.connect(dsn, timeout=10)
        except Exception as exc:
            raise explain_failure(exc, describe_dsn(dsn), 10) from exc
        try:
            other = await named_queries().audit_database_identity(conn)
        finally:
            await conn.close()
        return (other["cluster"], other["oid"]) == (live["cluster"], live["oid"])

    async def restore(
        self,
        entry: BackupEntry,
        into: str,
        *,
        jobs: int = 4,
        clean: bool = True,
        keep_acl: bool = False,
        say: Say | None = None,
    ) -> tuple[Checked, Evidence | None]:
        """Restore `entry` into the database at `into` (the caller decided it may), then
        gather the same evidence as a drill. Nothing is restored unless the whole object
        checked. Raises ServiceError."""
        say = say or (lambda _m: None)
        with private_dir("opsconsole-restore-") as tmp:
            say("downloading and checking every chunk")
            checked = await self.fetch_checked(entry, tmp / "archive", say)
            if not checked.ok:
                return checked, None
            say("restoring")
            await restore_file(tmp / "archive", into, legacy=entry.legacy, jobs=jobs, clean=clean,
                               keep_acl=keep_acl)  # fmt: skip
        say("checking row counts, indexes and the smoke query")
        expected = (entry.manifest or {}).get("tables", {})
        return checked, await gather_evidence(into, expected, describe_dsn(into))

    # -- retention ----------------------------------------------------------------------

    def prune_candidates(self, status: BackupsStatus, cutoff: datetime) -> list[BackupEntry]:
        """The backups that finished before `cutoff`, except the newest verified (or
        drilled) backup, which is always kept, and the newest backup of all."""
        keep = {e.key for e in status.entries if e.verify_ok or e.drill_ok}
        newest_verified = next((e for e in status.entries if e.key in keep and e.good), None)
        kept = {status.entries[0].key} if status.entries else set()
        if newest_verified:
            kept.add(newest_verified.key)
        return [e for e in status.entries if e.finished_at < cutoff and e.key not in kept]

    async def delete(self, entry: BackupEntry) -> None:
        """Delete one backup's object (and manifest), and mark it pruned. Raises ServiceError."""
        await self.storage.delete(entry.key)
        if not entry.legacy:
            await self.storage.delete(entry.key + MANIFEST_SUFFIX)
        if entry.catalogued:
            await self.postgres.run("catalog_pruned", read=False, id=entry.id)
