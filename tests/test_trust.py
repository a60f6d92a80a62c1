"""Issue 9's seven breaks of the console's promise (nothing happens that was not shown,
confirmed by someone allowed to, and recorded), each as it was reproduced on main: the
global flags, a forged identity, a confirmation shown before its inputs, two actions on
one order, PostgreSQL stopping mid-action, and escape sequences in customer data. (The
audit log's own tamper tests are in test_audit_anchor.py and test_runtime_role.py.)"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import asyncpg
from typer.testing import CliRunner

from console.cli import cli
from console.settings import Settings, real_user
from console.wiring import build_services
from screens.action_modal import ActionConfirmScreen, AskScreen
from screens.orders import OrdersScreen
from services.order_actions import CANCEL, RETRY
from services.runbook import Actor, Runbook
from tests.conftest import FAKE_KEYS, wait_until
from tests.helpers import make_app, text_of
from tests.tcp_proxy import TcpProxy

KEY, STRIPE_KEY, PANEL_KEY = FAKE_KEYS


def backends(dsn: str, fakes) -> dict[str, str]:
    return {"DATABASE_URL": dsn, "PROVISIONER_URL": fakes.functions.url, "OPSCONSOLE_PROVISIONER_KEY": KEY,
            "STRIPE_SECRET_KEY": STRIPE_KEY, "OPSCONSOLE_STRIPE_API_BASE": fakes.stripe.url,
            "PANEL_URL": fakes.panel.url, "PTERO_APP_KEY": PANEL_KEY}  # fmt: skip


def operators(tmp_path, **roles: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text("[operators]\n" + "".join(f'{name} = "{role}"\n' for name, role in roles.items()))
    return str(path)


def run(args: list[str], env: dict[str, str]):
    return CliRunner().invoke(cli, args, env={"XDG_CONFIG_HOME": "/nonexistent", **env}, terminal_width=200)


async def fetch(dsn: str, sql: str, *args):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def value(dsn: str, sql: str, *args):
    rows = asyncio.run(fetch(dsn, sql, *args))
    return rows[0][0] if rows else None


STUCK_WITH_ACCOUNT = (
    "SELECT o.id::text FROM orders o WHERE o.status = 'paid' AND o.created_at < now() - interval '10 minutes'"
    " AND EXISTS (SELECT 1 FROM external_accounts x WHERE x.user_id = o.user_id)"
    " ORDER BY o.created_at LIMIT 1"
)
ACTIVE_WITH_SERVER = (
    "SELECT id::text FROM orders WHERE status = 'active' AND pterodactyl_server_id IS NOT NULL"
    " AND stripe_payment_intent_id IS NOT NULL AND stripe_subscription_id IS NOT NULL"
    " ORDER BY created_at LIMIT 1"
)


async def until(predicate, timeout: float = 30.0) -> None:
    """Wait (polling) until `predicate()` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "never happened"
        await asyncio.sleep(0.05)


# -- 1. the global flags reach every command --------------------------------------------


def test_read_only_and_dry_run_given_before_the_command_are_honoured(seeded_db, seeded_runtime_db, fakes,
                                                                       tmp_path):  # fmt: skip
    env = backends(seeded_runtime_db, fakes)
    config = operators(tmp_path, **{real_user(): "admin"})
    node = value(seeded_db, "SELECT name FROM ptero_nodes WHERE enabled ORDER BY name LIMIT 1")
    order = value(seeded_db, STUCK_WITH_ACCOUNT)

    refused = run(["--read-only", "nodes", "disable", node, "--yes", "--config", config], env)
    assert refused.exit_code == 1 and "read-only" in refused.output
    assert value(seeded_db, "SELECT enabled FROM ptero_nodes WHERE name = $1", node) is True

    from_env = run(
        ["act", "disable_node", node, "--yes", "--config", config], {**env, "OPSCONSOLE_READ_ONLY": "true"}
    )
    assert from_env.exit_code == 1 and "read-only" in from_env.output
    assert value(seeded_db, "SELECT enabled FROM ptero_nodes WHERE name = $1", node) is True

    dry = run(["--dry-run", "orders", "retry", order, "--yes", "--config", config], env)
    assert dry.exit_code == 0 and "dry-run: dry run: the precondition holds" in dry.output, dry.output
    assert fakes.functions.calls[order] == 0
    assert value(seeded_db, "SELECT status FROM orders WHERE id = $1::uuid", order) == "paid"

    migrate = run(["--read-only", "migrate"], env)
    assert migrate.exit_code == 1 and "read-only" in migrate.output
    # Read-only wrote nothing at all; the dry run wrote its intent and its dry-run outcome.
    outcomes = value(seeded_db, "SELECT array_agg(coalesce(outcome, phase) ORDER BY id) FROM ops.audit_log")
    assert outcomes == ["intent", "dry-run"]


