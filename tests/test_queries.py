"""Every named query in sql/queries parses, plans and runs against the real schema."""

from __future__ import annotations

import asyncpg
import pytest

from services.postgres import named_queries

QUERIES = named_queries()
NAMES = sorted(n for n in QUERIES.available_queries if not n.endswith("_cursor"))


def test_there_are_named_queries_and_each_says_what_it_answers():
    assert NAMES
    for name in NAMES:
        assert getattr(QUERIES, name).__doc__, f"{name} has no comment line saying what it answers"


@pytest.mark.parametrize("name", NAMES)
async def test_named_query_explains_against_the_schema(seeded_db, name):
    sql = getattr(QUERIES, name).sql
    conn = await asyncpg.connect(seeded_db)
    try:
        statement = await conn.prepare(sql)  # parse + plan: every table and column exists
        nulls = [None] * len(statement.get_parameters())
        plan = await conn.fetch(f"EXPLAIN {sql}", *nulls)
        assert plan, f"no plan for {name}"
    finally:
        await conn.close()
