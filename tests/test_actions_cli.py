"""Every declared action, headless, from its one declaration: `opsconsole actions` lists it,
`opsconsole act` shows its preview and its dry run changes nothing, and it is refused to
someone without its role. For cancel-and-refund, whatever the inputs, the preview lists
every call the run then makes (hypothesis, with the fakes recording their requests)."""

from __future__ import annotations

import asyncio
import json
import shutil
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.sandbox.fake_kube import FakeKube, populate
from console.settings import Settings, real_user
from console.wiring import build_services
from services.action import is_action_key
from services.actions import ALL_ACTIONS, AREA_OF
from services.incident_actions import DECLARE_INCIDENT
from services.order_actions import CANCEL
from services.runbook import Actor, Runbook
from tests.test_trust import (
    ACTIVE_WITH_SERVER,
    STUCK_WITH_ACCOUNT,
    backends,
    fetch,
    operators,
    run,
    value,
)

NS = "production"


@pytest.fixture
def cluster(tmp_path):
    with FakeKube() as fake:
        populate(fake)
        fake.config_path = fake.kubeconfig(tmp_path / "kubeconfig")  # type: ignore[attr-defined]
        yield fake


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory):
    if not shutil.which("prometheus-alertmanager"):
        pytest.skip("needs the Debian package prometheus-alertmanager (make test installs it)")
    from console.sandbox.monitoring import AlertmanagerServer

    with AlertmanagerServer(tmp_path_factory.mktemp("am")) as am:
        yield am


def _incident(dsn: str) -> str:
    async def declare() -> str:
        services = build_services(Settings.isolated(DATABASE_URL=dsn).resolved())
        try:
            book = Runbook(services, Actor("ines", "oncall", "setup"))
            done = await book.execute(DECLARE_INCIDENT, "Webhooks failing", {"severity": "P1"})
            return str(done.detail["incident_id"])
        finally:
            await services.close()

    return asyncio.run(declare())


def _silence(am_url: str) -> str:
    async def make() -> str:
        services = build_services(Settings.isolated(ALERTMANAGER_URL=am_url).resolved())
        return await services.alerts.create_silence(
            [{"name": "alertname", "value": "HighErrorRate", "isRegex": False, "isEqual": True}],
            60,
            "test",
            "t",
        )

    return asyncio.run(make())


@pytest.fixture(scope="module")
def s3():
    from console.sandbox.s3 import S3Server

    with S3Server() as server:
        yield server


def s3_env(server, dsn: str) -> dict[str, str]:
    """A fresh bucket on the S3 server, and a key to encrypt backups with."""
    import uuid

    bucket = server.create_bucket(f"backups-{uuid.uuid4().hex[:10]}")
    return {**server.env(bucket), "S3_USE_SSL": "false", "BACKUP_ENCRYPTION_KEY": "ab" * 32}


def _backup(env: dict[str, str]) -> str:
    async def make() -> str:
        services = build_services(Settings.isolated(**env).resolved())
        try:
            return (await services.backups.run("test")).id
        finally:
            await services.close()

    return asyncio.run(make())


def _scratch_database(owner_dsn: str) -> str:
    import uuid
    from urllib.parse import urlsplit, urlunsplit

    name = f"restore_{uuid.uuid4().hex[:10]}"
    asyncio.run(_execute(owner_dsn, f'CREATE DATABASE "{name}"'))
    return urlunsplit(urlsplit(owner_dsn)._replace(path="/" + name))


