"""Orders search at a million orders: every form the search box takes (order id and its
prefix, user id, email, server name, broad and narrow prefixes, no match), median of
several runs each through OrdersService, and the single query it replaced (an OR across
server name and email, which made PostgreSQL filter every order) on the same data in the
same run. Each named search query is EXPLAINed: none reads a whole table. Prints figures;
asserts nothing about time."""

from __future__ import annotations

import statistics
import time

import asyncpg
import pytest

from console.settings import Settings
from console.wiring import build_services
from services.audit import like_prefix
from services.postgres import named_queries
from tests.bench import orders_1m

RUNS = 15
BASELINE_RUNS = 3
# The search before issue 10: one query for every text, OR across the two forms.
OLD_TEXT_SEARCH = """
SELECT o.id, o.user_id, o.plan_id, o.server_name, o.status, o.pterodactyl_server_id,
       o.error_message, o.created_at, o.updated_at, u.email, NULL::double precision AS minutes_waiting
FROM orders o JOIN users u ON u.id = o.user_id
WHERE lower(o.server_name) LIKE $1 || '%'
   OR o.user_id IN (SELECT id FROM users WHERE lower(email) LIKE $1 || '%')
ORDER BY o.created_at DESC, o.id DESC LIMIT $2
"""


@pytest.fixture(scope="module")
def search_db(pg_cluster):
    return orders_1m.database(pg_cluster)


async def _forms(conn) -> dict[str, str]:
    """form -> what an operator types, taken from the data (with how many it matches)."""
    order = await conn.fetchrow(
        "SELECT o.id::text, o.user_id::text, o.server_name, u.email FROM orders o JOIN users u"
        " ON u.id = o.user_id ORDER BY o.created_at DESC OFFSET 5000 LIMIT 1"
    )
    name, email = order["server_name"], order["email"]
    local, number = email.split("@")[0], name.rsplit("-", 1)

    async def customers(prefix: str) -> str:
        n = await conn.fetchval("SELECT count(*) FROM users WHERE starts_with(lower(email), $1)", prefix)
        return f"email prefix ({n:,} customers)"

    async def orders(prefix: str) -> str:
        n = await conn.fetchval(
            "SELECT count(*) FROM orders WHERE starts_with(lower(server_name), $1)", prefix
        )
        return f"server name prefix ({n:,} orders)"

    return {
        "order id": order["id"],
        "order id prefix (8, as shown)": order["id"][:8],
        "order id prefix (6)": order["id"][:6],
        "user id": order["user_id"],
        "email": email,
        "email, upper case": email.upper(),
        **{await customers(p): p for p in (*(local[:-n] for n in range(1, 6)), local.split(".")[0])},
        "server name": name,
        **{
            await orders(p): p
            for p in (*(f"{number[0]}-{number[1][:n]}" for n in (2, 1)), number[0], name.split("-")[0])
        },
        "no match": "no-such-server-anywhere",
    }


async def _median_ms(call, runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def _plan(conn, query: str, params: dict, *, generic: bool) -> str:
    """EXPLAIN of the named query with these parameters, as a custom plan or as the
    generic plan a prepared statement switches to after five runs."""
    queries = named_queries()
    order = queries.driver_adapter.var_sorted[query]
    sql = getattr(queries, query).sql
    for n, key in enumerate(order, start=1):
        sql = sql.replace(f":{key}", f"${n}")
    await conn.execute(f"SET plan_cache_mode = {'force_generic_plan' if generic else 'auto'}")
    try:
        rows = await conn.fetch(f"EXPLAIN {sql}", *[params[k] for k in order])
    finally:
        await conn.execute("RESET plan_cache_mode")
    return "\n".join(r[0] for r in rows)


async def test_every_search_form_at_a_million_orders(search_db):
    service = build_services(Settings.isolated(DATABASE_URL=search_db).resolved()).orders
    conn = await asyncpg.connect(search_db)
    try:
        forms = await _forms(conn)
        total = await conn.fetchval("SELECT count(*) FROM orders")
        print(f"\nsearch at {total:,} orders, median of {RUNS} runs (the table's first page, 200):")
        for form, typed in forms.items():
            page = await service.page("search", query=typed)
            median = await _median_ms(lambda t=typed: service.page("search", query=t), RUNS)
            shown = f"{len(page.orders)}{'+' if page.more else ''}"
            print(f"  {form:34} {median:7.2f} ms  {shown:>4} orders  ({typed})")
        print(f"the single OR query it replaced, median of {BASELINE_RUNS}:")
        for form in ("email", "server name", "no match"):
            typed = forms[form].lower()
            old = await _median_ms(
                lambda t=typed: conn.fetch(OLD_TEXT_SEARCH, like_prefix(t), 201), BASELINE_RUNS
            )
            new = await _median_ms(lambda t=typed: service.page("search", query=t), RUNS)
            print(f"  {form:12} {old:8.1f} ms, now {new:6.2f} ms: {old / new:,.0f}x faster")
        shown = forms["order id prefix (8, as shown)"]
        cases = (
            ("search_orders_by_uuid", {"key": forms["order id"], "limit": 201}),
            ("search_orders_by_id_prefix", {"low": f"{shown}-0000-0000-0000-000000000000",
                                            "high": f"{shown}-ffff-ffff-ffff-ffffffffffff", "limit": 201}),
            ("count_orders_by_server_name", {"prefix": forms["server name"], "cap": 15000}),
            ("search_orders_by_server_name", {"prefix": forms["server name"], "cap": 15000, "limit": 201}),
            ("count_customers_by_email", {"prefix": forms["email"], "cap": 1000}),
            ("search_orders_by_email", {"prefix": forms["email"], "cap": 1000, "limit": 201}),
            ("search_orders_by_email_newest", {"prefix": forms["email"].split(".")[0], "limit": 201}),
        )  # fmt: skip
        for query, params in cases:
            for generic in (False, True):
                plan = await _plan(conn, query, params, generic=generic)
                assert "Seq Scan" not in plan, f"{query} ({'generic' if generic else 'custom'} plan):\n{plan}"
        plan = await _plan(conn, "search_orders_by_server_name_newest", {"prefix": "frost", "limit": 201},
                           generic=True)  # fmt: skip
        assert "Seq Scan" not in plan, plan  # walks orders newest first
        print("EXPLAIN: no search query reads a whole table, as a custom or a generic plan")
    finally:
        await conn.close()
        await service.postgres.close()
