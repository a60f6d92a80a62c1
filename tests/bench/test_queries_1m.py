"""Hot queries at 1M orders: the orders screen's named queries, median of 20 runs each,
with the partial indexes of migration 0002 and without them. Prints figures (make bench)."""

from __future__ import annotations

import statistics
import time

import asyncpg

from services.postgres import named_queries

RUNS = 20
CASES = {
    "stuck_orders": {"limit": 201},
    "error_orders": {"limit": 201},
    "orders_figures": {},
    "recent_orders": {"before_created": None, "before_id": None, "limit": 501},
}


async def _median_ms(conn, name: str, params: dict) -> float:
    fn = getattr(named_queries(), name)
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        if name == "orders_figures":
            await fn(conn, **params)
        else:
            [row async for row in fn(conn, **params)]
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def test_hot_queries_at_a_million_orders(million_db):
    conn = await asyncpg.connect(million_db)
    try:
        indexed = {name: await _median_ms(conn, name, p) for name, p in CASES.items()}
        await conn.execute(
            "DROP INDEX orders_paid_error_created_idx, orders_error_updated_idx,"
            " orders_provisioned_updated_idx"
        )
        plain = {name: await _median_ms(conn, name, p) for name, p in CASES.items()}
        for name in CASES:
            print(
                f"{name:16} median {indexed[name]:7.2f} ms with the partial indexes,"
                f" {plain[name]:7.2f} ms without"
            )
    finally:
        await conn.execute(
            "CREATE INDEX orders_paid_error_created_idx ON orders (created_at) INCLUDE (status)"
            " WHERE status IN ('paid', 'error');"
            "CREATE INDEX orders_error_updated_idx ON orders (updated_at DESC) WHERE status = 'error';"
            "CREATE INDEX orders_provisioned_updated_idx ON orders (updated_at) WHERE status = 'provisioned'"
        )
        await conn.close()
