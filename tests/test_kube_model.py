"""Reading Kubernetes JSON the way kubectl shows it: quantities, a crash-looping pod's
reason and restarts, requests per node, gameserver states per fleet, and the rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from screens.nodes_render import fleet_row, pod_row
from screens.widgets import short_age
from services import kube_model as km


def test_quantities():
    assert km.cpu_millis("500m") == 500 and km.cpu_millis("2") == 2000 and km.cpu_millis("0.25") == 250
    assert km.cpu_millis(None) == 0
    assert km.memory_bytes("512Mi") == 512 * 2**20 and km.memory_bytes("13Gi") == 13 * 2**30
    assert km.memory_bytes("1G") == 10**9 and km.memory_bytes("1048576") == 1048576
    assert km.memory_bytes("nonsense!") == 0


def _pod(name, node, *, waiting=None, restarts=0, cpu="500m", mem="512Mi", phase="Running"):
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {
        "metadata": {"name": name, "namespace": "production", "labels": {"app": "agis-bot"},
                     "creationTimestamp": "2026-11-23T10:00:00Z"},
        "spec": {"nodeName": node,
                 "containers": [{"name": "bot", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]},
        "status": {"phase": phase, "containerStatuses": [{"name": "bot", "ready": not waiting,
                                                          "restartCount": restarts, "state": state}]},
    }  # fmt: skip


def test_a_crash_looping_pod_shows_its_reason_and_restarts():
    pod = km.pod(_pod("agis-bot-1", "n1", waiting="CrashLoopBackOff", restarts=7))
    assert pod.reason == "CrashLoopBackOff" and pod.restarts == 7 and pod.ready == "0/1" and pod.problem
    row = pod_row(pod, now=datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    assert str(row[1]) == "CrashLoopBackOff" and str(row[3]) == "7" and row[4] == "2h"
    healthy = km.pod(_pod("agis-bot-2", "n1"))
    assert not healthy.problem and str(pod_row(healthy)[1]) == "Running"


def test_requests_add_up_per_node_and_finished_pods_do_not_count():
    conditions = [{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "True"}]
    node = {"metadata": {"name": "n1"},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi"}, "conditions": conditions}}  # fmt: skip
    nodes = {"n1": km.cluster_node(node)}
    pods = {f"p{i}": km.pod(_pod(f"p{i}", "n1", cpu="1", mem="2Gi")) for i in range(3)}
    pods["done"] = km.pod(_pod("done", "n1", cpu="1", mem="2Gi", phase="Succeeded"))
    [load] = km.node_loads(nodes, pods)
    assert load.node.ready and load.node.pressures == ("MemoryPressure",)
    assert load.cpu_requested_m == 3000 and load.pods == 3
    assert round(load.cpu_pct) == 75 and round(load.memory_pct) == 75


def test_fleet_counts_come_from_its_gameservers():
    def gs(name, state):
        return km.game_server({"metadata": {"name": name, "namespace": "production",
                                            "labels": {"agones.dev/fleet": "agis-fleet"}},
                               "status": {"state": state}})  # fmt: skip

    servers = {
        n: gs(n, s) for n, s in [("a", "Ready"), ("b", "Allocated"), ("c", "Allocated"), ("d", "Shutdown")]
    }
    states = km.fleet_states(servers)
    fleet = km.fleet(
        {
            "metadata": {"name": "agis-fleet", "namespace": "production"},
            "spec": {"replicas": 4},
            "status": {"readyReplicas": 9},
        }
    )  # fmt: skip (status lies; gameservers do not)
    row = fleet_row(fleet, dict(states["agis-fleet"]))
    assert [str(c) for c in row] == ["agis-fleet", "4", "1", "2", "1", "4"]


def test_short_age_reads_like_kubectl():
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert short_age(now - timedelta(seconds=42), now) == "42s"
    assert short_age(now - timedelta(minutes=12), now) == "12m"
    assert short_age(now - timedelta(days=3, hours=5), now) == "3d"
    assert short_age(None, now) == "?"
