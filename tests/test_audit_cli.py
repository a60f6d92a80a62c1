"""`opsconsole audit verify` on the command line (console.commands.audit, run through
typer's CliRunner): intact with the anchors it checked and a head to keep; that head, or
this machine's anchors, catch a cut tail; no anchors says what it cannot see."""

from __future__ import annotations

import asyncio
import re

import asyncpg
import pytest
import typer
from typer.testing import CliRunner

from console.commands.audit import audit_cli
from services.audit import AuditService
from services.postgres import PostgresConfig, PostgresService


@pytest.fixture
def runtime_env(seeded_runtime_db, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", seeded_runtime_db)
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent")
    return seeded_runtime_db


async def write_rows(dsn: str, n: int) -> None:
    audit = AuditService(PostgresService(PostgresConfig(dsn=dsn)))  # the default anchor file
    try:
        for i in range(n):
            await audit.record(operator="alice", role="oncall", action="node_disable",
                               target=f"node-{i}", phase="intent")  # fmt: skip
    finally:
        await audit.postgres.close()


# Registered the way the opsconsole command registers it.
opsconsole = typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False)
opsconsole.add_typer(audit_cli, name="audit")


def verify(*args: str):
    return CliRunner().invoke(opsconsole, ["audit", "verify", *args], terminal_width=200)


async def cut(dsn: str, row_id: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:  # a superuser cuts a row behind the trigger's back
        await conn.execute("ALTER TABLE ops.audit_log DISABLE TRIGGER audit_log_no_update")
        await conn.execute("DELETE FROM ops.audit_log WHERE id = $1", int(row_id))
    finally:
        await conn.close()


# Sync tests: the command runs its own event loop, as it does from a shell.
def test_verify_prints_what_it_checked_and_a_head_that_later_catches_a_cut_tail(
    runtime_env, seeded_db, tmp_path
):
    asyncio.run(write_rows(runtime_env, 3))
    result = verify()
    assert result.exit_code == 0, result.output
    assert "audit chain intact: 3 rows" in result.stdout
    assert "3 anchors kept on this machine checked (the newest: row " in result.stdout
    found = re.search(r"head: row (\d+) hash ([0-9a-f]{64}) — keep it to check later", result.stdout)
    assert found
    head = f"{found[1]}:{found[2]}"

    asyncio.run(cut(seeded_db, found[1]))

    elsewhere = verify("--anchors", str(tmp_path / "no-anchors.jsonl"))
    assert elsewhere.exit_code == 0
    assert "a cut tail or a truncation cannot be detected from here" in elsewhere.stdout
    for args in ((), ("--anchors", str(tmp_path / "no-anchors.jsonl"), "--head", head)):
        broken = verify(*args)
        assert broken.exit_code == 1
        assert f"audit chain broken at row {found[1]}: it is gone, though" in broken.stderr


def test_a_head_that_is_not_id_hash_is_a_usage_error(runtime_env):
    result = verify("--head", "42:nothex")
    assert result.exit_code == 2 and "64 hex digits" in result.output
