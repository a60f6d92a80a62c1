"""Database backups end to end, on a real PostgreSQL (pg_dump, pg_restore, psql, amcheck)
and a real S3 protocol server (moto's): run -> verify -> restore drill -> every table's rows
equal; damage of every kind found before anything is restored; plaintext never stored;
the legacy format restores; prune keeps what it must; S3 dying mid-upload leaves nothing."""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from console.sandbox.s3 import S3Server
from services.backup_model import LEGACY_PREFIX, MANIFEST_SUFFIX, BackupEntry, drill_database
from services.backups import BackupsService
from services.errors import ServiceError
from services.pgtools import pg_tool, tool_env
from services.postgres import PostgresConfig, PostgresService
from services.storage import StorageService
from tests.conftest import as_runtime

KEY = "00" * 16 + "11" * 16  # 64 hex characters: a raw 32-byte key
pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    return s3_server.create_bucket(f"backups-{uuid.uuid4().hex[:12]}")


def storage_for(server: S3Server, bucket: str, url: str | None = None) -> StorageService:
    env = server.env(bucket)
    return StorageService(url or env["S3_ENDPOINT"], env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"], bucket,
                          use_ssl=False, abort_grace=2.0)  # fmt: skip


@pytest.fixture
async def backups(seeded_db: str, s3_server: S3Server, bucket: str):
    """The service as the console runs it: the runtime login dumps; the owner makes scratch databases."""
    runtime = as_runtime(seeded_db)
    postgres = PostgresService(PostgresConfig(dsn=runtime))
    service = BackupsService(postgres, storage_for(s3_server, bucket), dsn=runtime, encryption_key=KEY,
                             restore_dsn=seeded_db, chunk_size=64 * 1024)  # fmt: skip
    yield service
    await postgres.close()


def stored_objects(server: S3Server, bucket: str) -> dict[str, bytes]:
    client = server.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def in_progress(server: S3Server, bucket: str) -> list:
    return server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])


async def table_counts(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch("SELECT schemaname, relname FROM pg_stat_user_tables ORDER BY 1, 2")
        out = {}
        for t in tables:
            name = f'"{t["schemaname"]}"."{t["relname"]}"'
            out[f"{t['schemaname']}.{t['relname']}"] = await conn.fetchval(f"SELECT count(*) FROM {name}")
        return out
    finally:
        await conn.close()


async def test_round_trip_run_verify_drill_every_table_equal(
    backups: BackupsService, seeded_db, s3_server, bucket
):
    said: list[str] = []
    live = await table_counts(seeded_db)  # the backup adds its own catalogue row after the dump
    result = await backups.run("alice", on_progress=lambda p: said.append(p.line()))
    assert said and "dumped" in said[-1]
    manifest = result.manifest
    # The manifest's counts are the dump's: every table, as the live database holds it.
    assert manifest["tables"] == live
    assert manifest["tables"]["public.orders"] > 0
    assert manifest["operator"] == "alice" and manifest["plaintext_sha256"]
    objects = stored_objects(s3_server, bucket)
    assert set(objects) == {result.key, result.key + MANIFEST_SUFFIX}
    assert json.loads(objects[result.key + MANIFEST_SUFFIX])["id"] == result.id

    entry = await backups.get(result.id)
    checked = await backups.verify(entry)
    assert checked.ok and checked.plaintext_sha256 == manifest["plaintext_sha256"]
    assert (await backups.get(result.id)).verify_ok is True

    drill = await backups.drill(await backups.get(result.id))
    assert drill.ok, drill.as_json()
    evidence = drill.evidence
    assert evidence is not None and not evidence.mismatched
    assert {t: v["found"] for t, v in evidence.tables.items()} == live
    assert evidence.indexes_checked > 5 and evidence.amcheck == "ok"
    assert evidence.smoke == live["public.users"]
    stored = await backups.get(result.id)
    assert stored.drill_ok and stored.drilled_at is not None
    # The scratch database is gone again.
    conn = await asyncpg.connect(seeded_db)
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1",
                                   drill_database(result.id)) == 0  # fmt: skip
    finally:
        await conn.close()
    status = await backups.status()
    assert status.rpo_ok and status.last_good.id == result.id and not status.drill_due


