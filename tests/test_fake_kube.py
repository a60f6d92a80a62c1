"""The sandbox's Kubernetes and bot fakes, driven by the real kubernetes_asyncio client through the
kubeconfig the fake writes: what the console will see when it lists, watches, scales and reads logs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from console.sandbox.fake_bot import FakeBot
from console.sandbox.fake_kube import RESTARTED_AT, FakeKube, populate

NS = "production"


@pytest.fixture
def fake() -> Iterator[FakeKube]:
    with FakeKube(token="test-token") as fake:
        populate(fake)
        yield fake


@pytest.fixture
async def api(fake: FakeKube, tmp_path) -> AsyncIterator[client.ApiClient]:
    cfg = client.Configuration()
    await config.load_kube_config(
        config_file=str(fake.kubeconfig(tmp_path / "kubeconfig")), client_configuration=cfg
    )
    async with client.ApiClient(cfg) as api:
        yield api


async def _bot_pods(api: client.ApiClient) -> list:
    pods = await client.CoreV1Api(api).list_namespaced_pod(NS, label_selector="app=agis-bot")
    return sorted(pods.items, key=lambda p: p.metadata.name)


async def _until(check, timeout: float = 5.0) -> None:
    """Wait for a condition the fake's background story brings about."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "the fake never got there"
        await asyncio.sleep(0.02)


async def test_lists_show_the_agis_world_with_resource_versions(api, fake):
    core, apps, custom = client.CoreV1Api(api), client.AppsV1Api(api), client.CustomObjectsApi(api)
    nodes = (await core.list_node()).items
    assert [n.metadata.name for n in nodes] == [f"gke-agis-pool-1-{x}" for x in "abc"]
    assert nodes[0].status.allocatable["cpu"] == "3920m" and nodes[0].status.allocatable["memory"] == "13Gi"
    pressure = {
        n.metadata.name: c.status for n in nodes for c in n.status.conditions if c.type == "MemoryPressure"
    }
    assert pressure == {
        "gke-agis-pool-1-a": "False",
        "gke-agis-pool-1-b": "False",
        "gke-agis-pool-1-c": "True",
    }

    pods = await core.list_namespaced_pod(NS)
    assert int(pods.metadata.resource_version) == fake.resource_version
    bots = [p for p in pods.items if p.metadata.labels["app"] == "agis-bot"]
    assert len(bots) == 3 and len(pods.items) == 5
    assert {p.spec.node_name for p in bots} == {n.metadata.name for n in nodes}  # round-robin
    assert bots[0].spec.containers[0].resources.requests == {"cpu": "500m", "memory": "512Mi"}
    assert bots[0].status.phase == "Running" and bots[0].status.container_statuses[0].ready
    assert len((await core.list_namespaced_pod("staging")).items) == 1
    assert len((await core.list_pod_for_all_namespaces()).items) == 6

    deployments = {d.metadata.name: d for d in (await apps.list_namespaced_deployment(NS)).items}
    assert set(deployments) == {"agis-bot", "postgres", "minio"}
    assert deployments["agis-bot"].status.ready_replicas == 3
    hpa = (await client.AutoscalingV2Api(api).list_namespaced_horizontal_pod_autoscaler(NS)).items[0]
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas, hpa.status.current_replicas) == (2, 10, 3)
    assert hpa.status.current_metrics[0].resource.current.average_utilization == 45

    fleets = await custom.list_namespaced_custom_object("agones.dev", "v1", NS, "fleets")
    assert fleets["kind"] == "FleetList" and fleets["metadata"]["resourceVersion"] == str(
        fake.resource_version
    )
    fleet = fleets["items"][0]
    assert (fleet["apiVersion"], fleet["kind"], fleet["spec"]["replicas"]) == ("agones.dev/v1", "Fleet", 20)
    servers = await custom.list_namespaced_custom_object(
        "agones.dev", "v1", NS, "gameservers", label_selector="agones.dev/fleet=agis-fleet"
    )
    states = [gs["status"]["state"] for gs in servers["items"]]
    assert (states.count("Ready"), states.count("Allocated"), states.count("Shutdown")) == (12, 7, 1)
    fas = (
        await custom.list_namespaced_custom_object("autoscaling.agones.dev", "v1", NS, "fleetautoscalers")
    )["items"]
    assert fas[0]["spec"]["policy"]["buffer"] == {"bufferSize": 5, "minReplicas": 0, "maxReplicas": 100}
    assert (await client.VersionApi(api).get_code()).git_version == "v1.29.4-fake"


