"""Bench fixtures: one database with a million seeded orders, built once per bench run."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from console.sandbox.seed import seed_business


@pytest.fixture(scope="session")
def million_db(pg_cluster):
    async def build() -> None:
        admin = await asyncpg.connect(pg_cluster.dsn("postgres"))
        await admin.execute('CREATE DATABASE "bench_1m" TEMPLATE "tpl_empty"')
        await admin.close()
        conn = await asyncpg.connect(pg_cluster.dsn("bench_1m"))
        started = time.perf_counter()
        summary = await seed_business(conn, orders=1_000_000)
        print(f"\nseeded {summary.orders:,} orders in {time.perf_counter() - started:.1f} s")
        await conn.close()

    async def drop() -> None:
        admin = await asyncpg.connect(pg_cluster.dsn("postgres"))
        await admin.execute('DROP DATABASE IF EXISTS "bench_1m" WITH (FORCE)')
        await admin.close()

    asyncio.run(build())
    yield pg_cluster.dsn("bench_1m")
    asyncio.run(drop())
