"""Game-node capacity: our numbers agree with the runbook's capacity SQL wherever it answers,
nodes it drops (no live orders) are there too, the forecast counts whole servers, and the
node actions change only what they say, audited, and only for oncall."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import asyncpg
import pytest

from services.audit import AuditFilter, AuditService
from services.node_actions import DISABLE_NODE, ENABLE_NODE
from services.nodes import NodesService
from services.postgres import PostgresConfig, PostgresService
from services.runbook import Actor, Runbook
from tests.conftest import wait_until
from tests.helpers import make_app, text_of

# The runbook's query, verbatim (../shared/seeds/001_*.txt, "SQL Queries for Monitoring").
SEED_CAPACITY_SQL = """
SELECT
  n.name,
  n.max_ram_gb,
  n.reserved_headroom_gb,
  COALESCE(SUM(p.ram_gb), 0) as used_ram_gb,
  (n.max_ram_gb - n.reserved_headroom_gb - COALESCE(SUM(p.ram_gb), 0)) as available_ram_gb
FROM ptero_nodes n
LEFT JOIN orders o ON o.node_id = n.id
LEFT JOIN plans p ON p.id = o.plan_id
WHERE n.enabled = true
  AND o.status IN ('paid', 'provisioning', 'installing', 'provisioned', 'active')
