"""The demo runs the console as a runtime login role: created (or, in a reused cluster,
updated) after the migrations, a member of ops_runtime, unable to change the audit log."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from console.sandbox.demo import console_login


async def test_the_demo_console_login_is_in_ops_runtime_and_cannot_change_the_audit_log(
    pg_cluster, seeded_db
):
    login = f"demo_console_{uuid.uuid4().hex[:8]}"
    admin = pg_cluster.dsn("postgres")
    await console_login(admin, "first 'pass", login=login)
    await console_login(admin, "second pass", login=login)  # a reused cluster: updated, not an error
    dbname = seeded_db.rsplit("/", 1)[1]
    dsn = pg_cluster.dsn(dbname, user=login, password="second pass")
    assert dsn.startswith(f"postgresql://{login}:second%20pass@127.0.0.1:")
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT pg_has_role(current_user, 'ops_runtime', 'MEMBER')")
        assert not await conn.fetchval(
            "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user"
        )
        await conn.execute(
            "INSERT INTO ops.audit_log (operator, role, action, phase) VALUES ('a', 'admin', 'x', 'intent')"
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE ops.audit_log SET operator = 'mallory'")
    finally:
        await conn.close()
