"""The Kubernetes side of the nodes area against the loopback API server (real
kubernetes_asyncio on the wire): watch events move rows in place, an API server that goes
away makes the panels stale (never the app) and a re-list brings them back, 410 Gone
re-lists, the scaling runbooks are guarded, confirmed and audited, logs follow."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from console.sandbox.fake_bot import FakeBot
from console.sandbox.fake_kube import FakeKube, populate
from screens.action_modal import ActionConfirmScreen, AskScreen
from screens.live_table import LiveTable
from screens.widgets import Panel
from services.audit import AuditFilter, AuditService
from services.kube import KubeService
from services.kube_actions import RESTART_DEPLOYMENT, SCALE_DEPLOYMENT, SCALE_FLEET
from services.kube_watch import KubeWatch
from services.runbook import Actor, Runbook
from tests.conftest import wait_until
from tests.helpers import make_app, text_of

NS = "production"


@pytest.fixture
def cluster(tmp_path):
    with FakeKube() as fake:
        populate(fake)
        fake.config_path = fake.kubeconfig(tmp_path / "kubeconfig")  # type: ignore[attr-defined]
        yield fake


def _replicas(fake: FakeKube, kind: str, name: str) -> int:
    return fake.get(kind, NS, name)["spec"]["replicas"]


def _bot_pods(fake: FakeKube) -> list[str]:
    return sorted(
        p["metadata"]["name"] for p in fake.objects("Pod", NS) if p["metadata"]["labels"]["app"] == "agis-bot"
    )


async def _open_nodes(pilot, app, tab: str):
    await pilot.press("3", tab)
    screen = app.screen
    await wait_until(pilot, lambda: screen.watch is not None and screen.watch.state["pods"].connected)
    return screen


async def test_watch_events_update_the_pods_table_in_place(seeded_db, cluster):
    app = make_app(seeded_db, KUBECONFIG=str(cluster.config_path))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_nodes(pilot, app, "p")
        table = screen.query_one("#pods-table", LiveTable)
        await wait_until(pilot, lambda: len(table.shown) == 5)
        victim = _bot_pods(cluster)[1]
        table.move_cursor(row=table.get_row_index(f"{NS}/{victim}"))
        await pilot.pause()
        await asyncio.to_thread(cluster.crashloop, NS, victim)
        await wait_until(pilot, lambda: str(table.shown[f"{NS}/{victim}"][1]) == "CrashLoopBackOff")
        assert str(table.shown[f"{NS}/{victim}"][3]) == "1"  # restarts
        assert table.selected_key == f"{NS}/{victim}"  # updated in place: the cursor stayed on it
        assert len(table.shown) == 5
        # Scaling from outside shows up too, in the deployments table and as new pods.
        await pilot.press("k")
        await asyncio.to_thread(cluster.apply, {**cluster.get("Deployment", NS, "minio"),
                                                "spec": {**cluster.get("Deployment", NS, "minio")["spec"],
                                                         "replicas": 2}})  # fmt: skip
        deployments = screen.query_one("#deployments-table", LiveTable)
        await wait_until(pilot, lambda: str(deployments.shown[f"{NS}/minio"][1]) == "2/2")
        assert len(table.shown) == 6


async def test_api_server_going_away_makes_panels_stale_and_a_relist_recovers(seeded_db, cluster):
    app = make_app(seeded_db, KUBECONFIG=str(cluster.config_path))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_nodes(pilot, app, "p")
        panel = screen.query_one("#pods-panel", Panel)
        await asyncio.to_thread(cluster.outage)
        await wait_until(pilot, lambda: panel.has_class("-failing"), timeout=10)
        assert "cannot be reached" in str(panel.border_subtitle)
        rows_before = dict(screen.query_one("#pods-table", LiveTable).shown)
        assert len(rows_before) == 5  # the last known rows stay, marked stale
        # The app is fine: the capacity tab (Postgres) still works.
        await pilot.press("c")
        assert len(screen.query_one("#capacity-table", LiveTable).shown) == 8
        lists = screen.watch.state["pods"].lists
        await asyncio.to_thread(cluster.restore)
        await wait_until(pilot, lambda: not panel.has_class("-failing"), timeout=20)
        assert screen.watch.state["pods"].lists > lists  # recovered by listing again
        # ...and the watch is live again.
        await pilot.press("p")
        victim = _bot_pods(cluster)[0]
        await asyncio.to_thread(cluster.crashloop, NS, victim)
        table = screen.query_one("#pods-table", LiveTable)
        await wait_until(pilot, lambda: str(table.shown[f"{NS}/{victim}"][1]) == "CrashLoopBackOff")


async def test_410_gone_relists_and_misses_nothing(cluster, caplog):
    caplog.set_level("INFO", logger="services.kube_watch")
    victim = _bot_pods(cluster)[2]

    class GapAfterFirstList(KubeService):
        """Right after the first list, before its watch starts, a pod is deleted and the
        server compacts its history: the watch from the list's resourceVersion gets 410."""

        gap_made = False

        async def list_rows(self, api, kind, namespace):
            rows, version = await super().list_rows(api, kind, namespace)
            if not self.gap_made:
                self.gap_made = True
                await asyncio.to_thread(cluster.delete, "Pod", NS, victim)
                await asyncio.to_thread(cluster.compact)
            return rows, version

    listed = asyncio.Queue()
    kube = GapAfterFirstList(str(cluster.config_path))
    watch = KubeWatch(
        kube, None, NS, lambda kind, keys: keys is None and listed.put_nowait(kind), kinds=("pods",)
    )
    task = asyncio.create_task(watch.run())
    try:
        await asyncio.wait_for(listed.get(), 10)
        await asyncio.wait_for(listed.get(), 10)  # listed again after the 410
        assert watch.state["pods"].lists == 2 and "410 Gone" in caplog.text
        assert watch.freshness("pods").stale is False
        # The deletion the watch never saw is not missed: the re-list does not have it.
        assert f"{NS}/{victim}" not in watch.rows["pods"]
        assert set(watch.rows["pods"]) == {
            f"{NS}/{p['metadata']['name']}" for p in cluster.objects("Pod", NS)
        }
    finally:
        task.cancel()


