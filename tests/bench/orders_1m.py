"""A million orders in seconds, for the orders benchmarks: the demo business (the seeded
template) plus 330,000 customers and 994,000 orders made by generate_series in SQL,
inserted oldest first as a live shop writes them, then vacuumed and analysed."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from console.sandbox.seed import NAMES, WORDS

USERS, ORDERS = 330_000, 994_000

USERS_SQL = """
INSERT INTO users (email, display_name, created_at)
SELECT names[1 + i % array_length(names, 1)] || '.b' || i || '@example.net', 'Bench ' || i,
       now() - interval '400 days' + i * interval '1 minute'
FROM generate_series(1, $1::int) AS i, (SELECT $2::text[] AS names) AS n
"""
NUMBERED_SQL = """
CREATE TEMP TABLE bench_users AS SELECT row_number() OVER (ORDER BY id) AS n, id FROM users;
CREATE TEMP TABLE bench_plans AS
SELECT row_number() OVER (ORDER BY id) AS n, id, game, price_monthly FROM plans;
"""
# Oldest first, one order every ~8 s over 90 days: the heap is in time order, as in a shop.
ORDERS_SQL = """
INSERT INTO orders (user_id, plan_id, server_name, status, stripe_subscription_id,
                    stripe_payment_intent_id, amount_cents, created_at, updated_at)
SELECT u.id, p.id,
       w.words[1 + (i * 7) % array_length(w.words, 1)] || '-' || p.game || '-'
           || (1 + (i::bigint * 31) % 99991),
       (ARRAY['canceled', 'expired', 'canceled', 'refunded', 'canceled'])[1 + i % 5],
       'sub_b' || i, 'pi_b' || i, (p.price_monthly * 100)::int, t.at, t.at + interval '5 minutes'
FROM generate_series(1, $1::int) AS i
CROSS JOIN LATERAL (SELECT now() - interval '91 days' + i * (interval '90 days' / $1::int) AS at) AS t
JOIN bench_users u ON u.n = 1 + (i::bigint * 7919) % $2::int
JOIN bench_plans p ON p.n = 1 + (i * 13) % $3::int,
(SELECT $4::text[] AS words) AS w
ORDER BY i
"""

# The migrations' indexes on the two big tables, except those behind a constraint.
INDEXES_SQL = """
SELECT i.indexname AS name, i.indexdef AS definition
FROM pg_indexes i
WHERE i.schemaname = 'public' AND i.tablename IN ('orders', 'users')
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
"""


NAME = "bench_orders_1m"


def database(pg_cluster) -> str:
    """The session cluster's million-order database, built on first use (the cluster is
    thrown away with the session, so it is never dropped)."""

    async def exists() -> bool:
        admin = await asyncpg.connect(pg_cluster.dsn("postgres"))
        try:
            return bool(await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", NAME))
        finally:
            await admin.close()

    dsn = pg_cluster.dsn(NAME)
    if not asyncio.run(exists()):
        asyncio.run(build(pg_cluster.dsn("postgres"), dsn, NAME, "tpl_seeded"))
    return dsn


async def build(admin_dsn: str, dsn: str, name: str, template: str) -> None:
    """Create database `name` from `template` (the seeded demo) and grow it to a million
    orders; prints how long it took."""
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        await conn.execute("SET maintenance_work_mem = '256MB'")
        async with conn.transaction():
            # The rows reference what exists by construction: no per-row foreign key checks
            # (the test cluster's owner is a superuser), and indexes built once after them.
            await conn.execute("SET LOCAL session_replication_role = replica")
            indexes = await conn.fetch(INDEXES_SQL)
            for index in indexes:
                await conn.execute(f'DROP INDEX "{index["name"]}"')
            await conn.execute(USERS_SQL, USERS, list(NAMES))
            await conn.execute(NUMBERED_SQL)
            users = await conn.fetchval("SELECT count(*) FROM bench_users")
            plans = await conn.fetchval("SELECT count(*) FROM bench_plans")
            await conn.execute(ORDERS_SQL, ORDERS, users, plans, list(WORDS))
            for index in indexes:
                await conn.execute(index["definition"])
        # As autovacuum leaves a live table: old pages all-visible, so index-only scans stay so.
        await conn.execute("VACUUM (FREEZE, ANALYZE) users, orders")
        total = await conn.fetchval("SELECT count(*) FROM orders")
        print(f"\nbuilt {total:,} orders in {time.perf_counter() - started:.1f} s (generate_series)")
    finally:
        await conn.close()