async def test_selectors_and_pages(api):
    core = client.CoreV1Api(api)
    on_a = await core.list_pod_for_all_namespaces(field_selector="spec.nodeName=gke-agis-pool-1-a")
    assert on_a.items and all(p.spec.node_name == "gke-agis-pool-1-a" for p in on_a.items)
    not_bot = await core.list_namespaced_pod(NS, label_selector="app!=agis-bot")
    assert sorted(p.metadata.labels["app"] for p in not_bot.items) == ["minio", "postgres"]
    first = await core.list_namespaced_pod(NS, limit=2)
    rest = await core.list_namespaced_pod(NS, _continue=first.metadata._continue)
    assert len(first.items) == 2 and first.metadata.remaining_item_count == 3 and len(rest.items) == 3
    with pytest.raises(ApiException) as bad:
        await core.list_namespaced_pod(NS, label_selector="app in (a b")
    assert bad.value.status == 400


async def test_a_watch_from_the_list_version_sees_a_crashloop(api, fake):
    core = client.CoreV1Api(api)
    listed = await core.list_namespaced_pod(NS, label_selector="app=agis-bot")
    first, second = sorted(p.metadata.name for p in listed.items)[:2]
    fake.crashloop(NS, first)  # before the watch: replayed from history
    seen = []
    async with watch.Watch() as w:
        stream = w.stream(core.list_namespaced_pod, NS, label_selector="app=agis-bot",
                          resource_version=listed.metadata.resource_version, timeout_seconds=5)  # fmt: skip
        async for event in stream:
            pod = event["object"]
            seen.append((event["type"], pod.metadata.name))
            if pod.metadata.name == first:
                status = pod.status.container_statuses[0]
                assert status.state.waiting.reason == "CrashLoopBackOff"
                assert (status.ready, status.restart_count) == (False, 1)
                fake.crashloop(NS, second)  # while watching: delivered live
            elif pod.metadata.name == second:
                break
    assert seen == [("MODIFIED", first), ("MODIFIED", second)]
    deployment = await client.AppsV1Api(api).read_namespaced_deployment("agis-bot", NS)
    assert deployment.status.ready_replicas == 1 and deployment.status.unavailable_replicas == 2


async def test_a_compacted_resource_version_gives_410(api, fake):
    core = client.CoreV1Api(api)
    old = (await core.list_namespaced_pod(NS)).metadata.resource_version
    fake.log(NS, (await _bot_pods(api))[0].metadata.name, "not an object change")
    fake.crashloop(NS, (await _bot_pods(api))[0].metadata.name)
    fake.compact()
    for extra in ({"timeout_seconds": 5}, {}):  # the client retries a 410 once when watching forever
        with pytest.raises(ApiException) as gone:
            async with watch.Watch() as w:
                async for _ in w.stream(core.list_namespaced_pod, NS, resource_version=old, **extra):
                    pass
        assert gone.value.status == 410 and "too old resource version" in gone.value.reason
    fresh = (await core.list_namespaced_pod(NS)).metadata.resource_version
    async with watch.Watch() as w:
        events = [
            e async for e in w.stream(core.list_namespaced_pod, NS, resource_version=fresh, timeout_seconds=1)
        ]
    assert events == []  # a version from after compact() is fine; the stream ends at its timeout


async def test_scaling_a_deployment_moves_its_pods(api):
    apps = client.AppsV1Api(api)
    scale = await apps.patch_namespaced_deployment_scale(
        "agis-bot", NS, {"spec": {"replicas": 5}}
    )  # strategic merge
    assert (scale.spec.replicas, scale.status.replicas, scale.status.selector) == (5, 5, "app=agis-bot")
    assert len(await _bot_pods(api)) == 5
    patch = [
        {"op": "test", "path": "/spec/replicas", "value": 5},
        {"op": "replace", "path": "/spec/replicas", "value": 2},
    ]
    await apps.patch_namespaced_deployment_scale("agis-bot", NS, patch)  # JSON patch
    assert len(await _bot_pods(api)) == 2
    await apps.patch_namespaced_deployment_scale(
        "agis-bot", NS, {"spec": {"replicas": 4}}, _content_type="application/merge-patch+json"
    )
    deployment = await apps.read_namespaced_deployment("agis-bot", NS)
    assert (deployment.spec.replicas, deployment.status.ready_replicas, len(await _bot_pods(api))) == (
        4,
        4,
        4,
    )
    for bad in ({"spec": {"replicas": -1}}, {"spec": {"replicas": "three"}}):
        with pytest.raises(ApiException) as invalid:
            await apps.patch_namespaced_deployment_scale("agis-bot", NS, bad)
        body = json.loads(invalid.value.body)
        assert invalid.value.status == 422 and body["reason"] == "Invalid" and body["kind"] == "Status"
    with pytest.raises(ApiException) as media:
        await apps.patch_namespaced_deployment_scale(
            "agis-bot", NS, {"spec": {"replicas": 1}}, _content_type="application/json"
        )
    assert media.value.status == 415
    assert len(await _bot_pods(api)) == 4