async def test_plaintext_is_never_in_the_bucket(backups: BackupsService, seeded_db, s3_server, bucket):
    conn = await asyncpg.connect(seeded_db)
    try:
        email = await conn.fetchval("SELECT email FROM users ORDER BY id LIMIT 1")
    finally:
        await conn.close()
    result = await backups.run("alice")
    stored = stored_objects(s3_server, bucket)[result.key]
    assert email.encode() not in stored
    assert b"PGDMP" not in stored  # pg_dump's custom-format magic: not even the archive header
    assert result.manifest["stored_bytes"] == len(stored)


def _damage(server: S3Server, bucket: str, key: str, change) -> None:
    client = server.client()
    data = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    client.put_object(Bucket=bucket, Key=key, Body=change(data))


@pytest.mark.parametrize(
    "damage",
    ["flipped byte in the first chunk", "flipped byte in the last chunk", "truncated", "swapped chunks",
     "wrong key"],
)  # fmt: skip
async def test_damage_is_found_before_anything_is_restored(backups, seeded_db, s3_server, bucket, damage):
    result = await backups.run("alice")
    entry = await backups.get(result.id)
    assert result.dumped.chunks >= 3
    header = 123

    def frames(data: bytes) -> list[bytes]:
        out, at = [], header
        while at < len(data):
            length = int.from_bytes(data[at : at + 4], "big")
            out.append(data[at : at + 5 + length])
            at += 5 + length
        return out

    if damage == "wrong key":
        backups = BackupsService(backups.postgres, backups.storage, dsn=as_runtime(seeded_db),
                                 encryption_key="ab" * 32, restore_dsn=seeded_db)  # fmt: skip
    else:

        def change(data: bytes) -> bytes:
            if damage == "truncated":
                return data[: len(data) - len(frames(data)[-1])]
            if damage == "swapped chunks":
                parts = frames(data)
                parts[0], parts[1] = parts[1], parts[0]
                return data[:header] + b"".join(parts)
            at = header + 100 if "first" in damage else len(data) - 20
            return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]

        _damage(s3_server, bucket, result.key, change)
    checked = await backups.verify(entry)
    assert not checked.ok and checked.problem
    drill = await backups.drill(entry)
    assert not drill.ok and drill.evidence is None
    # Nothing was restored: the scratch database was never made.
    conn = await asyncpg.connect(seeded_db)
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1",
                                   drill_database(result.id)) == 0  # fmt: skip
    finally:
        await conn.close()
    assert (await backups.get(result.id)).state() == "DAMAGED"


async def test_the_legacy_format_restores(backups: BackupsService, seeded_db, s3_server, bucket, pg_cluster):
    bare, env = tool_env(seeded_db, "test")
    argv = [pg_tool("pg_dump"), f"--dbname={bare}"]
    dump = await asyncio.to_thread(subprocess.run, argv, capture_output=True, env=env, check=True)
    key = f"{LEGACY_PREFIX}agis_backup_20261130_030000.sql.gz"
    s3_server.client().put_object(Bucket=bucket, Key=key, Body=gzip.compress(dump.stdout))
    status = await backups.status(now=datetime(2026, 11, 30, 12, tzinfo=UTC))
    legacy = next(e for e in status.entries if e.legacy)
    assert legacy.finished_at == datetime(2026, 11, 30, 3, tzinfo=UTC)
    assert status.rpo_ok  # a legacy backup counts for the RPO
    assert (await backups.verify(legacy)).ok
    drill = await backups.drill(legacy)
    assert (
        drill.evidence is not None and drill.evidence.smoke == (await table_counts(seeded_db))["public.users"]
    )
    found = {t: v["found"] for t, v in drill.evidence.tables.items()}
    assert found == await table_counts(seeded_db)


