"""The sandbox's backup history, made with the real pipeline from the demo database: a week
of nightly backups (03:00 UTC), most verified and one restore-drilled, one damaged in the
bucket (found by its verification), and one legacy `pg_dump | gzip` object from the AGIS
manual's cron script, a day older than the rest."""

from __future__ import annotations

import asyncio
import gzip
import subprocess
from datetime import UTC, datetime, time, timedelta

import asyncpg

from services.backup_model import LEGACY_PREFIX
from services.backups import BackupsService
from services.pgtools import pg_tool, tool_env
from services.postgres import PostgresConfig, PostgresService
from services.storage import StorageService

NIGHTS = 7
DAMAGED_NIGHT = 4  # nights ago: its object gets one flipped byte
DRILLED_NIGHT = 2


def nightly(now: datetime, nights: int = NIGHTS) -> list[datetime]:
    """The `nights` most recent 03:00 UTC instants before `now`, newest first."""
    last = datetime.combine(now.date(), time(3, 0), tzinfo=UTC)
    if last > now:
        last -= timedelta(days=1)
    return [last - timedelta(days=n) for n in range(nights)]


async def seed_backups(owner_dsn: str, console_dsn: str, s3_env: dict[str, str], key: str) -> str:
    """Fill the empty backups bucket and the catalogue; returns a one-line summary. The
    catalogue is emptied first (the cluster outlives the in-memory S3 between runs)."""
    conn = await asyncpg.connect(owner_dsn)
    try:
        await conn.execute("DELETE FROM ops.backup_catalog")
    finally:
        await conn.close()
    storage = StorageService(s3_env["S3_ENDPOINT"], s3_env["S3_ACCESS_KEY"], s3_env["S3_SECRET_KEY"],
                             s3_env["S3_BUCKET"], use_ssl=False)  # fmt: skip
    postgres = PostgresService(PostgresConfig(dsn=console_dsn))
    backups = BackupsService(postgres, storage, dsn=console_dsn, encryption_key=key, restore_dsn=owner_dsn)
    try:
        nights = nightly(datetime.now(UTC))
        made = {}
        for n, at in reversed(list(enumerate(nights))):
            made[n] = await backups.run("cron", at=at)
        for n, result in made.items():
            if n == DAMAGED_NIGHT:
                data = bytearray(await storage.get_bytes(result.key, limit=1 << 30))
                data[len(data) // 2] ^= 0x01
                await storage.put_bytes(result.key, bytes(data))
            if n in (0, NIGHTS - 1):
                continue  # last night's is not verified yet, nor the oldest
            entry = await backups.get(result.id)
            if n == DRILLED_NIGHT:
                await backups.drill(entry)
            else:
                await backups.verify(entry)
        legacy_at = nights[-1] - timedelta(days=1)
        bare, env = tool_env(owner_dsn, "opsconsole-sandbox")
        dump = await asyncio.to_thread(subprocess.run, [pg_tool("pg_dump"), f"--dbname={bare}"],
                                       capture_output=True, env=env, check=True)  # fmt: skip
        legacy_key = f"{LEGACY_PREFIX}agis_backup_{legacy_at:%Y%m%d_%H%M%S}.sql.gz"
        await storage.put_bytes(legacy_key, gzip.compress(dump.stdout, 6), "application/gzip")
        # Checked the morning after, as a verification job would have.
        conn = await asyncpg.connect(owner_dsn)
        try:
            await conn.execute(
                "UPDATE ops.backup_catalog SET verified_at = finished_at + interval '2 hours' "
                "WHERE verified_at IS NOT NULL; "
                "UPDATE ops.backup_catalog SET drilled_at = finished_at + interval '3 hours' "
                "WHERE drilled_at IS NOT NULL"
            )
        finally:
            await conn.close()
    finally:
        await postgres.close()
    return (f"{NIGHTS} nightly backups (one drilled, one damaged in the bucket) and a legacy "
            f"{legacy_key.rpartition('/')[2]}")  # fmt: skip
