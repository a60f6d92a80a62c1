"""The cluster moving on its own: churn (a steady rate of MODIFIED events, for benchmarks) and
the demo's story (bot pods crash-loop, game servers are allocated and shut down, the fleet
autoscaler keeps its buffer)."""

from __future__ import annotations

import asyncio

from console.sandbox.fake_kube.controllers import Cluster, crashlooping, ready, state
from console.sandbox.fake_kube.kinds import FLEET, FLEET_AUTOSCALER, GAMESERVER, POD
from console.sandbox.fake_kube.logs import log_line
from console.sandbox.fake_kube.wire import iso, now


class Churn:
    """MODIFIED events on random pods and game servers, alternately."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.count = 0

    async def run(self, events_per_second: float) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / events_per_second
        due = loop.time()
        while True:
            due += period
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1:  # fell far behind (a long list answer): do not burst to catch up
                due = loop.time()
            self.once()

    def once(self) -> None:
        cluster, count = self.cluster, self.count
        pods, servers = cluster.objects["Pod"], cluster.objects["GameServer"]
        if (count % 2 == 0 or not servers) and pods:

            def change(pod: dict) -> None:
                pod["metadata"].setdefault("annotations", {})["sandbox.opsconsole/churn"] = str(count)
                statuses = pod["status"].get("containerStatuses") or []
                if statuses and count % 10 == 0:
                    statuses[0]["restartCount"] = statuses[0].get("restartCount", 0) + 1

            cluster.modify(POD, cluster.rng.choice(list(pods)), change)
        elif servers:
            key = cluster.rng.choice(list(servers))
            flip = {"Ready": "Allocated", "Allocated": "Ready"}
            if state(servers[key]) in flip:
                cluster.modify(
                    GAMESERVER, key, lambda gs: gs["status"].update(state=flip[gs["status"]["state"]])
                )
            else:
                cluster.modify(GAMESERVER, key, lambda gs: gs["metadata"].setdefault("annotations", {}).update(
                    {"sandbox.opsconsole/churn": str(count)}))  # fmt: skip
        else:
            return
        self.count += 1


async def story(cluster: Cluster, speed: float) -> None:
    """The demo's story, one tick a second divided by `speed`, until cancelled."""
    tick = 0
    shutdown_at: dict[tuple[str, str], int] = {}
    while True:
        await asyncio.sleep(1.0 / speed)
        tick += 1
        story_tick(cluster, tick, shutdown_at)


def story_tick(cluster: Cluster, tick: int, shutdown_at: dict[tuple[str, str], int]) -> None:
    rng = cluster.rng
    bots = [
        (k, p)
        for k, p in cluster.objects["Pod"].items()
        if p["metadata"].get("labels", {}).get("app") == "agis-bot"
    ]
    for key, _ in bots:
        cluster.append_log(key, log_line(rng, "agis-bot", now()))
    looping = [k for k, p in bots if crashlooping(p)]
    if tick % 15 == 0 and not looping:
        healthy = [k for k, p in bots if ready(p)]
        if healthy:
            cluster.crashloop(rng.choice(sorted(healthy)))
    elif tick % 10 == 0:
        for key in looping:
            cluster.crashloop(key)
    servers = cluster.objects["GameServer"]
    if tick % 2 == 0:
        idle = [k for k, g in servers.items() if state(g) == "Ready"]
        if idle:
            cluster.modify(GAMESERVER, rng.choice(idle), lambda gs: gs["status"].update(state="Allocated"))
    if tick % 7 == 0:
        allocated = [k for k, g in servers.items() if state(g) == "Allocated"]
        if allocated:
            cluster.modify(
                GAMESERVER, rng.choice(allocated), lambda gs: gs["status"].update(state="Shutdown")
            )
    for key, gs in list(servers.items()):
        if state(gs) == "Shutdown":
            shutdown_at.setdefault(key, tick)
    for key, since in list(shutdown_at.items()):
        if tick - since >= 3:
            shutdown_at.pop(key)
            if key in servers and state(servers[key]) == "Shutdown":
                cluster.delete(GAMESERVER, key)
    autoscale(cluster)


def autoscale(cluster: Cluster) -> None:
    """Buffer policy: keep bufferSize Ready beyond the Allocated ones, within min..max (scale up only)."""
    for key, fas in list(cluster.objects["FleetAutoscaler"].items()):
        ns, spec = key[0], fas.get("spec", {})
        fleet = cluster.objects["Fleet"].get((ns, spec.get("fleetName", "")))
        buffer = spec.get("policy", {}).get("buffer") or {}
        if fleet is None:
            continue
        name = fleet["metadata"]["name"]
        allocated = sum(state(g) == "Allocated" for _, g in cluster.fleet_gameservers(ns, name))
        size = buffer.get("bufferSize", 5)
        if isinstance(size, str) and size.endswith("%"):
            size = max(1, allocated * int(size[:-1]) // 100)
        wanted = allocated + int(size)
        top, bottom = buffer.get("maxReplicas", 100), buffer.get("minReplicas", 0)
        desired = max(bottom, min(top, wanted))
        status = dict(fas.get("status") or {})
        if desired > fleet["spec"].get("replicas", 0):
            fresh = cluster.editable(FLEET, (ns, name))
            fresh["spec"]["replicas"] = desired
            cluster.replace(FLEET, fleet, fresh)
            status["lastScaleTime"] = iso(now())
        fleet = cluster.objects["Fleet"][(ns, name)]
        status.update(currentReplicas=fleet.get("status", {}).get("replicas", 0), desiredReplicas=fleet["spec"]["replicas"],
                      ableToScale=True, scalingLimited=wanted > top)  # fmt: skip
        if status != cluster.objects["FleetAutoscaler"][key].get("status"):
            cluster.put(FLEET_AUTOSCALER, {**cluster.editable(FLEET_AUTOSCALER, key), "status": status})