async def test_scaling_the_fleet_never_removes_allocated_game_servers(api, fake):
    custom = client.CustomObjectsApi(api)

    async def states() -> list[str]:
        servers = await custom.list_namespaced_custom_object("agones.dev", "v1", NS, "gameservers")
        return [gs["status"]["state"] for gs in servers["items"]]

    await custom.patch_namespaced_custom_object_scale(
        "agones.dev",
        "v1",
        NS,
        "fleets",
        "agis-fleet",
        [{"op": "replace", "path": "/spec/replicas", "value": 25}],
    )
    assert len(await states()) == 25
    scale = await custom.patch_namespaced_custom_object_scale(
        "agones.dev", "v1", NS, "fleets", "agis-fleet", {"spec": {"replicas": 10}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 10
    now = await states()
    assert len(now) == 10 and now.count("Allocated") == 7 and "Shutdown" not in now
    fleet = fake.get("Fleet", NS, "agis-fleet")
    assert fleet["status"] == {**fleet["status"], "replicas": 10, "readyReplicas": 3, "allocatedReplicas": 7}
    # The client sends application/json-patch+json for a dict body here, which a real API server refuses.
    with pytest.raises(ApiException) as refused:
        await custom.patch_namespaced_custom_object_scale(
            "agones.dev", "v1", NS, "fleets", "agis-fleet", {"spec": {"replicas": 3}}
        )
    assert refused.value.status == 400 and "jsonpatch.Patch" in json.loads(refused.value.body)["message"]


async def test_a_rollout_restart_replaces_every_pod(api):
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    before = await apps.read_namespaced_deployment("agis-bot", NS)
    old = {p.metadata.name for p in await _bot_pods(api)}
    restart = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: "2026-11-23T10:00:00Z"}}}}}
    after = await apps.patch_namespaced_deployment("agis-bot", NS, restart)
    assert after.metadata.generation == before.metadata.generation + 1
    pods = await _bot_pods(api)
    assert len(pods) == 3 and not old & {p.metadata.name for p in pods}
    assert all(p.metadata.annotations[RESTARTED_AT] == "2026-11-23T10:00:00Z" for p in pods)
    assert pods[0].spec.containers[0].resources.requests == {"cpu": "500m", "memory": "512Mi"}
    seen: list[tuple[str, str]] = []
    async with watch.Watch() as w:
        stream = w.stream(core.list_namespaced_pod, NS, label_selector="app=agis-bot",
                          resource_version=before.metadata.resource_version, timeout_seconds=5)  # fmt: skip
        async for event in stream:
            seen.append((event["type"], event["object"].metadata.name))
            if len(seen) == 6:
                break
    assert sorted(n for t, n in seen if t == "DELETED") == sorted(old)
    assert sorted(n for t, n in seen if t == "ADDED") == sorted(p.metadata.name for p in pods)


async def test_pod_logs_tail_and_follow(api, fake):
    core = client.CoreV1Api(api)
    name = (await _bot_pods(api))[0].metadata.name
    text = await core.read_namespaced_pod_log(name, NS, tail_lines=100, container="agis-bot")
    lines = text.splitlines()
    assert len(lines) == 100 and any(" command /servers by user " in line for line in lines)
    response = await core.read_namespaced_pod_log(name, NS, follow=True, tail_lines=1, _preload_content=False)
    try:
        assert (await response.content.readline()).decode().rstrip("\n") == lines[-1]
        fake.log(NS, name, "2026-11-23T10:00:00.000Z INFO  command /servers by user 42 in guild 7 (12ms)")
        line = await asyncio.wait_for(response.content.readline(), 5)
        assert line == b"2026-11-23T10:00:00.000Z INFO  command /servers by user 42 in guild 7 (12ms)\n"
        fake.delete("Pod", NS, name)  # the stream ends with the pod (the deployment makes a new one)
        assert await asyncio.wait_for(response.content.read(), 5) == b""
    finally:
        response.release()
    assert len(await _bot_pods(api)) == 3


async def test_outage_refuses_and_restore_listens_on_the_same_port(api, fake):
    core = client.CoreV1Api(api)
    url = fake.url
    await core.list_node()
    fake.outage()
    with pytest.raises(aiohttp.ClientError):
        await core.list_node()
    fake.restore()
    assert fake.url == url and len((await core.list_node()).items) == 3


async def test_drop_watches_cuts_the_stream(api, fake):
    core = client.CoreV1Api(api)
    seen = []
    with pytest.raises(aiohttp.ClientPayloadError):
        async with watch.Watch() as w:
            async for event in w.stream(core.list_namespaced_pod, NS, timeout_seconds=5):
                seen.append(event["type"])
                if len(seen) == 1:
                    assert fake.drop_watches() == 1
    assert seen == ["ADDED"] * 5  # what was sent before the cut still arrives


