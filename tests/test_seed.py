"""The demo business: the runbooks' own monitoring SQL finds what an operator would
expect to work on (stuck orders, errors, a hot node), and the seed is safe and repeatable."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from console.sandbox.seed import ERRORS, GAMES, seed_business

# The runbooks' queries, verbatim (../shared/seeds/001_*.txt, sections 1 and 3).
STUCK_SQL = """
SELECT id, user_id, plan_id, server_name, status, created_at,
  EXTRACT(EPOCH FROM (NOW() - created_at)) / 60 as minutes_ago
FROM orders
WHERE status = 'paid'
  AND created_at < NOW() - INTERVAL '10 minutes'
ORDER BY created_at ASC;
"""
ERRORS_SQL = "SELECT id, user_id, plan_id, status, created_at, updated_at FROM orders WHERE status = 'error'"
SUCCESS_SQL = """
SELECT COUNT(*) FILTER (WHERE status = 'provisioned') * 100.0 / COUNT(*) as success_rate
FROM orders
WHERE created_at > NOW() - INTERVAL '1 hour'
  AND status IN ('paid', 'provisioning', 'provisioned', 'error');
"""
AVG_SQL = """
SELECT AVG(EXTRACT(EPOCH FROM (updated_at - created_at))) / 60 as avg_minutes
FROM orders WHERE status = 'provisioned' AND updated_at > NOW() - INTERVAL '24 hours';
"""
# Every node, with live RAM (the runbook's capacity query without its LEFT JOIN bug).
NODES_SQL = """
SELECT n.name, n.enabled, n.max_ram_gb, n.reserved_headroom_gb,
       COALESCE(SUM(p.ram_gb) FILTER (WHERE o.status IN
         ('paid', 'provisioning', 'installing', 'provisioned', 'active')), 0) AS used,
       count(o.id) AS orders
FROM ptero_nodes n
LEFT JOIN orders o ON o.node_id = n.id
LEFT JOIN plans p ON p.id = o.plan_id
GROUP BY n.id ORDER BY n.id
"""


@pytest.fixture
async def conn(seeded_db):
    connection = await asyncpg.connect(seeded_db)
    yield connection
    await connection.close()


async def test_the_runbooks_monitoring_queries_find_work(conn):
    assert len(await conn.fetch(STUCK_SQL)) >= 8
    assert len(await conn.fetch(ERRORS_SQL)) >= 6
    assert 60 <= await conn.fetchval(SUCCESS_SQL) <= 95
    assert 1 <= await conn.fetchval(AVG_SQL) <= 8
    messages = {
        r["error_message"] for r in await conn.fetch("SELECT error_message FROM orders WHERE status='error'")
    }
    assert messages == set(ERRORS)


async def test_customers_without_panel_accounts_own_the_external_account_errors(conn):
    owners = await conn.fetch(
        "SELECT o.user_id, x.user_id IS NOT NULL AS has_account FROM orders o"
        " LEFT JOIN external_accounts x ON x.user_id = o.user_id"
        " WHERE o.error_message = 'External account not found'"
    )
    assert owners and not any(r["has_account"] for r in owners)
    share = await conn.fetchval(
        "SELECT count(x.user_id)::float / count(*) FROM users u"
        " LEFT JOIN external_accounts x ON x.user_id = u.id"
    )
    assert 0.75 < share < 0.95


async def test_nodes_one_hot_one_disabled_with_servers_one_empty(conn):
    nodes = await conn.fetch(NODES_SQL)
    assert len(nodes) >= 6
    for n in nodes:  # nothing is ever placed beyond a node's capacity
        assert n["used"] <= n["max_ram_gb"] - n["reserved_headroom_gb"], n["name"]
    enabled = [n for n in nodes if n["enabled"]]
    hot = [n for n in enabled if n["used"] > 0.8 * n["max_ram_gb"]]
    empty = [n for n in enabled if n["orders"] == 0]
    disabled = [n for n in nodes if not n["enabled"]]
    assert len(hot) == 1 and len(empty) == 1
    assert len(disabled) == 1 and disabled[0]["used"] > 0
    for n in enabled:
        if n not in hot and n not in empty:
            assert 0.3 <= n["used"] / n["max_ram_gb"] <= 0.75, n["name"]


async def test_games_prices_and_ninety_days_of_orders(conn):
    assert await conn.fetchval("SELECT count(*) FROM pricing_config") == len(GAMES) == 16
    assert await conn.fetchval("SELECT cost_per_hour FROM pricing_config WHERE game_type = 'rust'") == 250
    assert await conn.fetchval("SELECT min(n) FROM (SELECT count(*) n FROM plans GROUP BY game) g") >= 2
    span = await conn.fetchval("SELECT max(created_at) - min(created_at) FROM orders")
    assert 85 <= span.days <= 90
    assert await conn.fetchval("SELECT count(*) FROM orders") >= 5000
    assert await conn.fetchval("SELECT count(*) FROM credit_transactions WHERE amount < 0") > 0


async def test_seeding_a_database_that_holds_orders_refuses_and_changes_nothing(conn):
    before = await conn.fetchval("SELECT count(*) FROM orders")
    with pytest.raises(ValueError, match="already holds"):
        await seed_business(conn)
    assert await conn.fetchval("SELECT count(*) FROM orders") == before


async def test_same_seed_same_business_and_it_scales(empty_db, pg_cluster):
    now = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    fingerprint = (
        "SELECT md5(string_agg(id::text || status || coalesce(node_id, 0), ',' ORDER BY id)) FROM orders"
    )
    conn = await asyncpg.connect(empty_db)
    other = await asyncpg.connect(pg_cluster.dsn("postgres"))
    await other.execute('CREATE DATABASE "seed_twin" TEMPLATE "tpl_empty"')
    twin = await asyncpg.connect(pg_cluster.dsn("seed_twin"))
    try:
        big = await seed_business(conn, orders=50_000, seed=7, now=now)
        small = await seed_business(twin, orders=50_000, seed=7, now=now)
        assert big == small
        assert await conn.fetchval(fingerprint) == await twin.fetchval(fingerprint)
        for n in await conn.fetch(NODES_SQL):
            assert n["used"] <= n["max_ram_gb"] - n["reserved_headroom_gb"]
        assert await conn.fetchval("SELECT count(*) FROM orders") == 50_000
    finally:
        await twin.close()
        await other.execute('DROP DATABASE "seed_twin" WITH (FORCE)')
        await other.close()
        await conn.close()


async def test_too_few_orders_is_refused(empty_db):
    conn = await asyncpg.connect(empty_db)
    try:
        with pytest.raises(ValueError, match="at least"):
            await seed_business(conn, orders=10)
        assert await conn.fetchval("SELECT count(*) FROM users") == 0
    finally:
        await conn.close()
