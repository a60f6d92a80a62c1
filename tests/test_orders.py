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


async def _add_orders(dsn, ids, server_name="prefix-test"):
    """Orders with chosen ids (to share a prefix), for an existing customer and plan."""
    conn = await asyncpg.connect(dsn)
    try:
        for order_id in ids:
            await conn.execute(
                "INSERT INTO orders (id, user_id, plan_id, server_name, status)"
                " SELECT $1::uuid, user_id, plan_id, $2, 'paid' FROM orders LIMIT 1", order_id, server_name,
            )  # fmt: skip
    finally:
        await conn.close()


async def test_the_short_id_the_tables_show_finds_its_order(seeded_db):
    service = orders_service(seeded_db)
    some = (await service.page("stuck")).orders[0]
    for typed in (some.id[:8], some.id[:6], some.id[:13], some.id[:13].replace("-", ""), some.id[:8].upper()):
        found = (await service.page("search", query=typed)).orders
        assert some.id in [o.id for o in found], typed
        start = typed.lower()[:6]
        assert all(o.id.startswith(start) or o.user_id.startswith(start) for o in found)
    for not_a_prefix in (
        some.id[:5],
        some.id[:7] + "-",
        f"{some.id[:8]}--{some.id[9:12]}",
        "zz" + some.id[:6],
    ):
        assert some.id not in [o.id for o in (await service.page("search", query=not_a_prefix)).orders]


async def test_an_ambiguous_prefix_lists_every_candidate(seeded_db):
    ids = ["feedf00d-0000-4000-8000-000000000001", "feedf00d-ffff-4000-8000-000000000002",
           "feedf00e-0000-4000-8000-000000000003"]  # fmt: skip
    await _add_orders(seeded_db, ids)
    service = orders_service(seeded_db)
    assert {o.id for o in (await service.page("search", query="feedf00d")).orders} == set(ids[:2])
    assert {o.id for o in (await service.page("search", query="FEEDF0")).orders} == set(ids)
    assert [o.id for o in (await service.page("search", query="feedf00d-ffff")).orders] == [ids[1]]


async def test_wildcards_in_a_search_are_literal_text(seeded_db):
    await _add_orders(seeded_db, ["a0000000-0000-4000-8000-00000000000a"], server_name="odd_name%1")
    await _add_orders(seeded_db, ["b0000000-0000-4000-8000-00000000000b"], server_name="oddXname-1")
    service = orders_service(seeded_db)
    names = [o.server_name for o in (await service.page("search", query="odd_name%")).orders]
    assert names == ["odd_name%1"]
    assert [o.server_name for o in (await service.page("search", query="ODD_")).orders] == ["odd_name%1"]
    assert (await service.page("search", query="_")).orders == ()
    assert (await service.page("search", query="%")).orders == ()


async def test_a_broad_prefix_still_lists_the_newest_matches(seeded_db, monkeypatch):
    """Past SEARCH_CAP matches the search walks orders newest first: the same answer."""
    import services.orders as orders_module

    service = orders_service(seeded_db)
    capped = (await service.page("search", query="a", limit=50)).orders
    monkeypatch.setattr(
        orders_module, "SEARCH_CAP", {"server_name": (3, "orders"), "email": (3, "customers")}
    )
    walked = (await service.page("search", query="a", limit=50)).orders
    assert [o.id for o in walked] == [o.id for o in capped] and len(walked) == 50
    assert all(o.server_name.lower().startswith("a") or o.email.startswith("a") for o in walked)


def test_orders_search_on_the_command_line_takes_the_short_id(seeded_db):
    import asyncio

    async def one_stuck() -> str:
        return (await orders_service(seeded_db).page("stuck")).orders[0].id

    order = asyncio.run(one_stuck())
    env = {**os.environ, "DATABASE_URL": seeded_db, "XDG_CONFIG_HOME": "/nonexistent"}
    run = subprocess.run(
        [sys.executable, "-m", "console", "orders", "--json", "--search", order[:8]],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert order in [o["id"] for o in json.loads(run.stdout)]
