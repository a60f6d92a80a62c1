"""`opsconsole backup ...` as an operator runs it: run -> list -> verify --latest ->
verify --restore -> restore into another database; read-only blocks run, restore and prune;
the live database is refused without the typed name and --replace-live; no key, no backup;
the restore DSN's password is never printed."""

from __future__ import annotations

import asyncio
import json
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from console.sandbox.s3 import S3Server
from console.settings import real_user
from tests.conftest import as_runtime
from tests.test_trust import operators, run, value

KEY = "cd" * 32


@pytest.fixture(scope="module")
def s3_server():
    with S3Server() as server:
        yield server


@pytest.fixture
def world(seeded_db, s3_server, tmp_path):
    bucket = s3_server.create_bucket(f"backups-{uuid.uuid4().hex[:10]}")
    env = {"DATABASE_URL": as_runtime(seeded_db), "OPSCONSOLE_RESTORE_DSN": seeded_db,
           **s3_server.env(bucket), "S3_USE_SSL": "false", "BACKUP_ENCRYPTION_KEY": KEY}  # fmt: skip
    return env, operators(tmp_path, **{real_user(): "admin"}), bucket


def new_database(owner_dsn: str, password: str | None = None) -> str:
    name = f"restored_{uuid.uuid4().hex[:8]}"

    async def make() -> None:
        conn = await asyncpg.connect(owner_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(make())
    parts = urlsplit(owner_dsn)
    netloc = parts.netloc
    if password:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user}:{password}@{host}"
    return urlunsplit(parts._replace(netloc=netloc, path="/" + name))


def test_run_list_verify_drill_restore_from_the_command_line(world, seeded_db):
    env, config, _bucket = world
    made = run(["backup", "run", "--yes", "--json", "--config", config], env)
    assert made.exit_code == 0, made.output
    done = json.loads(made.output[made.output.index("{") :])
    assert done["status"] == "ok" and done["detail"]["stored_bytes"] > 0
    backup_id = done["detail"]["id"]

    listed = json.loads(run(["backup", "list", "--json", "--config", config], env).output)
    assert [b["id"] for b in listed["backups"]] == [backup_id]
    assert listed["rpo"]["ok"] and listed["backups"][0]["state"] == "unverified"
    text = run(["backup", "list", "--config", config], env).output
    assert backup_id in text and "within the 24 h RPO" in text and "restore drill: never done" in text

    verified = run(["backup", "verify", "--latest", "--yes", "--config", config], env)
    assert verified.exit_code == 0 and "sha256 matches the manifest" in verified.output, verified.output
    drilled = run(["backup", "verify", backup_id, "--restore", "--yes", "--config", config], env)
    assert drilled.exit_code == 0 and "restore drill of" in drilled.output and "passed" in drilled.output
    listed = json.loads(run(["backup", "list", "--json", "--config", config], env).output)
    assert listed["backups"][0]["state"] == "drilled" and not listed["drill"]["due"]
    assert listed["backups"][0]["drill"]["evidence"]["amcheck"] == "ok"

    # A restore into another database: the typed confirmation is that database's name.
    into = new_database(seeded_db, password="s3cret-pw-123")
    name = into.rpartition("/")[2]
    unconfirmed = run(["backup", "restore", backup_id, "--into", into, "--config", config], env)
    assert unconfirmed.exit_code == 2 and f"--confirm {name}" in unconfirmed.output
    restored = run(
        ["backup", "restore", backup_id, "--into", into, "--confirm", name, "--config", config], env
    )
    assert restored.exit_code == 0, restored.output
    assert "s3cret-pw-123" not in restored.output + unconfirmed.output
    assert value(into.replace(":s3cret-pw-123", ""), "SELECT count(*) FROM orders") == value(
        seeded_db, "SELECT count(*) FROM orders"
    )


def test_the_live_database_is_refused_without_replace_live(world, seeded_db):
    env, config, _bucket = world
    made = json.loads(run(["backup", "run", "--yes", "--json", "--config", config], env).output)
    live_name = seeded_db.rpartition("/")[2]
    orders_before = value(seeded_db, "SELECT count(*) FROM orders")
    for confirm in (["--confirm", live_name], []):
        args = ["backup", "restore", made["detail"]["id"], "--into", seeded_db, *confirm, "--config", config]
        refused = run(args, env)
        assert refused.exit_code in (1, 2)
        if confirm:
            assert "that is the live database" in refused.output and "--replace-live" in refused.output
    assert value(seeded_db, "SELECT count(*) FROM orders") == orders_before