def _book(dsn: str, config_path, role: str = "oncall", operator: str = "olga") -> Runbook:
    from console.settings import Settings
    from console.wiring import build_services

    services = build_services(Settings.isolated(DATABASE_URL=dsn, KUBECONFIG=str(config_path)).resolved())
    return Runbook(services, Actor(operator, role, f"test-{operator}"))


async def test_scale_to_zero_is_refused_without_the_typed_name(seeded_db, cluster):
    book = _book(seeded_db, cluster.config_path)
    try:
        plan = await book.plan(SCALE_DEPLOYMENT, "agis-bot", {"namespace": NS, "replicas": 0})
        assert plan.confirmation.value == "typed" and plan.preview.warnings
        outcome = await book.execute(
            SCALE_DEPLOYMENT, "agis-bot", {"namespace": NS, "replicas": 0, "confirm": "y"}
        )
        assert outcome.status == "refused" and "type the deployment name agis-bot" in outcome.message
        assert _replicas(cluster, "Deployment", "agis-bot") == 3
        # Scaling to 2 is a y/n, not typed.
        plan = await book.plan(SCALE_DEPLOYMENT, "agis-bot", {"namespace": NS, "replicas": 2})
        assert plan.confirmation.value == "y/n"
        # Beyond what its HPA allows, the preview says the HPA will undo it.
        plan = await book.plan(SCALE_DEPLOYMENT, "agis-bot", {"namespace": NS, "replicas": 20})
        assert any("HPA agis-bot keeps agis-bot between 2 and 10" in w for w in plan.preview.warnings)
    finally:
        await book.services.close()