GROUP BY n.id, n.name, n.max_ram_gb, n.reserved_headroom_gb;
"""


@pytest.fixture
async def nodes(seeded_db):
    postgres = PostgresService(PostgresConfig(dsn=seeded_db))
    yield NodesService(postgres)
    await postgres.close()


async def test_capacity_agrees_with_the_runbook_sql_and_keeps_empty_nodes(seeded_db, nodes):
    conn = await asyncpg.connect(seeded_db)
    try:
        oracle = {r["name"]: dict(r) for r in await conn.fetch(SEED_CAPACITY_SQL)}
    finally:
        await conn.close()
    capacity = await nodes.capacity()
    ours = {n.name: n for n in capacity.nodes}
    assert oracle, "the seed's query returns the busy nodes"
    for name, row in oracle.items():
        n = ours[name]
        assert (n.max_ram_gb, n.reserved_headroom_gb, n.used_ram_gb, n.available_ram_gb) == (
            row["max_ram_gb"], row["reserved_headroom_gb"], row["used_ram_gb"], row["available_ram_gb"],
        )  # fmt: skip
    # The new node has no orders: the runbook's WHERE drops it; we show it, empty and enabled.
    assert "hel1-node-02" not in oracle
    empty = ours["hel1-node-02"]
    assert empty.enabled and empty.used_ram_gb == 0 and empty.available_ram_gb == 120
    assert capacity.level(empty) == "ok"
    # The disabled node is listed too (greyed out on screen) but takes no forecast.
    disabled = ours["fsn1-node-03"]
    assert not disabled.enabled and disabled.live_servers > 0 and disabled.fits == {}
    assert capacity.level(disabled) == "disabled"
    assert capacity.level(ours["fsn1-node-01"]) in ("warning", "critical")


async def _small_world(dsn: str) -> None:
    """Two plans (4 and 10 GB), three nodes, hand-countable."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            """
            INSERT INTO pricing_config (game_type, display_name, cost_per_hour) VALUES ('rust', 'Rust', 250);
            INSERT INTO plans (id, game, name, ram_gb, price_monthly, egg_id) VALUES
              ('rust-4gb', 'rust', 'Rust 4 GB', 4, 10, 2), ('rust-10gb', 'rust', 'Rust 10 GB', 10, 25, 2);
            INSERT INTO ptero_nodes (name, max_ram_gb, reserved_headroom_gb, enabled) VALUES
              ('a', 64, 8, true), ('b', 32, 4, true), ('c', 128, 0, false);
            INSERT INTO users (id, email) VALUES ('00000000-0000-0000-0000-000000000001', 'u@example.com');
            """
        )
        # Node a: 30 GB live + one canceled order (not counted). Node b: 20 GB live.
        placed = [("a", "active"), ("a", "provisioned"), ("a", "paid"), ("a", "canceled"),
                  ("b", "active"), ("b", "installing")]  # fmt: skip
        for node, status in placed:
            await conn.execute(
                "INSERT INTO orders (user_id, plan_id, node_id, server_name, status) "
                "SELECT '00000000-0000-0000-0000-000000000001', $1, id, $3, $2 "
                "FROM ptero_nodes WHERE name = $4",
                "rust-10gb", status, f"srv-{uuid.uuid4().hex[:6]}", node,
            )  # fmt: skip
    finally:
        await conn.close()


async def test_forecast_counts_whole_servers_per_plan(empty_db):
    await _small_world(empty_db)
    postgres = PostgresService(PostgresConfig(dsn=empty_db))
    try:
        capacity = await NodesService(postgres).capacity()
    finally:
        await postgres.close()
    by_name = {n.name: n for n in capacity.nodes}
    # a: 64 - 8 - 30 = 26 GB free -> 6 x 4 GB or 2 x 10 GB; b: 32 - 4 - 20 = 8 GB -> 2 x 4 GB, 0 x 10 GB.
    assert by_name["a"].available_ram_gb == 26 and by_name["b"].available_ram_gb == 8
    assert by_name["a"].fits == {"rust-4gb": 6, "rust-10gb": 2}
    assert by_name["b"].fits == {"rust-4gb": 2, "rust-10gb": 0}
    assert capacity.total_fits("rust-4gb") == 8  # the disabled node c (128 GB free) does not count
    assert capacity.total_fits("rust-10gb") == 2
    assert capacity.level(by_name["b"]) == "ok"  # 62.5% used, a 4 GB plan still fits


def _book(dsn: str, role: str, operator: str = "alice") -> Runbook:
    from console.settings import Settings
    from console.wiring import build_services

    services = build_services(Settings.isolated(DATABASE_URL=dsn).resolved())
    return Runbook(services, Actor(operator, role, f"test-{operator}"))


async def test_disable_then_enable_a_node_is_audited(seeded_db):
    book = _book(seeded_db, "oncall")
    try:
        plan = await book.plan(DISABLE_NODE, "hel1-node-02")
        assert plan.refusal is None and "UPDATE ptero_nodes" in plan.preview.calls[0]
        outcome = await book.execute(DISABLE_NODE, "hel1-node-02")
        assert outcome.ok, outcome.message
        capacity = await book.services.nodes.capacity()
        assert not next(n for n in capacity.nodes if n.name == "hel1-node-02").enabled
        again = await book.execute(DISABLE_NODE, "hel1-node-02")
        assert again.status == "refused" and "already disabled" in again.message
        assert (await book.execute(ENABLE_NODE, "hel1-node-02")).ok
        rows = await AuditService(book.services.postgres).page(AuditFilter(target="hel1-node-02"), limit=10)
        outcomes = [(r.action, r.outcome) for r in rows if r.phase == "outcome"]
        assert ("disable_node", "ok") in outcomes and ("enable_node", "ok") in outcomes
        assert ("disable_node", "refused") in outcomes
    finally:
        await book.services.close()


async def test_support_cannot_disable_a_node(seeded_db):
    book = _book(seeded_db, "support", "sam")
    try:
        outcome = await book.execute(DISABLE_NODE, "fsn1-node-01")
        assert outcome.status == "refused" and "needs the oncall role" in outcome.message
        capacity = await book.services.nodes.capacity()
        assert next(n for n in capacity.nodes if n.name == "fsn1-node-01").enabled
    finally:
        await book.services.close()


def test_nodes_json_prints_every_node_with_its_forecast(seeded_db):
    env = {**os.environ, "DATABASE_URL": seeded_db, "XDG_CONFIG_HOME": "/nonexistent"}
    run = subprocess.run([sys.executable, "-m", "console", "nodes", "--json"], capture_output=True, text=True,
                         env=env, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert len(data) == 8
    keys = {
        "name",
        "enabled",
        "max_ram_gb",
        "reserved_headroom_gb",
        "used_ram_gb",
        "available_ram_gb",
        "forecast",
    }
    assert all(keys <= set(n) for n in data)
    empty = next(n for n in data if n["name"] == "hel1-node-02")
    assert empty["used_ram_gb"] == 0 and empty["forecast"]["minecraft-2gb"] == 60


async def test_capacity_tab_shows_empty_and_disabled_nodes(seeded_db):
    from screens.live_table import LiveTable

    app = make_app(seeded_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        screen = app.screen
        await wait_until(pilot, lambda: len(screen.query_one("#capacity-table", LiveTable).shown) == 8)
        table = screen.query_one("#capacity-table", LiveTable)
        assert "hel1-node-02" in table.shown
        assert str(table.shown["fsn1-node-03"][1]) == "disabled"
        forecast = screen.query_one("#forecast-table", LiveTable)
        assert str(forecast.shown["minecraft-2gb"][3]) != "0"
        # Kubernetes not configured: the line above the tabs says so; the capacity tab works.
        assert "set KUBECONFIG" in text_of(screen.query_one("#where"))


async def test_forecast_filter_answers_how_many_more_rust_servers_fit(seeded_db):
    from screens.live_table import LiveTable

    app = make_app(seeded_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        screen = app.screen
        forecast = screen.query_one("#forecast-table", LiveTable)
        await wait_until(pilot, lambda: len(forecast.shown) > 10)
        await pilot.press("slash", *"rust", "enter")
        await wait_until(pilot, lambda: all(k.startswith("rust-") for k in forecast.shown))
        capacity = screen.capacity
        assert forecast.shown and set(forecast.shown) == {p.id for p in capacity.plans if p.game == "rust"}
        for plan_id, row in forecast.shown.items():
            assert str(row[3]) == str(capacity.total_fits(plan_id))


def test_disable_a_node_on_the_command_line(seeded_db, tmp_path):
    from console.settings import real_user

    config = tmp_path / "opsconsole.toml"
    config.write_text(f'[operators]\n{real_user()} = "oncall"\n')
    env = {**os.environ, "DATABASE_URL": seeded_db, "XDG_CONFIG_HOME": "/nonexistent"}
    command = [
        sys.executable,
        "-m",
        "console",
        "nodes",
        "disable",
        "hel1-node-02",
        "--yes",
        "--config",
        str(config),
    ]
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "UPDATE ptero_nodes SET enabled" in run.stdout and run.stdout.strip().endswith(
        "(0 live servers on it)"
    )
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert again.returncode == 1 and "already disabled" in again.stdout
    listing = [sys.executable, "-m", "console", "nodes", "--json"]
    listed = subprocess.run(listing, capture_output=True, text=True, env=env, timeout=60)
    assert not next(n for n in json.loads(listed.stdout) if n["name"] == "hel1-node-02")["enabled"]
