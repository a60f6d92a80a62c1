"""The AGIS world of the ops manual, as the sandbox and the tests start it: nodes,
deployments, the bot's HPA, the Agones fleet, its game servers and its autoscaler."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from console.sandbox.fake_kube.kinds import (
    DEPLOYMENT,
    FLEET,
    FLEET_AUTOSCALER,
    GAMESERVER,
    HPA,
    NAMESPACE,
    NODE,
)
from console.sandbox.fake_kube.wire import iso, now

if TYPE_CHECKING:
    from console.sandbox.fake_kube.server import FakeKube


def _deployment(
    name: str, namespace: str, replicas: int, image: str, cpu: str, memory: str, port: int
) -> dict:
    labels = {"app": name}
    container = {"name": name, "image": image, "ports": [{"containerPort": port, "protocol": "TCP"}],
                 "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}}}  # fmt: skip
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {**labels, "app.kubernetes.io/part-of": "agis"},
                     "annotations": {"deployment.kubernetes.io/revision": "1"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "revisionHistoryLimit": 10,
                 "progressDeadlineSeconds": 600,
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}},
    }  # fmt: skip


def _node(letter: str, index: int, *, memory_pressure: bool = False) -> dict:
    name = f"gke-agis-pool-1-{letter}"
    since = iso(now() - timedelta(days=30))
    heartbeat = iso(now())

    def condition(kind: str, bad: bool, reason: str, message: str) -> dict:
        return {"type": kind, "status": "True" if bad else "False", "lastHeartbeatTime": heartbeat, "lastTransitionTime": since,
                "reason": reason, "message": message}  # fmt: skip

    conditions = [
        condition("MemoryPressure", memory_pressure, "KubeletHasInsufficientMemory" if memory_pressure else "KubeletHasSufficientMemory",
                  "kubelet has insufficient memory available" if memory_pressure else "kubelet has sufficient memory available"),
        condition("DiskPressure", False, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        condition("PIDPressure", False, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        {**condition("Ready", True, "KubeletReady", "kubelet is posting ready status"), "status": "True"},
    ]  # fmt: skip
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "creationTimestamp": since,
                     "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                                "node.kubernetes.io/instance-type": "e2-standard-4", "cloud.google.com/gke-nodepool": "pool-1",
                                "topology.kubernetes.io/region": "europe-west1",
                                "topology.kubernetes.io/zone": f"europe-west1-{letter}"}},
        "spec": {"podCIDR": f"10.4.{index}.0/24", "providerID": f"gce://agis-prod/europe-west1-{letter}/{name}"},
        "status": {
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "allocatable": {"cpu": "3920m", "memory": "13Gi", "pods": "110", "ephemeral-storage": "47Gi"},
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": f"10.132.0.{11 + index}"}, {"type": "Hostname", "address": name}],
            "nodeInfo": {"architecture": "amd64", "bootID": str(uuid.uuid5(uuid.NAMESPACE_DNS, name + "/boot")),
                         "containerRuntimeVersion": "containerd://1.7.13", "kernelVersion": "6.1.75+",
                         "kubeProxyVersion": "v1.29.4-gke.1043002", "kubeletVersion": "v1.29.4-gke.1043002",
                         "machineID": uuid.uuid5(uuid.NAMESPACE_DNS, name).hex, "operatingSystem": "linux",
                         "osImage": "Container-Optimized OS from Google",
                         "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, name + "/system"))},
        },
    }  # fmt: skip


def _fleet(name: str, namespace: str, replicas: int) -> dict:
    return {
        "apiVersion": "agones.dev/v1", "kind": "Fleet",
        "metadata": {"name": name, "namespace": namespace, "labels": {"game": "agis"}},
        "spec": {"replicas": replicas, "scheduling": "Packed",
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                 "template": {"metadata": {"labels": {"game": "agis"}},
                              "spec": {"ports": [{"name": "default", "portPolicy": "Dynamic", "containerPort": 7654, "protocol": "UDP"}],
                                       "health": {"initialDelaySeconds": 30, "periodSeconds": 60},
                                       "template": {"spec": {"containers": [{"name": "agis-gameserver", "image": "ghcr.io/agis/gameserver:2.4.1",
                                                                             "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}}]}}}}},
    }  # fmt: skip


def populate(
    fake: FakeKube, namespace: str = "production", *, pods: int | None = None, gameservers: int | None = None
) -> None:
    """Fill the fake with the AGIS world of the ops manual: three nodes (one under memory pressure),
    agis-bot (3, with its HPA), postgres and minio in `namespace`, the agis-fleet of game servers
    (12 Ready, 7 Allocated, 1 Shutdown) and its buffer autoscaler, and agis-bot (1) in staging.
    `pods` makes `namespace` hold that many pods (a `worker` deployment takes the rest);
    `gameservers` sets the fleet's size (about 60% Ready, 35% Allocated, one Shutdown)."""
    fleet_size = 20 if gameservers is None else gameservers
    base = [
        _deployment("agis-bot", namespace, 3, "ghcr.io/agis/agis-bot:v1.7.3", "500m", "512Mi", 8080),
        _deployment("postgres", namespace, 1, "postgres:16.4", "250m", "1Gi", 5432),
        _deployment("minio", namespace, 1, "minio/minio:RELEASE.2024-10-13T13-34-11Z", "100m", "256Mi", 9000),
    ]
    workers = max((pods or 0) - sum(d["spec"]["replicas"] for d in base), 0)
    if workers:
        base.append(
            _deployment("worker", namespace, workers, "ghcr.io/agis/worker:v1.7.3", "50m", "64Mi", 8081)
        )
    hpa = {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "agis-bot", "namespace": namespace},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "agis-bot"},
                 "minReplicas": 2, "maxReplicas": 10,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]},
        "status": {"currentReplicas": 3, "desiredReplicas": 3, "lastScaleTime": iso(now() - timedelta(hours=5)),
                   "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 45, "averageValue": "225m"}}}],
                   "conditions": [{"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale", "message": "recommended size matches current size"},
                                  {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound", "message": "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)"},
                                  {"type": "ScalingLimited", "status": "False", "reason": "DesiredWithinRange", "message": "the desired count is within the acceptable range"}]},
    }  # fmt: skip
    autoscaler = {
        "apiVersion": "autoscaling.agones.dev/v1", "kind": "FleetAutoscaler",
        "metadata": {"name": "agis-gameservers", "namespace": namespace},
        "spec": {"fleetName": "agis-fleet", "policy": {"type": "Buffer", "buffer": {"bufferSize": 5, "minReplicas": 0, "maxReplicas": 100}},
                 "sync": {"type": "FixedInterval", "fixedInterval": {"seconds": 30}}},
        "status": {"currentReplicas": fleet_size, "desiredReplicas": fleet_size, "ableToScale": True, "scalingLimited": False,
                   "lastScaleTime": iso(now() - timedelta(hours=2))},
    }  # fmt: skip

    def build() -> None:
        cluster = fake.cluster
        for ns in ("default", "kube-system", "agones-system", namespace, "staging"):
            cluster.apply(NAMESPACE, {"metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                                      "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})  # fmt: skip
        for index, letter in enumerate("abc"):
            cluster.apply(NODE, _node(letter, index, memory_pressure=letter == "c"))
        cluster.backdate = timedelta(days=2)
        try:
            for deployment in base:
                cluster.apply(DEPLOYMENT, deployment)
            cluster.apply(HPA, hpa)
            cluster.apply(FLEET, _fleet("agis-fleet", namespace, fleet_size))
            servers = sorted(cluster.fleet_gameservers(namespace, "agis-fleet"))
            allocated = round(fleet_size * 0.35)
            for number, (key, gs) in enumerate(servers):
                last = number == len(servers) - 1 and fleet_size >= 3
                state = "Shutdown" if last else "Allocated" if number < allocated else "Ready"
                if state != "Ready":
                    cluster.put(
                        GAMESERVER,
                        {**cluster.editable(GAMESERVER, key), "status": {**gs["status"], "state": state}},
                    )
            cluster.apply(FLEET_AUTOSCALER, autoscaler)
            cluster.refresh_fleet(namespace, "agis-fleet")
            staging_bot = _deployment(
                "agis-bot", "staging", 1, "ghcr.io/agis/agis-bot:v1.8.0-rc.1", "500m", "512Mi", 8080
            )
            cluster.apply(DEPLOYMENT, staging_bot)
        finally:
            cluster.backdate = None

    fake._call(build, timeout=60)