async def test_errors_are_status_objects(api, fake, tmp_path):
    with pytest.raises(ApiException) as missing:
        await client.AppsV1Api(api).read_namespaced_deployment("nope", NS)
    body = json.loads(missing.value.body)
    assert missing.value.status == 404
    assert (body["kind"], body["reason"], body["message"]) == (
        "Status",
        "NotFound",
        'deployments.apps "nope" not found',
    )
    assert body["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}
    ca = tmp_path / "ca.crt"
    ca.write_bytes(fake.ca_pem)
    cfg = client.Configuration(
        host=fake.url, api_key={"BearerToken": "wrong"}, api_key_prefix={"BearerToken": "Bearer"}
    )
    cfg.ssl_ca_cert = str(ca)
    async with client.ApiClient(cfg) as stranger:
        with pytest.raises(ApiException) as denied:
            await client.CoreV1Api(stranger).list_node()
    assert denied.value.status == 401 and json.loads(denied.value.body)["reason"] == "Unauthorized"


async def test_tls_like_a_real_cluster(api, fake, tmp_path):
    """The kubeconfig carries the CA (no insecure flag) and the client verifies the server with it;
    a client that does not trust that CA is refused before any request is made."""
    import base64
    import ssl

    import yaml

    kubeconfig = yaml.safe_load(fake.kubeconfig(tmp_path / "kubeconfig").read_text())
    cluster = kubeconfig["clusters"][0]["cluster"]
    assert cluster["server"] == fake.url and fake.url.startswith("https://127.0.0.1:")
    assert "insecure-skip-tls-verify" not in cluster
    assert base64.b64decode(cluster["certificate-authority-data"]) == fake.ca_pem
    assert api.configuration.verify_ssl and len((await client.CoreV1Api(api).list_node()).items) == 3
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await http.get(f"{fake.url}/version")
        headers = {"Authorization": f"Bearer {fake.token}"}
        async with http.get(f"{fake.url}/version", headers=headers, ssl=fake.ssl_context()) as answer:
            assert answer.status == 200 and (await answer.json())["gitVersion"] == "v1.29.4-fake"
        context = ssl.create_default_context(cadata=fake.ca_pem.decode())
        context.check_hostname = True
        async with http.get(f"https://localhost:{fake.url.rsplit(':', 1)[1]}/version", headers=headers,
                            ssl=context) as answer:  # fmt: skip
            assert answer.status == 200  # the certificate names localhost too


async def test_churn_and_the_demo_story_move_the_world(api, fake):
    core = client.CoreV1Api(api)
    rv = (await core.list_namespaced_pod(NS)).metadata.resource_version
    fake.churn(200)
    await _until(lambda: fake.churned >= 10)
    fake.stop_churn()
    async with watch.Watch() as w:
        events = [
            e async for e in w.stream(core.list_namespaced_pod, NS, resource_version=rv, timeout_seconds=1)
        ]
    assert events and {e["type"] for e in events} == {"MODIFIED"}

    def crashlooping() -> bool:
        return any(
            (cs.get("state", {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"
            for p in fake.objects("Pod", NS) for cs in p["status"]["containerStatuses"]
        )  # fmt: skip

    allocated = fake.get("Fleet", NS, "agis-fleet")["status"]["allocatedReplicas"]
    fake.start_scenario(speed=200)
    await _until(
        lambda: (
            crashlooping() and fake.get("Fleet", NS, "agis-fleet")["status"]["allocatedReplicas"] > allocated
        )
    )
    fake.stop_scenario()


def test_populate_makes_as_many_pods_and_game_servers_as_asked():
    with FakeKube() as fake:
        populate(fake, pods=40, gameservers=30)
        assert len(fake.objects("Pod", NS)) == 40
        states = [gs["status"]["state"] for gs in fake.objects("GameServer", NS)]
        assert len(states) == 30 and states.count("Allocated") == 10 and states.count("Shutdown") == 1


async def test_fake_bot_endpoints():
    with FakeBot() as bot:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{bot.url}/health") as health:
                assert await health.json() == {
                    "status": "ok",
                    "database": "connected",
                    "discord": "connected",
                }
            async with http.get(f"{bot.url}/ready") as ready:
                assert (ready.status, await ready.json()) == (200, {"ready": True})
            bot.ready = False
            async with http.get(f"{bot.url}/ready") as ready:
                assert (ready.status, await ready.json()) == (
                    503,
                    {"ready": False, "reason": "database not connected"},
                )
            async with http.get(f"{bot.url}/version") as version:
                assert await version.json() == {
                    "version": "v1.7.3",
                    "commit": "3f2c1ab",
                    "built": "2026-11-02T10:00:00Z",
                }