# -- 2. who acts is the kernel's answer, not the environment's --------------------------


def test_a_forged_logname_does_not_make_an_unlisted_user_an_admin(
    seeded_db, seeded_runtime_db, fakes, tmp_path
):
    me = real_user()
    assert me != "alice"
    env = {**os.environ, **backends(seeded_runtime_db, fakes), "LOGNAME": "alice", "USER": "alice",
           "SUDO_USER": "alice", "XDG_CONFIG_HOME": "/nonexistent"}  # fmt: skip
    node = value(seeded_db, "SELECT name FROM ptero_nodes WHERE enabled ORDER BY name LIMIT 1")
    command = [sys.executable, "-m", "console", "act", "disable_node", node, "--yes",
               "--config", operators(tmp_path, alice="admin")]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"(as {me}, viewer)" in done.stdout and f"needs the oncall role; {me} is viewer" in done.stdout
    assert value(seeded_db, "SELECT enabled FROM ptero_nodes WHERE name = $1", node) is True
    who = asyncio.run(fetch(seeded_db, "SELECT DISTINCT operator, role FROM ops.audit_log"))
    assert [tuple(r) for r in who] == [(me, "viewer")]


# -- 3. the confirmation shows the refund and the deletion that will happen --------------


async def test_cancel_and_refund_confirms_exactly_what_it_then_does(seeded_db, seeded_runtime_db, fakes):
    order = (await fetch(seeded_db, ACTIVE_WITH_SERVER))[0][0]
    row = (await fetch(seeded_db, "SELECT pterodactyl_server_id, stripe_payment_intent_id, amount_cents, "
                       "stripe_subscription_id FROM orders WHERE id = $1::uuid", order))[0]  # fmt: skip
    server, intent, paid, subscription = row
    settings = {k: v for k, v in backends(seeded_runtime_db, fakes).items() if k != "DATABASE_URL"}
    app = make_app(seeded_runtime_db, role="support", **settings)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, OrdersScreen)
        await wait_until(pilot, lambda: screen.current_page is not None)
        await pilot.press("slash", *order, "enter")
        await wait_until(
            pilot, lambda: screen.selected == order and str(server) in text_of(screen.query_one("#detail"))
        )
        await pilot.press("X")
        await wait_until(pilot, lambda: isinstance(app.screen, AskScreen))  # the refund, asked first
        await pilot.press(*"all", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, AskScreen) and "delete" in app.screen.question)
        await pilot.press("ctrl+u", *"yes", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        calls = text_of(app.screen.query_one("#calls-text"))
        assert f"POST /v1/refunds payment_intent={intent} amount={paid}" in calls
        assert f"DELETE {fakes.panel.url}/api/application/servers/{server}" in calls
        summary = text_of(app.screen.query_one("#summary"))
        assert f"refund ${paid / 100:.2f}" in summary and f"delete panel server {server}" in summary
        await pilot.press(*order, "enter")
        await wait_until(pilot, lambda: any("order canceled" in str(n.message) for n in app._notifications))
        note = next(str(n.message) for n in app._notifications if "order canceled" in str(n.message))
        assert f"refunded ${paid / 100:.2f}" in note and f"panel server {server} deleted" in note
        await wait_until(pilot, lambda: "canceled" in text_of(screen.query_one("#detail")))
        await wait_until(pilot, lambda: str(server) not in text_of(screen.query_one("#detail")))
    assert fakes.stripe.refunded_total(intent) == paid
    assert int(server) in fakes.panel.deleted
    mutating = [r for r in fakes.stripe.requests + fakes.panel.requests if r[0] != "GET"]
    assert sorted(mutating) == sorted([("DELETE", f"/v1/subscriptions/{subscription}"),
                                       ("POST", "/v1/refunds"),
                                       ("DELETE", f"/api/application/servers/{server}")])  # fmt: skip


# -- 4. one target, one change at a time -------------------------------------------------


def two_consoles(dsn: str, fakes) -> tuple[Runbook, Runbook]:
    def book(operator: str, console: str) -> Runbook:
        services = build_services(Settings.isolated(**backends(dsn, fakes)).resolved())
        return Runbook(services, Actor(operator, "support", console))

    return book("alice", "console-a"), book("bob", "console-b")


async def test_retry_and_cancel_of_one_order_from_two_consoles_exclude_each_other(
    seeded_db, seeded_runtime_db, fakes
):
    order = (await fetch(seeded_db, STUCK_WITH_ACCOUNT))[0][0]
    fakes.functions.provision_delay = 1.5
    alice, bob = two_consoles(seeded_runtime_db, fakes)
    retry = asyncio.create_task(alice.execute(RETRY, order))
    await until(lambda: fakes.functions.calls[order] > 0)  # alice's provisioning call is under way
    await asyncio.sleep(1.0)  # one second apart, as reproduced
    cancel = await bob.execute(CANCEL, order, {"confirm": order})
    assert cancel.status == "busy" and f"alice is retrying order {order[:8]}" in cancel.message
    assert (await retry).ok
    assert [r for r in fakes.stripe.requests if r[0] != "GET"] == []  # no refund, no cancel
    assert (await fetch(seeded_db, "SELECT status FROM orders WHERE id = $1::uuid", order))[0][
        0
    ] == "provisioned"


async def test_a_cancel_in_flight_blocks_a_retry_and_its_precondition_refuses_after(
    seeded_db, seeded_runtime_db, fakes
):
    order = (await fetch(seeded_db, STUCK_WITH_ACCOUNT))[0][0]
    alice, bob = two_consoles(seeded_runtime_db, fakes)
    fakes.stripe.delay_next("/v1/subscriptions", 1.5)
    cancel = asyncio.create_task(bob.execute(CANCEL, order, {"confirm": order}))
    await until(lambda: any(path.startswith("/v1/subscriptions") for _m, path in fakes.stripe.requests))
    retry = await alice.execute(RETRY, order)
    assert retry.status == "busy" and f"bob is canceling order {order[:8]}" in retry.message
    assert (await cancel).ok
    again = await alice.execute(RETRY, order)
    assert again.status == "refused" and "order is canceled" in again.message
    assert fakes.functions.calls[order] == 0


# -- 5. PostgreSQL away mid-action: nothing half-happens, nothing stays stuck ------------


def _cli(args: list[str], dsn: str, fakes, config: str) -> subprocess.Popen:
    env = {**os.environ, **backends(dsn, fakes), "XDG_CONFIG_HOME": "/nonexistent"}
    return subprocess.Popen([sys.executable, "-m", "console", *args, "--config", config], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _wait_for_line(stream, text: str, timeout: float = 30.0) -> list[str]:
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"{text!r} never came: {seen}")


def test_postgres_stopping_mid_action_records_unknown_when_it_is_back(seeded_db, seeded_runtime_db, fakes,
                                                                     tmp_path):  # fmt: skip
    order = value(seeded_db, STUCK_WITH_ACCOUNT)
    fakes.functions.provision_delay = 3.0
    proxy, through = TcpProxy.for_dsn(seeded_runtime_db)
    proxy.up()
    try:
        config = operators(tmp_path, **{real_user(): "support"})
        cli_run = _cli(["orders", "retry", order, "--yes"], through, fakes, config)
        _wait_for_line(cli_run.stderr, "waiting for the server id")
        proxy.down()  # PostgreSQL is gone for the console: the call was accepted, its result unreadable
        _wait_for_line(cli_run.stderr, "retrying the outcome")
        assert value(seeded_db, "SELECT count(*) FROM ops.claims") == 1  # held while it tries
        time.sleep(2.0)
        proxy.up()
        out, err = cli_run.communicate(timeout=60)
    finally:
        proxy.close()
    assert cli_run.returncode == 3, out + err
    assert "unknown: the call was sent, its result is unknown" in out and f"check order {order}" in out
    rows = asyncio.run(
        fetch(seeded_db, "SELECT phase, outcome, intent_id, id FROM ops.audit_log ORDER BY id")
    )
    assert [(r["phase"], r["outcome"]) for r in rows] == [("intent", None), ("outcome", "unknown")]
    assert rows[1]["intent_id"] == rows[0]["id"]
    assert value(seeded_db, "SELECT count(*) FROM ops.claims") == 0
    assert fakes.functions.calls[order] == 1


def test_a_console_killed_mid_action_frees_its_target_within_seconds_and_is_recorded_abandoned(
    seeded_db, seeded_runtime_db, fakes, tmp_path
):
    order = value(seeded_db, STUCK_WITH_ACCOUNT)
    fakes.functions.provision_delay = 60.0  # the server never comes while the console lives
    config = operators(tmp_path, **{real_user(): "support"})
    cli_run = _cli(["orders", "retry", order, "--yes"], seeded_runtime_db, fakes, config)
    _wait_for_line(cli_run.stderr, "waiting for the server id")
    time.sleep(3.5)  # a heartbeat carried the progress line
    cli_run.send_signal(signal.SIGKILL)
    cli_run.communicate(timeout=10)
    killed = time.monotonic()
    other = Runbook(build_services(Settings.isolated(DATABASE_URL=seeded_runtime_db).resolved()),
                    Actor("bob", "support", "console-b"))  # fmt: skip

    async def sweep_until_found() -> float:
        while not await other.sweep():
            assert time.monotonic() - killed < 20, "the dead console's claim was never released"
            await asyncio.sleep(0.5)
        holder = await other.claims.holder("order", order)
        await other.services.close()
        assert holder is None
        return time.monotonic() - killed

    freed_after = asyncio.run(sweep_until_found())
    assert freed_after < 15
    [row] = asyncio.run(fetch(seeded_db, "SELECT outcome, error, detail->>'last_progress' AS last "
                              "FROM ops.audit_log WHERE phase = 'outcome'"))  # fmt: skip
    assert row["outcome"] == "abandoned" and "waiting for the server id" in row["last"]
    assert f"check order {order}" in row["error"]


# -- 7. what a customer typed is shown, never obeyed by the terminal ---------------------

EVIL = "evil\x1b]0;PWNED\x07\x1b[2J\x9b31m\u202e"


def test_escape_sequences_in_customer_data_are_shown_not_interpreted(seeded_db, seeded_runtime_db):
    order = value(seeded_db, STUCK_WITH_ACCOUNT)
    asyncio.run(fetch(seeded_db, "UPDATE orders SET server_name = $2 WHERE id = $1::uuid", order, EVIL))
    asyncio.run(fetch(seeded_db, "UPDATE users SET email = $2 FROM orders o WHERE o.id = $1::uuid "
                      "AND users.id = o.user_id", order, EVIL + "@example.com"))  # fmt: skip
    for args in (
        ["orders", "--search", order],
        ["orders", "--search", order, "--json"],
        ["orders", "--stuck"],
    ):
        result = run(args, {"DATABASE_URL": seeded_runtime_db})
        assert result.exit_code == 0, result.output
        for control in ("\x1b", "\x07", "\x9b", "\u202e"):
            assert control not in result.output, (args, control)
        assert "evil" in result.output
    shown = run(["orders", "--search", order], {"DATABASE_URL": seeded_runtime_db}).output
    assert "evil\\x1b]0;PWNED\\x07\\x1b[2J" in shown  # visible, so support can see what is there


# -- the plan shown is the plan run --------------------------------------------------------


async def test_a_plan_changed_after_it_was_shown_is_refused(seeded_db, seeded_runtime_db, fakes):
    import dataclasses

    order = (await fetch(seeded_db, ACTIVE_WITH_SERVER))[0][0]
    services = build_services(Settings.isolated(**backends(seeded_runtime_db, fakes)).resolved())
    book = Runbook(services, Actor("sue", "support", "c1"))
    try:
        shown = await book.plan(CANCEL, order, CANCEL.parse({"refund": "", "delete_server": "no"}))
        assert "no refund" in shown.preview.summary
        swapped = dataclasses.replace(shown, params={"refund": -1, "delete_server": True})
        outcome = await book.run(swapped, confirmed=order)
        assert outcome.status == "refused" and "changed after it was shown" in outcome.message
        other = Runbook(services, Actor("sue", "support", "c1"))  # another engine's seal does not do
        assert (await other.run(shown, confirmed=order)).status == "refused"
    finally:
        await services.close()
    assert fakes.stripe.requests == [] and fakes.panel.requests == []
    status = (await fetch(seeded_db, "SELECT status FROM orders WHERE id = $1::uuid", order))[0][0]
    assert status == "active"


async def test_a_read_only_console_writes_no_post_mortem_file(seeded_runtime_db, tmp_path, monkeypatch):
    import dataclasses

    monkeypatch.chdir(tmp_path)
    app = make_app(seeded_runtime_db)
    app.context = dataclasses.replace(app.context, read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4", "i", "e")
        await wait_until(pilot, lambda: any("read-only" in str(n.message) for n in app._notifications))
        assert not isinstance(app.screen, AskScreen)
    assert list(tmp_path.iterdir()) == []


def test_a_10000_character_server_name_is_cut_in_the_listing_and_whole_in_json(seeded_db, seeded_runtime_db):
    import json

    order = value(seeded_db, STUCK_WITH_ACCOUNT)
    huge = "x" * 10_000 + "\x1b[2J"
    asyncio.run(fetch(seeded_db, "UPDATE orders SET server_name = $2 WHERE id = $1::uuid", order, huge))
    listed = run(["orders", "--search", order], {"DATABASE_URL": seeded_runtime_db})
    line = next(line for line in listed.output.splitlines() if line.startswith(order))
    assert len(line) < 200 and "x" * 39 + "…" in line and "\x1b" not in listed.output
    as_json = run(["orders", "--search", order, "--json"], {"DATABASE_URL": seeded_runtime_db})
    assert json.loads(as_json.output)[0]["server_name"] == huge
