"""The checklists: every automatic item on a world where it passes and one where it fails
(real PostgreSQL, the fake Stripe, moto's S3, a real Prometheus scraping the fake bot); a
source that is not there is "not available", never a pass; runs are stored with their
evidence, a signed-off run cannot be edited (the database refuses), unresolved items carry
over into the next run and the handover; `check daily --json` exits 1 on a failure only."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid

import asyncpg
import pytest

from console.sandbox.fake_stripe import FakeStripe
from console.settings import Settings, real_user
from console.wiring import build_services
from services.checklist_actions import ANSWER, SIGN_OFF
from services.checklist_items import ITEMS, find_item
from services.runbook import Actor, Runbook
from tests.test_actions_cli import s3, s3_env  # noqa: F401 (the module-scoped S3 server)
from tests.test_payments import seed
from tests.test_trust import operators, run

STRIPE_KEY = "sk_test_checklists_0123"


async def sql(dsn: str, statement: str, *args):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(statement, *args)
    finally:
        await conn.close()


def services_for(dsn: str, **settings):
    return build_services(Settings.isolated(DATABASE_URL=dsn, **settings).resolved())


async def seen(dsn: str, item_id: str, **settings):
    checklist = next(c for c, items in ITEMS.items() if any(i.id == item_id for i in items))
    services = services_for(dsn, **settings)
    try:
        return await services.checklists._seen(find_item(checklist, item_id))
    finally:
        await services.close()


# -- every automatic item: a world where it passes, one where it fails -----------------------

FIX_STUCK = "UPDATE orders SET status = 'provisioned', pterodactyl_server_id = 'x' WHERE status = 'paid'"
ERRORS_OLD = "UPDATE orders SET updated_at = now() - interval '3 days' WHERE status = 'error'"
ERRORS_NOW = """UPDATE orders SET status = 'error', error_message = 'No available nodes', updated_at = now()
WHERE id IN (SELECT id FROM orders WHERE status = 'active' ORDER BY id LIMIT 3)"""
FULL_NODES = """UPDATE ptero_nodes n SET max_ram_gb = greatest(u.used, 1), reserved_headroom_gb = 0
FROM (SELECT n2.id, coalesce(sum(p.ram_gb), 0)::int AS used FROM ptero_nodes n2
      LEFT JOIN orders o ON o.node_id = n2.id
           AND o.status IN ('paid', 'provisioning', 'installing', 'provisioned', 'active')
      LEFT JOIN plans p ON p.id = o.plan_id GROUP BY n2.id) u WHERE u.id = n.id"""
ROOMY_NODES = "UPDATE ptero_nodes SET max_ram_gb = 100000, reserved_headroom_gb = 0"
ALL_PROVISIONED = """UPDATE orders SET status = 'provisioned'
WHERE created_at > now() - interval '7 days' AND status IN ('paid', 'provisioning', 'error')"""
MOSTLY_ERRORS = """UPDATE orders SET status = 'error'
WHERE created_at > now() - interval '7 days' AND status IN ('paid', 'provisioning', 'provisioned')"""
CANCELS = """UPDATE orders SET status = 'canceled', updated_at = now()
WHERE id IN (SELECT id FROM orders WHERE stripe_subscription_id IS NOT NULL AND status = 'active' LIMIT 5)"""
NO_NEW = (
    "UPDATE orders SET created_at = now() - interval '2 days' WHERE created_at > now() - interval '24 hours'"
)

CANCELS_OLD = (
    "UPDATE orders SET updated_at = now() - interval '3 days' WHERE status IN ('canceled', 'refunded')"
)

SQL_WORLDS = {
    # item: (statements making it fail, the failing state, then statements making it pass)
    "stuck-paid": ([], "fail", [FIX_STUCK]),
    "error-orders": ([ERRORS_NOW], "fail", [ERRORS_OLD]),
    "node-capacity": ([FULL_NODES], "fail", [ROOMY_NODES]),
    "provisioning-rate": ([MOSTLY_ERRORS], "fail", [ALL_PROVISIONED]),
    "node-utilisation": ([FULL_NODES], "warn", [ROOMY_NODES]),
    "resource-usage": ([FULL_NODES], "warn", [ROOMY_NODES]),
    "subscriptions": ([NO_NEW, CANCELS], "warn", [CANCELS_OLD]),
    "alerts-review": (
        [],
        "fail",
        [FIX_STUCK, "UPDATE orders SET status = 'canceled' WHERE status = 'error'", ROOMY_NODES],
    ),
}


@pytest.mark.parametrize("item_id", list(SQL_WORLDS))
async def test_a_database_item_fails_and_passes_with_its_world(item_id, seeded_db):
    failing, bad, passing = SQL_WORLDS[item_id]
    for statements, expected in ((failing, bad), (passing, "pass")):
        for statement in statements:
            await sql(seeded_db, statement)
        found = await seen(seeded_db, item_id)
        assert found.state == expected, (item_id, expected, found)
        assert found.figure and found.threshold


async def test_vacuum_fails_until_the_big_tables_are_vacuumed(seeded_db):
    assert (await seen(seeded_db, "vacuum")).state == "fail"  # a fresh copy: never vacuumed
    await sql(seeded_db, "VACUUM")
    found = await seen(seeded_db, "vacuum")
    assert found.state == "pass" and "vacuumed within 7 days" in found.figure


async def test_reindex_is_due_until_the_console_reindexed(seeded_db, seeded_runtime_db):
    assert (await seen(seeded_runtime_db, "reindex")).state == "fail"
    from services.db_actions import DB_ACTIONS

    maintenance = next(a for a in DB_ACTIONS if a.name == "db_maintenance")
    services = services_for(seeded_runtime_db, OPSCONSOLE_RESTORE_DSN=seeded_db)
    try:
        outcome = await Runbook(services, Actor("dba", "admin", "t-dba")).execute(
            maintenance, "public.plans", {"command": "reindex concurrently"}
        )
        assert outcome.ok, outcome.message
    finally:
        await services.close()
    found = await seen(seeded_runtime_db, "reindex")
    assert found.state == "pass" and "by dba" in found.figure


async def test_webhook_rate_passes_fails_and_is_not_available_without_stripe(seeded_db):
    assert (await seen(seeded_db, "webhook-rate")).state == "not available"
    with FakeStripe(STRIPE_KEY, dsn=seeded_db) as stripe:
        settings = {"STRIPE_SECRET_KEY": STRIPE_KEY, "OPSCONSOLE_STRIPE_API_BASE": stripe.url}
        await seed(seeded_db, stripe.events, credited=200, owed=1)
        found = await seen(seeded_db, "webhook-rate", **settings)
        assert found.state == "pass" and found.figure.startswith("99.5 %")
        await seed(seeded_db, stripe.events, credited=0, owed=20)
        found = await seen(seeded_db, "webhook-rate", **settings)
        assert found.state == "fail" and "21 undelivered" in found.figure
    found = await seen(seeded_db, "webhook-rate", **settings)  # Stripe gone
    assert found.state == "not available" and "Stripe" in found.figure


async def test_health_endpoints_fail_when_a_configured_backend_does_not_answer(seeded_db):
    assert (await seen(seeded_db, "health-endpoints")).state == "pass"
    found = await seen(seeded_db, "health-endpoints", OPSCONSOLE_BOT_URL="http://127.0.0.1:9")
    assert found.state == "fail" and "bot" in found.figure


async def test_backup_items_pass_with_a_good_backup_and_a_drill(seeded_db, seeded_runtime_db, s3):  # noqa: F811
    for item in ("backup-success", "restore-drill"):
        assert (await seen(seeded_runtime_db, item)).state == "not available"
    env = {**s3_env(s3, seeded_runtime_db), "OPSCONSOLE_RESTORE_DSN": seeded_db}
    env.pop("DATABASE_URL", None)
    assert (await seen(seeded_runtime_db, "backup-success", **env)).state == "fail"  # an empty bucket
    services = services_for(seeded_runtime_db, **env)
    try:
        made = await services.backups.run("test")
        assert (await seen(seeded_runtime_db, "backup-success", **env)).state == "pass"
        assert (await seen(seeded_runtime_db, "restore-drill", **env)).state == "fail"
        await services.backups.drill(await services.backups.get(made.id))
    finally:
        await services.close()
    assert (await seen(seeded_runtime_db, "restore-drill", **env)).state == "pass"


@pytest.mark.skipif(
    not shutil.which("prometheus"), reason="needs Debian's prometheus (make test installs it)"
)
async def test_bot_errors_pass_then_fail_over_the_alert_rate(seeded_db, tmp_path):
    from console.sandbox.fake_bot import FakeBot
    from console.sandbox.monitoring import PrometheusServer

    assert (await seen(seeded_db, "bot-errors")).state == "not available"
    with FakeBot() as bot:
        bot.set_rate("errors", 0.05)
        host = bot.url.removeprefix("http://")
        prometheus = PrometheusServer(
            tmp_path / "prom",
            rule_files=[],
            scrape_targets={"agis-bot": host},
            alertmanager_url=None,
            interval="1s",
        )
        with prometheus as prom:
            url = {"PROMETHEUS_URL": prom.url}
            for _ in range(100):
                found = await seen(seeded_db, "bot-errors", **url)
                if found.state != "not available":
                    break
                await asyncio.sleep(0.2)
            assert found.state == "pass", found
            bot.set_rate("errors", 2000.0)  # rate()[5m] over a few seconds of it: well over 1/s
            for _ in range(100):
                found = await seen(seeded_db, "bot-errors", **url)
                if found.state == "warn":
                    break
                await asyncio.sleep(0.2)
            assert found.state == "warn" and "peak" in found.figure, found


# -- runs ------------------------------------------------------------------------------------


def book(services, operator="sam", role="support") -> Runbook:
    return Runbook(services, Actor(operator, role, f"t-{operator}-{uuid.uuid4().hex[:4]}"))


async def test_a_signed_off_run_cannot_change_and_unresolved_items_carry_over(seeded_db, seeded_runtime_db):
    services = services_for(seeded_runtime_db)
    try:
        first = await services.checklists.walk("weekly", "sam")
        assert first.stored and {i.item for i in first.items} == {i.id for i in ITEMS["weekly"]}
        assert first.item("support-tickets").shown_state == "manual"
        runbook = book(services)
        done = await runbook.execute(ANSWER, "weekly/support-tickets", {"done": True, "note": "3 answered"})
        assert done.ok, done.message
        refused = await runbook.execute(ANSWER, "weekly/docs", {"done": False})
        assert refused.status == "refused" and "say why" in refused.message
        signed = await runbook.execute(SIGN_OFF, "weekly", {"note": "vacuum left for tonight"})
        assert signed.ok, signed.message
        run = await services.checklists.run(first.id)
        assert run.signed and run.signed_off_by == "sam"
        assert (
            run.item("support-tickets").state == "pass" and run.item("support-tickets").note == "3 answered"
        )
        # The database refuses any change to the signed run, even from its owner.
        for statement in (
            f"UPDATE ops.checklist_items SET state = 'pass' WHERE run_id = {first.id} AND item = 'docs'",
            f"UPDATE ops.checklist_runs SET sign_off_note = 'edited' WHERE id = {first.id}",
            f"DELETE FROM ops.checklist_items WHERE run_id = {first.id}",
            f"DELETE FROM ops.checklist_runs WHERE id = {first.id}",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await sql(seeded_db, statement)
        again = await runbook.execute(ANSWER, "weekly/docs", {"done": True})
        assert again.status == "refused" and "no open run" in again.message
        # The next run carries over what was unresolved: the unanswered docs item, the failed vacuum.
        second = await services.checklists.walk("weekly", "kim")
        assert second.id != first.id
        assert second.item("docs").carried_from == first.id
        assert second.item("vacuum").carried_from == first.id
        assert second.item("support-tickets").carried_from is None
        handover = await services.checklists.handover()
        assert "### Weekly (run" in handover and "carried over since run" in handover
        assert "Update documentation if needed" in handover and "vacuum left for tonight" not in handover
    finally:
        await services.close()


async def test_two_consoles_walking_at_once_share_one_open_run(seeded_runtime_db):
    consoles = [services_for(seeded_runtime_db) for _ in range(2)]
    try:
        runs = await asyncio.gather(*(s.checklists.walk("daily", f"op{n}") for n, s in enumerate(consoles)))
        assert runs[0].id == runs[1].id
    finally:
        for s in consoles:
            await s.close()


async def test_a_rotation_is_satisfied_by_its_last_recorded_answer(seeded_runtime_db):
    services = services_for(seeded_runtime_db)
    try:
        first = await services.checklists.walk("monthly", "sam")
        assert first.item("db-password").shown_state == "manual"
        assert "never recorded" in first.item("db-password").figure
        assert (
            await book(services).execute(ANSWER, "monthly/db-password", {"done": True, "note": "vault"})
        ).ok
        assert (await book(services).execute(SIGN_OFF, "monthly", {})).ok
        later = await services.checklists.walk("monthly", "kim")
        rotated = later.item("db-password")
        assert rotated.state == "pass" and "by sam: vault" in rotated.figure
    finally:
        await services.close()


async def test_a_stale_run_must_be_refreshed_before_it_is_signed(seeded_db, seeded_runtime_db):
    services = services_for(seeded_runtime_db)
    try:
        run_ = await services.checklists.walk("daily", "sam")
        await sql(seeded_db, "ALTER TABLE ops.checklist_items DISABLE TRIGGER checklist_items_signed")
        await sql(seeded_db, f"UPDATE ops.checklist_items SET checked_at = now() - interval '1 hour' "
                             f"WHERE run_id = {run_.id}")  # fmt: skip
        await sql(seeded_db, "ALTER TABLE ops.checklist_items ENABLE TRIGGER checklist_items_signed")
        refused = await book(services).execute(SIGN_OFF, "daily", {})
        assert refused.status == "refused" and "refresh" in refused.message
        await services.checklists.walk("daily", "sam")
        assert (await book(services).execute(SIGN_OFF, "daily", {})).ok
    finally:
        await services.close()


# -- the command line ------------------------------------------------------------------------


def test_check_daily_json_exits_1_on_a_failure_and_0_when_clean(seeded_db, seeded_runtime_db, tmp_path):
    env = {
        "DATABASE_URL": seeded_runtime_db,
        "OPSCONSOLE_CONFIG": operators(tmp_path, **{real_user(): "support"}),
    }
    failing = run(["check", "daily", "--json"], env)
    assert failing.exit_code == 1, failing.output
    body = json.loads(failing.output)
    assert "stuck-paid" in body["failed"] and body["run"] is not None
    states = {i["item"]: i["state"] for i in body["items"]}
    assert states["webhook-rate"] == "not available" and states["bot-errors"] == "not available"
    for statement in (FIX_STUCK, ERRORS_OLD, ROOMY_NODES):
        asyncio.run(sql(seeded_db, statement))
    clean = run(["check", "daily", "--json"], env)
    assert clean.exit_code == 0, clean.output
    assert json.loads(clean.output)["run"] == body["run"]  # the same open run, refreshed
    weekly = run(["check", "weekly", "--json"], env)
    manual = {i["item"]: i["state"] for i in json.loads(weekly.output)["items"] if i["kind"] == "manual"}
    assert manual == {"support-tickets": "manual", "docs": "manual"}
    text = run(["check", "daily"], env).output
    assert "✓ pass" in text and "Orders stuck in paid overnight" in text
    assert run(["check", "yearly"], env).exit_code == 2
    answered = run(["check", "answer", "weekly/docs", "--note", "runbook updated", "--yes"], env)
    assert answered.exit_code == 0, answered.output
    signed = run(["check", "sign-off", "weekly", "--yes"], env)
    assert signed.exit_code == 0, signed.output
    handover = run(["check", "handover"], env)
    assert handover.exit_code == 0 and handover.output.startswith("## Ops handover")
    status = run(["check", "status", "--json"], env)
    dues = {d["checklist"]: d["state"] for d in json.loads(status.output)}
    assert dues["weekly"] == "ok" and dues["quarterly"] == "overdue" and status.exit_code == 1


def test_a_read_only_console_looks_but_records_nothing(seeded_db, seeded_runtime_db, tmp_path):
    env = {
        "DATABASE_URL": seeded_runtime_db,
        "OPSCONSOLE_CONFIG": operators(tmp_path, **{real_user(): "support"}),
    }
    looked = run(["--read-only", "check", "daily", "--json"], env)
    assert looked.exit_code == 1 and json.loads(looked.output)["run"] is None
    assert asyncio.run(sql(seeded_db, "SELECT count(*) FROM ops.checklist_runs"))[0][0] == 0