async def test_prune_keeps_the_newest_verified_and_deletes_only_what_is_older(backups, s3_server, bucket):
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)

    def entry(days: float, verified: bool = False) -> BackupEntry:
        finished = now - timedelta(days=days)
        return BackupEntry(id=f"b{days}", kind="opsconsole", key=f"k{days}", finished_at=finished,
                           stored_bytes=1, verify={"ok": True} if verified else None)  # fmt: skip

    from services.backup_model import BackupsStatus

    entries = (entry(1), entry(20), entry(40, verified=True), entry(50, verified=True), entry(60))
    status = BackupsStatus(entries, now, entries[0], None)
    gone = backups.prune_candidates(status, now - timedelta(days=30))
    assert [e.id for e in gone] == ["b50", "b60"]  # b40 is the newest verified: kept
    entries = (entry(1, verified=True), entry(31), entry(45))
    gone = backups.prune_candidates(BackupsStatus(entries, now, entries[0], None), now - timedelta(days=30))
    assert [e.id for e in gone] == ["b31", "b45"]
    assert (
        backups.prune_candidates(BackupsStatus((entry(90),), now, None, None), now - timedelta(days=30)) == []
    )


async def test_s3_dying_mid_upload_leaves_no_catalogued_backup_and_no_parts(seeded_db, s3_server, bucket):
    import threading

    from tests.tcp_proxy import TcpProxy

    # 12 MiB of random bytes: a dump of more than one 8 MiB part, whatever zstd does.
    conn = await asyncpg.connect(seeded_db)
    try:
        await conn.execute(
            "CREATE TABLE noise AS SELECT decode(md5(random()::text) || md5(random()::text), 'hex') AS b "
            "FROM generate_series(1, 400000); GRANT SELECT ON noise TO ops_runtime"
        )
    finally:
        await conn.close()
    runtime = as_runtime(seeded_db)
    postgres = PostgresService(PostgresConfig(dsn=runtime))
    proxy = TcpProxy("127.0.0.1", s3_server.port)
    proxy.up()
    try:
        storage = storage_for(s3_server, bucket, f"http://127.0.0.1:{proxy.port}")
        storage.abort_grace = 20
        service = BackupsService(postgres, storage, dsn=runtime, encryption_key=KEY)
        cut = []

        def on_progress(progress) -> None:
            # S3 goes away once the first part is stored, and is back 2 s later: the
            # upload fails, and its abort (retried meanwhile) removes the stored part.
            if progress.uploaded > 0 and not cut:
                cut.append(progress.uploaded)
                proxy.down()
                threading.Timer(2.0, proxy.up).start()

        with pytest.raises(ServiceError) as failed:
            await service.run("alice", on_progress=on_progress)
        assert cut and "aborted" in str(failed.value)
        assert in_progress(s3_server, bucket) == []
        assert stored_objects(s3_server, bucket) == {}
        status = await service.status()
        assert status.entries == () and not status.rpo_ok
    finally:
        proxy.close()
        await postgres.close()


async def test_the_rpo_and_the_drill_are_alerts_until_a_backup_is_made_and_drilled(backups, seeded_db):
    from services.alerts import AlertsService

    alerts = AlertsService(None, None, backups.postgres)
    alerts.backup_status = backups.status

    def backup_alerts(snapshot) -> dict[str, str]:
        return {a.name: a.severity for a in snapshot.firing() if a.name in
                ("BackupTooOld", "BackupDamaged", "RestoreDrillOverdue")}  # fmt: skip

    before = await alerts.snapshot()
    assert backup_alerts(before) == {"BackupTooOld": "critical", "RestoreDrillOverdue": "warning"}
    made = await backups.run("alice")
    await backups.drill(await backups.get(made.id))
    alerts._read_at.clear()  # the next poll after a minute
    assert backup_alerts(await alerts.snapshot()) == {}