async def test_scale_to_zero_on_screen_needs_the_name_typed(seeded_db, cluster):
    app = make_app(seeded_db, KUBECONFIG=str(cluster.config_path))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_nodes(pilot, app, "k")
        table = screen.query_one("#deployments-table", LiveTable)
        await wait_until(pilot, lambda: f"{NS}/agis-bot" in table.shown)
        table.move_cursor(row=table.get_row_index(f"{NS}/agis-bot"))
        await pilot.press("S")
        await wait_until(pilot, lambda: isinstance(app.screen, AskScreen))
        await pilot.press("ctrl+u", "0", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        modal = app.screen
        assert (
            modal.typed
            and "PATCH /apis/apps/v1/namespaces/production/deployments/agis-bot/scale"
            in text_of(modal.query_one("#calls-text"))
        )
        await pilot.press("y")  # a y is not enough for a destructive change
        await pilot.press(*"agis-bo", "enter")  # nor is a near miss
        await pilot.pause(0.2)
        assert app.screen is modal
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert _replicas(cluster, "Deployment", "agis-bot") == 3
        rows = await AuditService(app.services.postgres).page(AuditFilter(target="agis-bot"), limit=5)
        assert rows == []


async def test_each_kube_action_runs_verified_and_audited(seeded_db, cluster):
    book = _book(seeded_db, cluster.config_path)
    try:
        scaled = await book.execute(SCALE_DEPLOYMENT, "agis-bot", {"namespace": NS, "replicas": 2})
        assert scaled.ok, scaled.message
        assert "2/2 ready" in scaled.message and _replicas(cluster, "Deployment", "agis-bot") == 2
        assert len(_bot_pods(cluster)) == 2
        before = set(_bot_pods(cluster))
        restarted = await book.execute(RESTART_DEPLOYMENT, "agis-bot", {"namespace": NS})
        assert restarted.ok, restarted.message
        annotations = cluster.get("Deployment", NS, "agis-bot")["spec"]["template"]["metadata"]["annotations"]
        assert annotations["kubectl.kubernetes.io/restartedAt"] == restarted.detail["restarted_at"]
        assert not before & set(_bot_pods(cluster))  # every pod replaced
        fleet = await book.execute(SCALE_FLEET, "agis-fleet", {"namespace": NS, "replicas": 25})
        assert fleet.ok, fleet.message
        assert (
            _replicas(cluster, "Fleet", "agis-fleet") == 25 and len(cluster.objects("GameServer", NS)) == 25
        )
        audit = AuditService(book.services.postgres)
        for action, target in (("scale_deployment", "agis-bot"), ("rollout_restart", "agis-bot"),
                               ("scale_fleet", "agis-fleet")):  # fmt: skip
            rows = await audit.page(AuditFilter(target=target, action=action), limit=5)
            phases = {(r.phase, r.outcome) for r in rows}
            assert ("intent", None) in phases and ("outcome", "ok") in phases, (action, phases)
            intent = next(r for r in rows if r.phase == "intent")
            assert intent.operator == "olga" and intent.detail.get("namespace") == NS
    finally:
        await book.services.close()


async def test_support_cannot_scale_or_restart(seeded_db, cluster):
    book = _book(seeded_db, cluster.config_path, role="support", operator="sam")
    try:
        for action, target, params in ((SCALE_DEPLOYMENT, "agis-bot", {"replicas": 5}),
                                       (RESTART_DEPLOYMENT, "agis-bot", {}),
                                       (SCALE_FLEET, "agis-fleet", {"replicas": 30})):  # fmt: skip
            outcome = await book.execute(action, target, {"namespace": NS, **params})
            assert outcome.status == "refused" and "needs the oncall role" in outcome.message
        assert (
            _replicas(cluster, "Deployment", "agis-bot") == 3
            and _replicas(cluster, "Fleet", "agis-fleet") == 20
        )
    finally:
        await book.services.close()


async def test_pod_logs_show_the_last_100_lines_then_follow(seeded_db, cluster):
    from textual.widgets import Log

    from screens.nodes import PodLogScreen

    app = make_app(seeded_db, KUBECONFIG=str(cluster.config_path))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_nodes(pilot, app, "p")
        table = screen.query_one("#pods-table", LiveTable)
        await wait_until(pilot, lambda: len(table.shown) == 5)
        pod = _bot_pods(cluster)[0]
        table.move_cursor(row=table.get_row_index(f"{NS}/{pod}"))
        await pilot.press("l")
        await wait_until(pilot, lambda: isinstance(app.screen, PodLogScreen))
        log = app.screen.query_one(Log)
        await wait_until(pilot, lambda: log.line_count >= 100)
        assert log.line_count == 100
        await asyncio.to_thread(cluster.log, NS, pod, "ERROR database ping failed: the test says hello")
        await wait_until(pilot, lambda: any("the test says hello" in line for line in log.lines))
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen)