async def _execute(dsn: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _sleeping_session(owner_dsn: str) -> str:
    """The pid of another client's session running a long query (closed when tests end)."""
    import atexit

    from tests.db_sessions import Sessions, bot_dsn

    made = Sessions(owner_dsn)
    atexit.register(made.close)
    return str(made.start("SELECT pg_sleep(300)", bot_dsn(owner_dsn)))


def _payment(name: str, stripe, owner_dsn: str) -> str:
    """A paid checkout session whose webhook failed, for a real user: the event to resend,
    or the session to credit."""
    user = value(owner_dsn, "SELECT id::text FROM users ORDER BY created_at LIMIT 1")
    stripe.events.add_endpoint("https://bot.example/webhooks/stripe")
    session, event = stripe.events.add_paid_session(user, 2500, credits=2500, delivered=False)
    return event.id if name == "resend_webhook" else session["id"]


def _checklist(name: str, dsn: str) -> tuple[str, list[str]]:
    """The weekly checklist's open run, walked now: a manual item to answer, or the run to sign."""

    async def walk() -> None:
        services = build_services(Settings.isolated(DATABASE_URL=dsn).resolved())
        try:
            await services.checklists.walk("weekly", "walker")
        finally:
            await services.close()

    asyncio.run(walk())
    if name == "checklist_answer":
        return "weekly/support-tickets", ["--set", "done=yes", "--set", "note=all answered"]
    return "weekly", []


def case(name: str, dsn: str, owner_dsn: str, kube: str, am_url: str, env=None) -> tuple[str, list[str]]:
    """(target, --set arguments) that make `name` runnable right now on the seeded world."""
    if name in ("cancel_query", "terminate_session"):
        return _sleeping_session(owner_dsn), []
    if name == "db_maintenance":
        return "public.orders", ["--set", "command=vacuum analyze"]
    if name in ("verify_backup", "drill_backup"):
        return _backup(env), []
    if name == "restore_backup":
        into = _scratch_database(owner_dsn)
        return _backup(env), ["--set", f"into={into}"]
    if name == "backup_run":
        return owner_dsn.rpartition("/")[2], []
    if name == "prune_backups":
        return env["S3_BUCKET"], ["--set", "before=2026-01-01"]
    sets = {
        "cancel_refund": ["refund=all", "delete_server=no"],
        "scale_deployment": [f"namespace={NS}", "replicas=2"],
        "scale_fleet": [f"namespace={NS}", "replicas=12"],
        "rollout_restart": [f"namespace={NS}"],
        "declare_incident": ["severity=P1"],
        "incident_status": ["status=assessment"],
        "incident_command": ["commander=bob"],
        "incident_note": ["text=rotated the webhook secret"],
        "incident_postmortem": ["impact=60 customers waited an hour", "action_items=alert on 401s; runbook"],
        "silence_alert": ["minutes=2h", "comment=deploying the fix", "labels=alertname=HighErrorRate"],
        "set_price": ["credits=260", "reason=wipe weekend"],
        "set_game_enabled": ["reason=the new egg shipped"],
    }.get(name, [])
    target = {
        "retry_provisioning": lambda: value(owner_dsn, STUCK_WITH_ACCOUNT),
        "sync_panel_account": lambda: value(
            owner_dsn,
            "SELECT o.id::text FROM orders o WHERE o.status = 'paid' AND NOT EXISTS "
            "(SELECT 1 FROM external_accounts x WHERE x.user_id = o.user_id) LIMIT 1",
        ),
        "cancel_refund": lambda: value(owner_dsn, ACTIVE_WITH_SERVER),
        "enable_node": lambda: value(owner_dsn, "SELECT name FROM ptero_nodes WHERE NOT enabled LIMIT 1"),
        "disable_node": lambda: value(owner_dsn, "SELECT name FROM ptero_nodes WHERE enabled LIMIT 1"),
        "scale_deployment": lambda: "agis-bot",
        "rollout_restart": lambda: "agis-bot",
        "scale_fleet": lambda: "agis-fleet",
        "declare_incident": lambda: "Payments webhook failing",
        "silence_alert": lambda: "HighErrorRate",
        "expire_silence": lambda: _silence(am_url),
        "set_price": lambda: "rust",
        "set_game_enabled": lambda: "unturned",  # disabled in the seed: enabling it is the suggestion
    }.get(name, lambda: _incident(dsn))()
    return target, [arg for s in sets for arg in ("--set", s)]


@pytest.mark.parametrize("name", list(ALL_ACTIONS))
def test_every_action_previews_dry_runs_and_refuses_from_the_command_line(
    name,
    seeded_db,
    seeded_runtime_db,
    fakes,
    cluster,
    alertmanager,
    s3,
    tmp_path,
):
    action = ALL_ACTIONS[name]
    env = {**backends(seeded_runtime_db, fakes), "KUBECONFIG": str(cluster.config_path),
           "ALERTMANAGER_URL": alertmanager.url}  # fmt: skip
    if AREA_OF[name] == "backups":
        env.update(s3_env(s3, seeded_runtime_db))
    if AREA_OF[name] == "database":
        env["OPSCONSOLE_RESTORE_DSN"] = seeded_db  # the maintenance login: owns the tables
    if AREA_OF[name] == "payments":
        target, sets = _payment(name, fakes.stripe, seeded_db), []
    elif AREA_OF[name] == "checklists":
        target, sets = _checklist(name, seeded_runtime_db)
    else:
        kube = str(cluster.config_path)
        target, sets = case(name, seeded_runtime_db, seeded_db, kube, alertmanager.url, env)
    assert target, f"the seeded world has no target for {name}"
    before = value(seeded_db, "SELECT count(*) FROM ops.audit_log WHERE phase = 'outcome'")

    allowed = operators(tmp_path, **{real_user(): action.role})
    dry = run(["act", name, target, *sets, "--dry-run", "--config", allowed], env)
    assert dry.exit_code == 0, dry.output
    lines = dry.output.splitlines()
    assert lines[0].startswith(f"{action.title} — {action.target_kind}")
    assert len(lines) > 3  # the summary and at least one exact call
    assert lines[-1].startswith("dry-run: dry run: the precondition holds"), dry.output
    # Every value a preview's SQL takes is shown: each $n it uses has its "$n = name: value".
    import re

    sql = [
        line for line in lines if line.startswith("  ") and not line.lstrip().startswith("--")
    ]  # the calls
    used = {n for line in sql for n in re.findall(r"\$(\d+)", line)}
    bound = set(re.findall(r"\$(\d+) = ", dry.output))
    assert used <= bound, f"{name}: ${sorted(used - bound)} shown without its value"

    viewer = run(["act", name, target, *sets, "--yes", "--config", operators(tmp_path, nobody="admin")], env)
    if action.role == "viewer":
        pytest.fail("no action should be open to viewers")
    assert viewer.exit_code == 1 and f"needs the {action.role} role; {real_user()} is viewer" in viewer.output
    last_two = "SELECT outcome, action FROM ops.audit_log WHERE phase = 'outcome' ORDER BY id DESC LIMIT 2"
    outcomes = asyncio.run(fetch(seeded_db, last_two))
    assert [(r["outcome"], r["action"]) for r in outcomes] == [("refused", name), ("dry-run", name)]
    assert value(seeded_db, "SELECT count(*) FROM ops.audit_log WHERE phase = 'outcome'") == before + 2


def test_actions_lists_every_declaration(seeded_runtime_db):
    listed = json.loads(run(["actions", "--json"], {}).output)
    assert [a["name"] for a in listed] == list(ALL_ACTIONS)
    cancel = next(a for a in listed if a["name"] == "cancel_refund")
    assert cancel["area"] == AREA_OF["cancel_refund"] == "orders" and cancel["confirmation"] == "typed"
    assert [i["name"] for i in cancel["inputs"]] == ["refund", "delete_server"]
    sync = next(a for a in listed if a["name"] == "sync_panel_account")
    assert sync["target_kind"] == "user" and sync["selects"] == "order"


def test_bad_input_is_one_clear_line_and_changes_nothing(seeded_db, seeded_runtime_db, tmp_path):
    env = {"DATABASE_URL": seeded_runtime_db}
    config = operators(tmp_path, **{real_user(): "admin"})
    order = value(seeded_db, ACTIVE_WITH_SERVER)
    for sets, message in (
        (["refund=lots"], "refund: refund 'lots' is not an amount"),
        (["delete_server=maybe"], "delete_server: answer yes or no"),
        (["colour=red"], "cancel_refund has no input colour"),
        (["oops"], "expected NAME=VALUE"),
    ):
        result = run(["act", "cancel_refund", order, *[a for s in sets for a in ("--set", s)], "--yes",
                      "--confirm", order, "--config", config], env)  # fmt: skip
        assert result.exit_code == 2 and message in result.output, result.output
        assert "Traceback" not in result.output
    assert run(["act", "no_such_action", "x", "--config", config], env).exit_code == 2
    assert value(seeded_db, "SELECT count(*) FROM ops.audit_log") == 0
    assert value(seeded_db, "SELECT status FROM orders WHERE id = $1::uuid", order) == "active"


# -- the preview is the run: every outbound call it makes was listed -----------------------


def _calls_listed(preview_calls: tuple[str, ...]) -> list[tuple[str, str]]:
    """(method, path) of every HTTP call a preview lists ("POST /v1/refunds ...")."""
    found = []
    for call in preview_calls:
        method, _, rest = call.split("\n")[0].partition(" ")
        if method in ("GET", "POST", "DELETE", "PATCH", "PUT"):
            path = rest.split(" ")[0]
            found.append(
                (method, "/" + path.split("://", 1)[-1].split("/", 1)[-1] if "://" in path else path)
            )
    return found


@pytest.fixture
def world(seeded_db, seeded_runtime_db, fakes):
    rows = asyncio.run(fetch(seeded_db, "SELECT id::text FROM orders WHERE status IN ('active', 'paid', "
                             "'provisioned') AND stripe_payment_intent_id IS NOT NULL ORDER BY created_at "
                             "LIMIT 40"))  # fmt: skip
    settings = Settings.isolated(**backends(seeded_runtime_db, fakes)).resolved()
    return SimpleNamespace(orders=[r[0] for r in rows], settings=settings, fakes=fakes, dsn=seeded_db)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pick=st.integers(min_value=0, max_value=39),
    refund=st.one_of(
        st.just(""), st.just("all"), st.decimals(min_value="0.01", max_value="80", places=2).map(str)
    ),
    delete=st.booleans(),
)
def test_cancel_runs_only_the_calls_its_preview_listed(world, pick, refund, delete):
    order = world.orders[pick % len(world.orders)]

    async def go():
        services = build_services(world.settings)  # one event loop per example: its own pools
        book = Runbook(services, Actor("sue", "support", f"c-{pick}"))
        params = CANCEL.parse({"refund": refund, "delete_server": "yes" if delete else "no"})
        plan = await book.plan(CANCEL, order, params)
        marks = (len(world.fakes.stripe.requests), len(world.fakes.panel.requests))
        try:
            outcome = await book.run(plan, confirmed=order)
        finally:
            await services.close()
        made = world.fakes.stripe.requests[marks[0] :] + world.fakes.panel.requests[marks[1] :]
        return plan, outcome, [r for r in made if r[0] != "GET"]

    plan, outcome, made = asyncio.run(go())
    listed = _calls_listed(plan.preview.calls)
    assert all(call in listed for call in made), (made, listed)  # nothing ran that was not shown
    if outcome.ok:
        assert sorted(made) == sorted(listed)  # and what was shown ran
    if plan.refusal or outcome.status == "refused":
        assert made == []


