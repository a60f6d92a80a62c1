"""The orders area's data: header figures equal the runbooks' SQL on the same data (and
say "no orders" where that SQL divides by zero), keyset paging through every order,
search, and the headless twin `opsconsole orders --json`."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import asyncpg
import pytest

from console.settings import Settings
from console.wiring import build_services

SUCCESS_SQL = """
SELECT COUNT(*) FILTER (WHERE status = 'provisioned') * 100.0 / COUNT(*) as success_rate
FROM orders WHERE created_at > NOW() - INTERVAL '1 hour'
  AND status IN ('paid', 'provisioning', 'provisioned', 'error');
"""
AVG_SQL = """
SELECT AVG(EXTRACT(EPOCH FROM (updated_at - created_at))) / 60 as avg_minutes
FROM orders WHERE status = 'provisioned' AND updated_at > NOW() - INTERVAL '24 hours';
"""
STUCK_SQL = """
SELECT id FROM orders WHERE status IN ('paid')
  AND (pterodactyl_server_id IS NULL OR pterodactyl_server_id = '')
  AND created_at < NOW() - INTERVAL '10 minutes' ORDER BY created_at ASC
"""


def orders_service(dsn):
    return build_services(Settings.isolated(DATABASE_URL=dsn).resolved()).orders


async def test_header_figures_equal_the_runbooks_sql(seeded_db):
    figures = await orders_service(seeded_db).figures()
    conn = await asyncpg.connect(seeded_db)
    try:
        assert figures.success_rate == pytest.approx(float(await conn.fetchval(SUCCESS_SQL)))
        assert figures.avg_provision_minutes == pytest.approx(float(await conn.fetchval(AVG_SQL)))
        assert figures.stuck == len(await conn.fetch(STUCK_SQL))
        assert figures.errors == await conn.fetchval("SELECT count(*) FROM orders WHERE status = 'error'")
        # A quiet hour: the runbook's SQL divides by zero; we say there were no orders.
        await conn.execute("UPDATE orders SET created_at = created_at - interval '2 hours'")
        with pytest.raises(asyncpg.DivisionByZeroError):
            await conn.fetchval(SUCCESS_SQL)
    finally:
        await conn.close()
    quiet = await orders_service(seeded_db).figures()
    assert quiet.success_rate is None and quiet.considered_1h == 0


async def test_paging_walks_every_order_once_newest_first(seeded_db):
    service = orders_service(seeded_db)
    seen, after = [], None
    while True:
        page = await service.page("recent", after=after, limit=500)
        seen.extend(page.orders)
        if not page.more:
            break
        after = page.cursor
    conn = await asyncpg.connect(seeded_db)
    total = await conn.fetchval("SELECT count(*) FROM orders")
    await conn.close()
    assert len(seen) == total == len({o.id for o in seen})
    assert all(a.created_at >= b.created_at for a, b in itertools.pairwise(seen))


async def test_search_by_id_user_email_and_server_name(seeded_db):
    service = orders_service(seeded_db)
    some = (await service.page("stuck")).orders[0]
    assert [o.id for o in (await service.page("search", query=some.id)).orders] == [some.id]
    assert some.id in {o.id for o in (await service.page("search", query=some.user_id)).orders}
    assert some.id in {o.id for o in (await service.page("search", query=some.email.upper())).orders}
    by_name = (await service.page("search", query=some.server_name)).orders
    assert some.id in {o.id for o in by_name}
    assert (await service.page("search", query="%")).orders == ()  # a wildcard is literal text
    detail = await service.detail(some.id)
    assert detail.email == some.email and detail.ram_gb > 0
    assert await service.detail("not-a-uuid") is None


def test_orders_json_is_the_stuck_list_the_runbook_finds(seeded_db):
    env = {**os.environ, "DATABASE_URL": seeded_db, "XDG_CONFIG_HOME": "/nonexistent"}
    run = subprocess.run(
        [sys.executable, "-m", "console", "orders", "--json", "--stuck"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    orders = json.loads(run.stdout)
    assert len(orders) >= 8
    for order in orders:
        assert {"id", "user_id", "plan_id", "server_name", "status", "pterodactyl_server_id",
                "created_at", "updated_at"} <= order.keys()  # fmt: skip
        assert order["status"] == "paid" and order["pterodactyl_server_id"] is None
    assert [o["created_at"] for o in orders] == sorted(o["created_at"] for o in orders)


def test_audit_verify_on_a_fresh_log(seeded_db):
    env = {**os.environ, "DATABASE_URL": seeded_db, "XDG_CONFIG_HOME": "/nonexistent"}
    run = subprocess.run([sys.executable, "-m", "console", "audit", "verify"], capture_output=True, text=True,
                         env=env, timeout=60)  # fmt: skip
    assert run.returncode == 0 and "audit chain intact: 0 rows" in run.stdout
