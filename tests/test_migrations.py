"""Migrations: versioned, one transaction each, safe twice and concurrently; the reference
schema only on request; the audit log append-only and hash-chained."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import asyncpg
import pytest

from services.errors import MigrationError
from services.migrations import discover, migrate


async def tables(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch(
        "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables"
        " WHERE table_schema IN ('public', 'ops')"
    )
    return {r["t"] for r in rows}


async def test_default_migrate_creates_only_the_ops_schema(blank_db):
    conn = await asyncpg.connect(blank_db)
    try:
        report = await migrate(conn)
        found = await tables(conn)
        assert {"ops.audit_log", "ops.claims", "ops.schema_migrations"} <= found
        assert "public.orders" not in found  # never the business tables by default
        assert report.skipped_reference and all("_ref_" in label for label in report.skipped_reference)
        # Asking later adds them.
        report = await migrate(conn, with_reference=True)
        assert set(report.applied) == set(report.applied) & {m.label for m in discover() if m.reference}
        assert "public.orders" in await tables(conn)
    finally:
        await conn.close()


async def test_migrate_twice_applies_nothing_the_second_time(blank_db):
    conn = await asyncpg.connect(blank_db)
    try:
        first = await migrate(conn, with_reference=True)
        second = await migrate(conn, with_reference=True)
    finally:
        await conn.close()
    assert len(first.applied) == len(discover())
    assert second.applied == ()
    assert second.already_applied == len(discover())


async def test_concurrent_migrations_do_not_collide(blank_db):
    conns = [await asyncpg.connect(blank_db) for _ in range(3)]
    try:
        reports = await asyncio.gather(*(migrate(c, with_reference=True) for c in conns))
        applied = [label for r in reports for label in r.applied]
        assert sorted(applied) == sorted(m.label for m in discover())  # each exactly once
        count = await conns[0].fetchval("SELECT count(*) FROM ops.schema_migrations")
        assert count == len(discover())
    finally:
        for c in conns:
            await c.close()


async def test_a_failing_migration_is_rolled_back_whole(blank_db, tmp_path: Path):
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE first_table (id int);")
    (tmp_path / "0002_broken.sql").write_text(
        "CREATE TABLE half_table (id int);\nSELECT no_such_column FROM first_table;"
    )
    conn = await asyncpg.connect(blank_db)
    try:
        with pytest.raises(MigrationError, match="0002_broken failed and was rolled back"):
            await migrate(conn, directory=tmp_path)
        assert await conn.fetchval("SELECT to_regclass('first_table') IS NOT NULL")
        assert await conn.fetchval("SELECT to_regclass('half_table') IS NULL")
        versions = await conn.fetch("SELECT version FROM ops.schema_migrations")
        assert [r["version"] for r in versions] == [1]
    finally:
        await conn.close()


async def test_an_edited_migration_is_refused(blank_db, tmp_path: Path):
    path = tmp_path / "0001_first.sql"
    path.write_text("CREATE TABLE first_table (id int);")
    conn = await asyncpg.connect(blank_db)
    try:
        await migrate(conn, directory=tmp_path)
        path.write_text("CREATE TABLE first_table (id bigint);")
        with pytest.raises(MigrationError, match="edited after it was applied"):
            await migrate(conn, directory=tmp_path)
    finally:
        await conn.close()


def test_badly_named_migration_files_are_named_in_the_error(tmp_path: Path):
    (tmp_path / "first.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"first\.sql"):
        discover(tmp_path)


async def _audit(conn, action: str, target: str = "order-1") -> int:
    return await conn.fetchval(
        "INSERT INTO ops.audit_log (operator, role, action, target, phase)"
        " VALUES ('alice', 'oncall', $1, $2, 'intent') RETURNING id",
        action,
        target,
    )


async def test_audit_log_refuses_update_delete_and_truncate(empty_db):
    conn = await asyncpg.connect(empty_db)
    try:
        row_id = await _audit(conn, "retry_provisioning")
        for statement in (
            f"UPDATE ops.audit_log SET operator = 'mallory' WHERE id = {row_id}",
            f"DELETE FROM ops.audit_log WHERE id = {row_id}",
            "TRUNCATE ops.audit_log",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)
        assert await conn.fetchval("SELECT operator FROM ops.audit_log WHERE id = $1", row_id) == "alice"
    finally:
        await conn.close()


async def test_audit_rows_are_hash_chained(empty_db):
    conn = await asyncpg.connect(empty_db)
    try:
        for action in ("a", "b", "c"):
            await _audit(conn, action)
        rows = await conn.fetch("SELECT id, prev_hash, hash FROM ops.audit_log ORDER BY id")
        assert rows[0]["prev_hash"] == ""
        for before, after in itertools.pairwise(rows):
            assert after["prev_hash"] == before["hash"]
        # Each hash is what the shared function recomputes from the row.
        ok = await conn.fetchval(
            "SELECT bool_and(hash = ops.audit_row_hash(prev_hash, a)) FROM ops.audit_log a"
        )
        assert ok
    finally:
        await conn.close()


async def test_audit_insert_notifies_every_console(empty_db):
    listener = await asyncpg.connect(empty_db)
    got: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener("ops_events", lambda *args: got.put_nowait(args[3]))
    writer = await asyncpg.connect(empty_db)
    try:
        await _audit(writer, "scale_deployment", "agis-bot")
        payload = await asyncio.wait_for(got.get(), 5)
        assert '"kind" : "audit"' in payload or '"kind": "audit"' in payload
        assert "agis-bot" in payload
    finally:
        await writer.close()
        await listener.close()
