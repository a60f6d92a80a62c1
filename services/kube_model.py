"""What the console shows of Kubernetes and Agones objects: frozen rows made from the API's
JSON (never the client's model objects, which cost ~1 ms each to build), and the cluster
summary computed from them (requests per node, gameserver states per fleet)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.isotime import parse_iso

PRESSURES = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")
_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}
_DECIMAL = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}


def cpu_millis(quantity: str | int | float | None) -> int:
    """CPU in millicores from a Kubernetes quantity ("500m", "2", "0.5"); 0 when absent."""
    if quantity in (None, ""):
        return 0
    text = str(quantity)
    if text.endswith("m"):
        return int(float(text[:-1]))
    if text.endswith("n"):
        return int(float(text[:-1]) / 1_000_000)
    return int(float(text) * 1000)


def memory_bytes(quantity: str | int | float | None) -> int:
    """Bytes from a Kubernetes quantity ("512Mi", "13Gi", "1G", "1048576"); 0 when absent
    or unreadable."""
    if quantity in (None, ""):
        return 0
    match = _QUANTITY.match(str(quantity))
    if not match:
        return 0
    number, unit = float(match.group(1)), match.group(2)
    scale = _BINARY.get(unit) or _DECIMAL.get(unit)
    return int(number * scale) if scale else 0


def object_key(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name')}" if ns else str(meta.get("name"))


@dataclass(frozen=True)
class ClusterNode:
    name: str
    ready: bool
    pressures: tuple[str, ...]  # conditions among PRESSURES that are True
    unschedulable: bool
    cpu_allocatable_m: int
    memory_allocatable: int
    kubelet: str = ""


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    phase: str
    reason: str  # a container's waiting/terminated reason (CrashLoopBackOff...), else ""
    ready: str  # "1/2"
    restarts: int
    created: datetime | None
    node: str
    cpu_request_m: int
    memory_request: int
    app: str  # the `app` label: which deployment it belongs to
    containers: tuple[str, ...] = ()

    @property
    def problem(self) -> bool:
        return bool(self.reason) or self.phase not in ("Running", "Succeeded")


@dataclass(frozen=True)
class Deployment:
    namespace: str
    name: str
    desired: int
    ready: int
    updated: int
    available: int
    restarted_at: str = ""


@dataclass(frozen=True)
class Hpa:
    namespace: str
    name: str
    target: str
    min_replicas: int
    max_replicas: int
    current: int
    desired: int
    cpu_now_pct: int | None
    cpu_target_pct: int | None


@dataclass(frozen=True)
class Fleet:
    namespace: str
    name: str
    replicas: int  # spec: what was asked for
    ready: int
    allocated: int
    reserved: int
    total: int  # status.replicas


@dataclass(frozen=True)
class GameServer:
    namespace: str
    name: str
    fleet: str
    state: str
    node: str
    address: str


@dataclass(frozen=True)
class FleetAutoscaler:
    namespace: str
    name: str
    fleet: str
    policy: str
    buffer: str  # "5" or "20%"
    min_replicas: int
    max_replicas: int
    current: int
    desired: int
    able_to_scale: bool


def cluster_node(obj: dict[str, Any]) -> ClusterNode:
    status = obj.get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    alloc = status.get("allocatable") or {}
    return ClusterNode(
        name=obj["metadata"]["name"],
        ready=conditions.get("Ready") == "True",
        pressures=tuple(p for p in PRESSURES if conditions.get(p) == "True"),
        unschedulable=bool((obj.get("spec") or {}).get("unschedulable")),
        cpu_allocatable_m=cpu_millis(alloc.get("cpu")),
        memory_allocatable=memory_bytes(alloc.get("memory")),
        kubelet=((status.get("nodeInfo") or {}).get("kubeletVersion") or ""),
    )


def _container_reason(status: dict[str, Any]) -> str:
    for cs in status.get("initContainerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason") not in (None, "PodInitializing"):
            return "Init:" + waiting["reason"]
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if state.get("waiting") and state["waiting"].get("reason") not in (None, "ContainerCreating"):
            return state["waiting"]["reason"]
        if state.get("terminated") and state["terminated"].get("reason") not in (None, "Completed"):
            return state["terminated"]["reason"]
    return ""


def pod(obj: dict[str, Any]) -> Pod:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    statuses = status.get("containerStatuses") or []
    containers = spec.get("containers") or []
    cpu = mem = 0
    for c in containers:
        requests = (c.get("resources") or {}).get("requests") or {}
        cpu += cpu_millis(requests.get("cpu"))
        mem += memory_bytes(requests.get("memory"))
    phase = status.get("phase") or "Pending"
    if meta.get("deletionTimestamp"):
        phase = "Terminating"
    return Pod(
        namespace=meta.get("namespace") or "",
        name=meta.get("name") or "",
        phase=phase,
        reason=_container_reason(status),
        ready=f"{sum(1 for s in statuses if s.get('ready'))}/{len(containers) or len(statuses)}",
        restarts=sum(int(s.get("restartCount") or 0) for s in statuses),
        created=parse_iso(meta.get("creationTimestamp")),
        node=spec.get("nodeName") or "",
        cpu_request_m=cpu,
        memory_request=mem,
        app=(meta.get("labels") or {}).get("app", ""),
        containers=tuple(c.get("name", "") for c in containers),
    )


def deployment(obj: dict[str, Any]) -> Deployment:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    annotations = ((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {}
    return Deployment(
        namespace=meta.get("namespace") or "",
        name=meta.get("name") or "",
        desired=int(spec.get("replicas", 1) or 0),
        ready=int(status.get("readyReplicas") or 0),
        updated=int(status.get("updatedReplicas") or 0),
        available=int(status.get("availableReplicas") or 0),
        restarted_at=annotations.get("kubectl.kubernetes.io/restartedAt", ""),
    )


def hpa(obj: dict[str, Any]) -> Hpa:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    target_pct = now_pct = None
    for metric in spec.get("metrics") or []:
        resource = metric.get("resource") or {}
        if resource.get("name") == "cpu":
            target_pct = (resource.get("target") or {}).get("averageUtilization")
    for metric in status.get("currentMetrics") or []:
        resource = metric.get("resource") or {}
        if resource.get("name") == "cpu":
            now_pct = (resource.get("current") or {}).get("averageUtilization")
    return Hpa(
        namespace=meta.get("namespace") or "",
        name=meta.get("name") or "",
        target=f"{ref.get('kind', '')}/{ref.get('name', '')}",
        min_replicas=int(spec.get("minReplicas") or 1),
        max_replicas=int(spec.get("maxReplicas") or 0),
        current=int(status.get("currentReplicas") or 0),
        desired=int(status.get("desiredReplicas") or 0),
        cpu_now_pct=now_pct,
        cpu_target_pct=target_pct,
    )


def fleet(obj: dict[str, Any]) -> Fleet:
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    return Fleet(
        namespace=meta.get("namespace") or "",
        name=meta.get("name") or "",
        replicas=int((obj.get("spec") or {}).get("replicas") or 0),
        ready=int(status.get("readyReplicas") or 0),
        allocated=int(status.get("allocatedReplicas") or 0),
        reserved=int(status.get("reservedReplicas") or 0),
        total=int(status.get("replicas") or 0),
    )


def game_server(obj: dict[str, Any]) -> GameServer:
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    return GameServer(
        namespace=meta.get("namespace") or "",
        name=meta.get("name") or "",
        fleet=(meta.get("labels") or {}).get("agones.dev/fleet", ""),
        state=status.get("state") or "Creating",
        node=status.get("nodeName") or "",
        address=status.get("address") or "",
    )


def fleet_autoscaler(obj: dict[str, Any]) -> FleetAutoscaler:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    policy = spec.get("policy") or {}
    buffer = policy.get("buffer") or {}
    return FleetAutoscaler(
        namespace=meta.get("namespace") or "",
        name=meta.get("name") or "",
        fleet=spec.get("fleetName") or "",
        policy=policy.get("type") or "",
        buffer=str(buffer.get("bufferSize", "")),
        min_replicas=int(buffer.get("minReplicas") or 0),
        max_replicas=int(buffer.get("maxReplicas") or 0),
        current=int(status.get("currentReplicas") or 0),
        desired=int(status.get("desiredReplicas") or 0),
        able_to_scale=bool(status.get("ableToScale", True)),
    )


@dataclass(frozen=True)
class NodeLoad:
    """A cluster node with what the pods scheduled on it request."""

    node: ClusterNode
    cpu_requested_m: int
    memory_requested: int
    pods: int

    @property
    def cpu_pct(self) -> float:
        alloc = self.node.cpu_allocatable_m
        return 100.0 * self.cpu_requested_m / alloc if alloc else 0

    @property
    def memory_pct(self) -> float:
        alloc = self.node.memory_allocatable
        return 100.0 * self.memory_requested / alloc if alloc else 0


def node_loads(nodes: dict[str, ClusterNode], pods: dict[str, Pod]) -> list[NodeLoad]:
    """Requested CPU and memory per node, from the live pods placed on it."""
    cpu: Counter[str] = Counter()
    mem: Counter[str] = Counter()
    count: Counter[str] = Counter()
    for p in pods.values():
        if p.node and p.phase not in ("Succeeded", "Failed"):
            cpu[p.node] += p.cpu_request_m
            mem[p.node] += p.memory_request
            count[p.node] += 1
    ordered = sorted(nodes.values(), key=lambda n: n.name)
    return [NodeLoad(n, cpu[n.name], mem[n.name], count[n.name]) for n in ordered]


def fleet_states(servers: dict[str, GameServer]) -> dict[str, Counter[str]]:
    """fleet name -> gameserver count per state (Ready, Allocated, Shutdown, ...)."""
    states: dict[str, Counter[str]] = {}
    for gs in servers.values():
        states.setdefault(gs.fleet, Counter())[gs.state] += 1
    return states


@dataclass(frozen=True)
class KubeSummary:
    """The cluster at a glance, as `opsconsole kube --json` prints it."""

    context: str
    namespace: str
    nodes: list[NodeLoad]
    pods: list[Pod]
    deployments: list[Deployment]
    hpas: list[Hpa]
    fleets: list[Fleet]
    gameserver_states: dict[str, dict[str, int]]
    autoscalers: list[FleetAutoscaler]
    errors: dict[str, str] = field(default_factory=dict)  # kind -> why it could not be read


def summary_json(s: KubeSummary) -> dict[str, Any]:
    """What `opsconsole kube --json` prints (dates as ISO strings)."""
    from dataclasses import asdict

    def pod_json(p: Pod) -> dict[str, Any]:
        data = asdict(p)
        data["created"] = p.created.isoformat() if p.created else None
        data["containers"] = list(p.containers)
        return data

    def node_json(load: NodeLoad) -> dict[str, Any]:
        data = asdict(load.node)
        data.update(
            pressures=list(load.node.pressures), cpu_requested_m=load.cpu_requested_m,
            memory_requested=load.memory_requested, pods=load.pods, cpu_pct=round(load.cpu_pct, 1),
            memory_pct=round(load.memory_pct, 1),
        )  # fmt: skip
        return data

    return {
        "context": s.context,
        "namespace": s.namespace,
        "nodes": [node_json(load) for load in s.nodes],
        "pods": [pod_json(p) for p in s.pods],
        "deployments": [asdict(d) for d in s.deployments],
        "hpas": [asdict(h) for h in s.hpas],
        "fleets": [{**asdict(f), "gameservers": s.gameserver_states.get(f.name, {})} for f in s.fleets],
        "fleet_autoscalers": [asdict(a) for a in s.autoscalers],
        "errors": s.errors,
    }