async def test_bot_health_shows_beside_its_deployment(seeded_db, cluster):
    with FakeBot() as bot:
        bot.ready = False
        app = make_app(seeded_db, KUBECONFIG=str(cluster.config_path), OPSCONSOLE_BOT_URL=bot.url)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open_nodes(pilot, app, "k")
            line = screen.query_one("#bot-health")
            await wait_until(pilot, lambda: "/ready 503" in text_of(line))
            text = text_of(line)
            assert "/health 200" in text and "v1.7.3" in text


def test_kube_json_prints_the_cluster_summary(cluster):
    env = {**os.environ, "KUBECONFIG": str(cluster.config_path), "XDG_CONFIG_HOME": "/nonexistent"}
    run = subprocess.run([sys.executable, "-m", "console", "kube", "--json"], capture_output=True, text=True,
                         env=env, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["context"] == "fake-production" and data["namespace"] == NS
    assert {n["name"] for n in data["nodes"]} == {o["metadata"]["name"] for o in cluster.objects("Node")}
    assert any(n["pressures"] == ["MemoryPressure"] for n in data["nodes"])
    bot = next(d for d in data["deployments"] if d["name"] == "agis-bot")
    assert bot["desired"] == 3 and bot["ready"] == 3
    [fleet] = data["fleets"]
    assert fleet["gameservers"] == {"Ready": 12, "Allocated": 7, "Shutdown": 1}
    assert data["fleet_autoscalers"][0]["buffer"] == "5" and data["errors"] == {}


async def test_switching_context_watches_the_other_namespace(seeded_db, cluster):
    from screens.action_modal import ChooseScreen

    app = make_app(seeded_db, KUBECONFIG=str(cluster.config_path))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_nodes(pilot, app, "p")
        table = screen.query_one("#pods-table", LiveTable)
        await wait_until(pilot, lambda: len(table.shown) == 5)
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, ChooseScreen))
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: "fake-staging" in text_of(screen.query_one("#where")))
        assert "namespace staging" in text_of(screen.query_one("#where"))
        await wait_until(pilot, lambda: len(table.shown) == 1)
        assert all(key.startswith("staging/agis-bot-") for key in table.shown)


async def test_a_hidden_nodes_screen_stops_watching_and_catches_up_when_shown(seeded_db, cluster):
    app = make_app(seeded_db, KUBECONFIG=str(cluster.config_path))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_nodes(pilot, app, "p")
        table = screen.query_one("#pods-table", LiveTable)
        await wait_until(pilot, lambda: len(table.shown) == 5)
        await pilot.press("1")  # the overview: the nodes screen is hidden
        watching = lambda: [w for w in app.workers if w.group == "kube-watch" and w.is_running]  # noqa: E731
        await wait_until(pilot, lambda: not watching())
        victim = _bot_pods(cluster)[0]
        await asyncio.to_thread(cluster.crashloop, NS, victim)
        await pilot.pause(0.3)
        assert str(table.shown[f"{NS}/{victim}"][1]) == "Running"  # nobody was watching
        await pilot.press("3")
        await wait_until(pilot, lambda: str(table.shown[f"{NS}/{victim}"][1]) == "CrashLoopBackOff")