# -- keys ------------------------------------------------------------------------------------


def _screens():
    from screens.audit import AuditScreen
    from screens.backends import BackendsScreen
    from screens.backups import BackupsScreen
    from screens.checklists import ChecklistScreen
    from screens.database import DatabaseScreen
    from screens.incidents import IncidentsScreen
    from screens.nodes import NodesScreen
    from screens.orders import OrdersScreen
    from screens.overview import OverviewScreen
    from screens.payments import PaymentsScreen
    from screens.pricing import PricingScreen

    return [
        OverviewScreen,
        OrdersScreen,
        NodesScreen,
        IncidentsScreen,
        PricingScreen,
        PaymentsScreen,
        ChecklistScreen,
        BackupsScreen,
        DatabaseScreen,
        AuditScreen,
        BackendsScreen,
    ]


def test_within_a_screen_no_two_bindings_share_a_key():
    from console.app import OpsConsole

    app_keys = {k.strip() for b in OpsConsole.BINDINGS for k in b.key.split(",")}
    assert {"1", "2", "question_mark", "q"} <= app_keys
    for screen in _screens():
        keys = [k.strip() for b in screen.BINDINGS for k in b.key.split(",")]
        assert len(keys) == len(set(keys)), (screen.__name__, sorted(k for k in keys if keys.count(k) > 1))
        assert not (set(keys) & app_keys)


def test_an_action_key_means_one_action_everywhere_and_view_keys_never_act():
    """The rule (README, Keys): an uppercase letter (or `>` `+` `=` `!`) runs a runbook action and means
    the same action in every area; lowercase keys only show things (tabs, views, filters, follow)."""
    seen: dict[str, str] = {}
    for action in ALL_ACTIONS.values():
        assert is_action_key(action.key), action.name
        assert seen.setdefault(action.key, action.name) == action.name, (
            action.key,
            seen[action.key],
            action.name,
        )
    for screen in _screens():
        for binding in screen.BINDINGS:
            if binding.action.startswith("act("):
                assert is_action_key(binding.key)
            else:
                assert not is_action_key(binding.key), (screen.__name__, binding.key)