def test_read_only_blocks_run_restore_and_prune(world, seeded_db):
    env, config, bucket = world
    made = json.loads(run(["backup", "run", "--yes", "--json", "--config", config], env).output)
    into = new_database(seeded_db)
    for args in (
        ["backup", "run", "--yes"],
        ["backup", "restore", made["detail"]["id"], "--into", into, "--confirm", into.rpartition("/")[2]],
        ["backup", "prune", "--confirm", bucket],
    ):
        for how in (["--read-only"], []):
            extra = {"OPSCONSOLE_READ_ONLY": "1"} if not how else {}
            result = run([*how, *args, "--config", config], {**env, **extra})
            assert result.exit_code == 1 and "read-only" in result.output, (args, result.output)
    listed = json.loads(run(["backup", "list", "--json", "--config", config], env).output)
    assert len(listed["backups"]) == 1  # read-only still lists
    assert value(into, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0


def test_no_key_no_backup_and_nothing_uploaded(world, s3_server):
    env, config, bucket = world
    env = {**env, "BACKUP_ENCRYPTION_KEY": ""}
    result = run(["backup", "run", "--yes", "--config", config], env)
    assert result.exit_code == 1 and "BACKUP_ENCRYPTION_KEY is not set" in result.output
    assert s3_server.client().list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_prune_dry_run_lists_and_keeps_everything(world, s3_server):
    env, config, bucket = world
    old = "database/agis_backup_20250101_030000.sql.gz"
    s3_server.client().put_object(Bucket=bucket, Key=old, Body=b"\x1f\x8b not really")
    assert run(["backup", "run", "--yes", "--config", config], env).exit_code == 0
    dry = run(["--dry-run", "backup", "prune", "--config", config], env)
    assert dry.exit_code == 0 and old in dry.output and "delete 1 backups" in dry.output, dry.output
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert old in keys
    pruned = run(["backup", "prune", "--confirm", bucket, "--config", config], env)
    assert pruned.exit_code == 0 and "pruned 1 backups" in pruned.output, pruned.output
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert old not in keys and len(keys) == 2  # ours and its manifest


def test_schedule_prints_a_cron_line_and_a_cronjob():
    out = run(["backup", "schedule"], {}).output
    assert "opsconsole backup run --yes --json" in out and "kind: CronJob" in out


@pytest.fixture
def kube(tmp_path):
    from console.sandbox.fake_kube import FakeKube, populate

    with FakeKube() as fake:
        populate(fake)
        yield fake, str(fake.kubeconfig(tmp_path / "kubeconfig"))


def test_replace_live_walks_the_corruption_runbook_step_by_step(world, seeded_db, kube):
    from typer.testing import CliRunner

    from console.cli import cli

    env, config, _bucket = world
    _fake, kubeconfig = kube
    env = {**env, "KUBECONFIG": kubeconfig}
    made = json.loads(run(["backup", "run", "--yes", "--json", "--config", config], env).output)
    backup_id = made["detail"]["id"]
    live = seeded_db.rpartition("/")[2]
    # Something happens after the backup: the restore takes the database back to it.
    asyncio.run(_execute(seeded_db, "DELETE FROM credit_transactions"))

    def walk(answers: str):
        return CliRunner().invoke(cli, ["backup", "restore", backup_id, "--replace-live", "--config", config],
                                  env={"XDG_CONFIG_HOME": "/nonexistent", **env}, input=answers)  # fmt: skip

    stopped = walk("agis-bot\nnot-the-name\n")
    assert stopped.exit_code == 1 and "stopped before step 2" in stopped.output, stopped.output
    assert value(seeded_db, "SELECT count(*) FROM credit_transactions") == 0

    # Walked again: the bot is already at 0 (step 1 skipped), so it asks for step 2 first.
    done = walk(f"{live}\n")
    assert done.exit_code == 0, done.output
    out = done.output
    assert out.index("scale deployment agis-bot to 0") < out.index("restore backup") < out.index("back to")
    assert "already at 0: skipped" in out and "step 3: verified" in out
    assert value(seeded_db, "SELECT count(*) FROM credit_transactions") > 0
    steps = asyncio.run(_fetch(seeded_db, "SELECT action, target, outcome FROM ops.audit_log "
                                          "WHERE phase = 'outcome' ORDER BY id"))  # fmt: skip
    # The audit log is in the database restored: the first walk's step 1 (after the backup)
    # went back with it, and the record continues from the backup's head; the anchors kept
    # outside the database say so.
    walked = [(r["action"], r["outcome"]) for r in steps if r["action"] != "backup_run"]
    assert walked == [("restore_backup", "ok"), ("scale_deployment", "ok")]
    verify = run(["audit", "verify", "--config", config], env)
    assert verify.exit_code != 0, verify.output


async def _execute(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _fetch(dsn: str, sql: str):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()