async def test_an_unreadable_kubeconfig_is_named_and_the_rest_works(seeded_db, tmp_path):
    from services.errors import BackendFailed

    broken = tmp_path / "kubeconfig"
    broken.write_text("users:\n- name: x\n  user: {token: s3cr3t-t0ken\n")
    with pytest.raises(BackendFailed, match=f"kubeconfig {broken} is not valid YAML") as failed:
        KubeService(str(broken)).contexts()
    assert "s3cr3t" not in str(failed.value)  # the error never quotes the file
    app = make_app(seeded_db, KUBECONFIG=str(broken))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        screen = app.screen
        await wait_until(pilot, lambda: len(screen.query_one("#capacity-table", LiveTable).shown) == 8)
        await pilot.press("p")
        panel = screen.query_one("#pods-panel", Panel)
        await wait_until(pilot, lambda: panel.has_class("-failing"))
        assert f"kubeconfig {broken} is not valid YAML" in str(panel.border_subtitle)
        assert "s3cr3t" not in str(panel.border_subtitle)


async def test_another_consoles_scale_in_flight_shows_and_blocks_a_second_one(seeded_db, cluster):
    app = make_app(seeded_db, KUBECONFIG=str(cluster.config_path))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_nodes(pilot, app, "k")
        # Bob's console is scaling agis-bot right now (it holds the claim).
        claims = app.services.claims
        key = f"{NS}/agis-bot"
        taken, _ = await claims.take("deployment", key, "scale_deployment", "bob", "bobs-console", None)
        assert taken is not None
        bar = screen.query_one("ClaimsBar")
        await wait_until(pilot, lambda: f"bob is scaling deployment {key}" in text_of(bar), timeout=10)
        book = Runbook(app.services, Actor("alice", "oncall", screen.console_id))
        outcome = await book.execute(SCALE_DEPLOYMENT, "agis-bot", {"namespace": NS, "replicas": 5})
        assert outcome.status == "busy" and f"bob is scaling deployment {NS}/agis-bot" in outcome.message
        assert _replicas(cluster, "Deployment", "agis-bot") == 3
        await claims.release("deployment", f"{NS}/agis-bot", "bobs-console")
        await wait_until(pilot, lambda: "bob" not in text_of(bar), timeout=10)


async def test_a_namespace_that_is_not_there_says_so(seeded_db, cluster):
    from screens.action_modal import AskScreen as Ask

    app = make_app(seeded_db, KUBECONFIG=str(cluster.config_path))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_nodes(pilot, app, "p")
        for typed, said in (
            ("Bad NS ñ", "is not a valid name"),
            ("nosuchns", "there is no namespace nosuchns"),
        ):
            await pilot.press("n")
            await wait_until(pilot, lambda: isinstance(app.screen, Ask))
            await pilot.press("ctrl+u", *typed, "enter")
            await wait_until(pilot, lambda s=said: any(s in str(n.message) for n in app._notifications))
            assert screen.namespace == NS  # still watching what it watched
    env = {**os.environ, "KUBECONFIG": str(cluster.config_path), "XDG_CONFIG_HOME": "/nonexistent"}
    for args, code, said in (
        (["-n", "Bad NS"], 2, "is not a valid name"),
        (["-n", "nosuchns"], 1, "no namespace"),
    ):
        done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "console", "kube", *args],
                                       capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
        assert done.returncode == code and said in done.stderr, done.stderr


async def test_pod_ages_tick_between_watch_events(seeded_db, cluster, monkeypatch):
    import screens.nodes

    monkeypatch.setattr(screens.nodes, "AGE_TICK", 0.5)
    app = make_app(seeded_db, KUBECONFIG=str(cluster.config_path))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_nodes(pilot, app, "p")
        table = screen.query_one("#pods-table", LiveTable)
        await asyncio.to_thread(cluster.apply, {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "age-probe", "namespace": NS, "labels": {"app": "probe"}},
            "spec": {"containers": [{"name": "probe", "image": "busybox"}]}, "status": {"phase": "Running"},
        })  # fmt: skip
        key = f"{NS}/age-probe"
        await wait_until(pilot, lambda: key in table.shown)
        age_column = list(table.columns).index("age")
        first = str(table.shown[key][age_column])
        # No event touches the pod: only the clock moves, and the age shown moves with it.
        await wait_until(pilot, lambda: str(table.shown[key][age_column]) != first, timeout=5)
