"""The two database roles: the console's runtime role (a login in ops_runtime) appends to
the audit log and does its work, but cannot change, remove or unprotect audit rows; it
owns nothing in ops. A migrating role that may not create ops_runtime is told what a DBA
must run."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest

from services.audit import AuditService
from services.errors import MigrationError
from services.migrations import migrate
from services.postgres import PostgresConfig, PostgresService, named_queries
from sql import MIGRATIONS_DIR

REFUSED = [
    "UPDATE ops.audit_log SET operator = 'mallory'",
    "DELETE FROM ops.audit_log",
    "TRUNCATE ops.audit_log",
    "ALTER TABLE ops.audit_log DISABLE TRIGGER ALL",
    "ALTER TABLE ops.audit_log DISABLE TRIGGER audit_log_no_update",
    "DROP TRIGGER audit_log_no_update ON ops.audit_log",
    "DROP TRIGGER audit_log_chain ON ops.audit_log",
    "ALTER TABLE ops.audit_log OWNER TO ops_runtime",
    "DROP TABLE ops.audit_log",
    "CREATE TABLE ops.shadow (id int)",
    # An appended row's id and time come from the table, not the writer.
    "INSERT INTO ops.audit_log (id, operator, role, action, phase) VALUES (999999, 'a', 'b', 'c', 'x')",
    "INSERT INTO ops.audit_log (at, operator, role, action, phase) VALUES ('2020-01-01', 'a', 'b', 'c', 'x')",
]


async def test_the_runtime_role_appends_to_the_audit_log_and_nothing_more(seeded_runtime_db, tmp_path):
    audit = AuditService(PostgresService(PostgresConfig(dsn=seeded_runtime_db)), tmp_path / "anchors.jsonl")
    try:
        row_id = await audit.record(operator="alice", role="oncall", action="node_disable",
                                    target="hel1-node-01", phase="intent")  # fmt: skip
        assert [r.id for r in await audit.page()] == [row_id]
    finally:
        await audit.postgres.close()
    conn = await asyncpg.connect(seeded_runtime_db)
    try:
        assert await conn.fetchval("SELECT current_user") == "ops_console"
        for statement in REFUSED:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
        assert await conn.fetchval("SELECT count(*) FROM ops.audit_log") == 1
        owned = await conn.fetchval(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'ops' AND pg_has_role(current_user, c.relowner, 'USAGE')"
        )
        assert owned == 0
        assert (await AuditService(_pg(seeded_runtime_db), tmp_path / "anchors.jsonl").verify()).ok
    finally:
        await conn.close()


def _pg(dsn: str) -> PostgresService:
    return PostgresService(PostgresConfig(dsn=dsn))


async def test_the_runtime_role_may_do_what_the_console_does(seeded_runtime_db):
    """Claims, incidents and the runbooks' own UPDATEs, through their named queries."""
    pg = _pg(seeded_runtime_db)
    try:
        claim = await pg.run("claim_take", read=False, target_kind="node", target="hel1-node-01",
                             action="node_disable", operator="alice", console_id="c1", intent_id=None,
                             seconds=10)  # fmt: skip
        assert claim is not None
        await pg.run("claim_release", read=False, target_kind="node", target="hel1-node-01", console_id="c1")
        incident = await pg.run(
            "declare_incident", read=False, title="db down", severity="P1", commander=None,
            alert_name=None, alert_labels="{}", declared_by="alice",
        )  # fmt: skip
        await pg.run("add_incident_event", read=False, incident_id=incident, operator="alice",
                     kind="note", body="looking")  # fmt: skip
        await pg.run("set_incident_status", read=False, id=incident, status="assessment")
        q = named_queries()
        async with pg.connection() as conn:
            async with conn.transaction():  # the runbooks lock the row, then change it
                assert await q.node_for_update(conn, name="hel1-node-01")
                assert await q.set_node_enabled(conn, name="hel1-node-01", enabled=False) == "UPDATE 1"
            order = await conn.fetchval("SELECT id::text FROM orders ORDER BY created_at LIMIT 1")
            async with conn.transaction():
                assert await q.order_for_update(conn, id=order)
                assert await q.set_order_canceled(conn, id=order) == "UPDATE 1"
            # Only the columns the runbooks change: not an order's amount, not a new order.
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("UPDATE orders SET amount_cents = 0 WHERE id = $1::uuid", order)
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("DELETE FROM orders WHERE id = $1::uuid", order)
            assert await conn.fetchval(
                "SELECT version FROM ops.schema_migrations ORDER BY version DESC LIMIT 1"
            )
    finally:
        await pg.close()


async def test_a_migrating_role_that_cannot_create_the_runtime_role_is_told_what_a_dba_must_run(
    pg_cluster, blank_db, tmp_path: Path
):
    # The migration itself, on a role name no other test has created, run by a role that
    # owns its database but may not create roles.
    role = f"ops_runtime_{uuid.uuid4().hex[:8]}"
    sql = (MIGRATIONS_DIR / "0006_runtime_role.sql").read_text().split("GRANT USAGE", 1)[0]
    (tmp_path / "0001_runtime_role.sql").write_text(sql.replace("ops_runtime", role))
    owner = f"owner_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(blank_db)
    try:
        await admin.execute(f"CREATE ROLE {owner} LOGIN")
        await admin.execute(f'GRANT CREATE ON DATABASE "{blank_db.rsplit("/", 1)[1]}" TO {owner}')
    finally:
        await admin.close()
    conn = await asyncpg.connect(blank_db.replace(f"{pg_cluster.user}@", f"{owner}@"))
    try:
        with pytest.raises(MigrationError, match=f"a DBA must run .CREATE ROLE {role} NOLOGIN;"):
            await migrate(conn, directory=tmp_path)
    finally:
        await conn.close()


async def test_a_runbook_action_runs_end_to_end_as_the_runtime_role(seeded_runtime_db):
    """Claim, intent, precondition under lock, the change, outcome, and the anchors: all
    within what ops_runtime may do."""
    from console.settings import Settings
    from console.wiring import build_services
    from services.node_actions import DISABLE_NODE, ENABLE_NODE
    from services.runbook import Actor, Runbook

    book = Runbook(build_services(Settings.isolated(DATABASE_URL=seeded_runtime_db).resolved()),
                   Actor("alice", "oncall", "test-runtime"))  # fmt: skip
    try:
        assert (await book.execute(DISABLE_NODE, "hel1-node-02")).ok
        assert (await book.execute(ENABLE_NODE, "hel1-node-02")).ok
        report = await book.services.audit.verify()
        assert report.ok and report.rows == 4 and report.anchors == 4
    finally:
        await book.services.close()
