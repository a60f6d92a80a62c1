"""The Table form of a list, a get or a watch event (`Accept: application/json;as=Table;
g=meta.k8s.io;v=v1`), which kubectl asks for and prints: for each kind the columns a real
API server sends (its printers for built-ins, the Agones CRDs' additionalPrinterColumns)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from console.sandbox.fake_kube.kinds import Kind
from console.sandbox.fake_kube.wire import now

Cell = Callable[[dict], Any]


def wanted(request: web.Request) -> bool:
    """Whether the client asked for a Table (it lists the Table media type first)."""
    first = request.headers.get("Accept", "").split(",")[0]
    return "as=Table" in first and "g=meta.k8s.io" in first


def human_duration(seconds: float) -> str:
    """Kubernetes' HumanDuration: 45s, 3m20s, 2h5m, 2d9h, 300d, 3y20d."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def age(obj: dict) -> str:
    return _since(obj["metadata"].get("creationTimestamp"))


def _since(stamp: str | None) -> str:
    if not stamp:
        return "<unknown>"
    created = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=now().tzinfo)
    return human_duration((now() - created).total_seconds())


def _get(obj: Any, *path: Any, default: Any = None) -> Any:
    for part in path:
        if isinstance(obj, dict):
            obj = obj.get(part)
        elif isinstance(obj, list) and isinstance(part, int) and len(obj) > part:
            obj = obj[part]
        else:
            return default
    return default if obj is None else obj


# ---- built-in printers -------------------------------------------------------------------


def _pod_status(pod: dict) -> str:
    reason = _get(pod, "status", "reason") or _get(pod, "status", "phase", default="Unknown")
    for cs in _get(pod, "status", "containerStatuses", default=[]):
        waiting = _get(cs, "state", "waiting", "reason")
        terminated = _get(cs, "state", "terminated", "reason")
        if waiting:
            reason = waiting
        elif terminated:
            reason = terminated
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return reason


def _pod_ready(pod: dict) -> str:
    statuses = _get(pod, "status", "containerStatuses", default=[])
    total = len(_get(pod, "spec", "containers", default=[]))
    return f"{sum(bool(cs.get('ready')) for cs in statuses)}/{total}"


def _node_status(node: dict) -> str:
    ready = [c for c in _get(node, "status", "conditions", default=[]) if c.get("type") == "Ready"]
    status = "Ready" if ready and ready[0].get("status") == "True" else "NotReady" if ready else "Unknown"
    return status + (",SchedulingDisabled" if _get(node, "spec", "unschedulable") else "")


def _node_roles(node: dict) -> str:
    prefix = "node-role.kubernetes.io/"
    roles = sorted(k[len(prefix) :] for k in node["metadata"].get("labels") or {} if k.startswith(prefix))
    return ",".join(roles) or "<none>"


def _address(node: dict, kind: str) -> str:
    found = [a["address"] for a in _get(node, "status", "addresses", default=[]) if a.get("type") == kind]
    return found[0] if found else "<none>"


def _containers(obj: dict, field: str) -> str:
    return ",".join(c.get(field, "") for c in _get(obj, "spec", "template", "spec", "containers", default=[]))


def _selector(obj: dict) -> str:
    match = _get(obj, "spec", "selector", "matchLabels", default={})
    return ",".join(f"{k}={v}" for k, v in match.items()) or "<none>"


def _hpa_targets(hpa: dict) -> str:
    current = _get(hpa, "status", "currentMetrics", default=[])
    shown = []
    for index, metric in enumerate(_get(hpa, "spec", "metrics", default=[])):
        target = _get(metric, "resource", "target", default={})
        now_value = _get(current, index, "resource", "current", "averageUtilization")
        if target.get("type") == "Utilization":
            have = "<unknown>" if now_value is None else f"{now_value}%"
            shown.append(f"{have}/{target.get('averageUtilization')}%")
        else:
            have = _get(current, index, "resource", "current", "averageValue", default="<unknown>")
            shown.append(f"{have}/{target.get('averageValue', '<unknown>')}")
    return ", ".join(shown) or "<none>"


def _column(name: str, kind: str = "string", priority: int = 0, fmt: str = "") -> dict:
    return {"name": name, "type": kind, "format": fmt, "description": "", "priority": priority}


_NAME = ("Name", "string", 0, "name", lambda o: o["metadata"]["name"])
_AGE = ("Age", "string", 0, "", age)

# Per kind: (column, type, priority, format, cell).
COLUMNS: dict[str, tuple[tuple[str, str, int, str, Cell], ...]] = {
    "Pod": (_NAME,
            ("Ready", "string", 0, "", _pod_ready),
            ("Status", "string", 0, "", _pod_status),
            ("Restarts", "integer", 0, "", lambda p: sum(cs.get("restartCount", 0) for cs in _get(p, "status", "containerStatuses", default=[]))),
            _AGE,
            ("IP", "string", 1, "", lambda p: _get(p, "status", "podIP", default="<none>")),
            ("Node", "string", 1, "", lambda p: _get(p, "spec", "nodeName", default="<none>")),
            ("Nominated Node", "string", 1, "", lambda p: "<none>"),
            ("Readiness Gates", "string", 1, "", lambda p: "<none>")),
    "Deployment": (_NAME,
                   ("Ready", "string", 0, "", lambda d: f"{_get(d, 'status', 'readyReplicas', default=0)}/{_get(d, 'spec', 'replicas', default=0)}"),
                   ("Up-to-date", "integer", 0, "", lambda d: _get(d, "status", "updatedReplicas", default=0)),
                   ("Available", "integer", 0, "", lambda d: _get(d, "status", "availableReplicas", default=0)),
                   _AGE,
                   ("Containers", "string", 1, "", lambda d: _containers(d, "name")),
                   ("Images", "string", 1, "", lambda d: _containers(d, "image")),
                   ("Selector", "string", 1, "", _selector)),
    "ReplicaSet": (_NAME,
                   ("Desired", "integer", 0, "", lambda r: _get(r, "spec", "replicas", default=0)),
                   ("Current", "integer", 0, "", lambda r: _get(r, "status", "replicas", default=0)),
                   ("Ready", "integer", 0, "", lambda r: _get(r, "status", "readyReplicas", default=0)),
                   _AGE,
                   ("Containers", "string", 1, "", lambda r: _containers(r, "name")),
                   ("Images", "string", 1, "", lambda r: _containers(r, "image")),
                   ("Selector", "string", 1, "", _selector)),
    "Node": (_NAME,
             ("Status", "string", 0, "", _node_status),
             ("Roles", "string", 0, "", _node_roles),
             _AGE,
             ("Version", "string", 0, "", lambda n: _get(n, "status", "nodeInfo", "kubeletVersion", default="")),
             ("Internal-IP", "string", 1, "", lambda n: _address(n, "InternalIP")),
             ("External-IP", "string", 1, "", lambda n: _address(n, "ExternalIP")),
             ("OS-Image", "string", 1, "", lambda n: _get(n, "status", "nodeInfo", "osImage", default="")),
             ("Kernel-Version", "string", 1, "", lambda n: _get(n, "status", "nodeInfo", "kernelVersion", default="")),
             ("Container-Runtime", "string", 1, "", lambda n: _get(n, "status", "nodeInfo", "containerRuntimeVersion", default=""))),
    "HorizontalPodAutoscaler": (_NAME,
                                ("Reference", "string", 0, "", lambda h: f"{_get(h, 'spec', 'scaleTargetRef', 'kind')}/{_get(h, 'spec', 'scaleTargetRef', 'name')}"),
                                ("Targets", "string", 0, "", _hpa_targets),
                                ("MinPods", "string", 0, "", lambda h: _get(h, "spec", "minReplicas", default="<unset>")),
                                ("MaxPods", "integer", 0, "", lambda h: _get(h, "spec", "maxReplicas", default=0)),
                                ("Replicas", "integer", 0, "", lambda h: _get(h, "status", "currentReplicas", default=0)),
                                _AGE),
    "Event": (("Last Seen", "string", 0, "", lambda e: _since(e.get("lastTimestamp"))),
              ("Type", "string", 0, "", lambda e: e.get("type", "")),
              ("Reason", "string", 0, "", lambda e: e.get("reason", "")),
              ("Object", "string", 0, "", lambda e: f"{_get(e, 'involvedObject', 'kind', default='').lower()}/{_get(e, 'involvedObject', 'name')}"),
              ("Message", "string", 0, "", lambda e: e.get("message", ""))),
    "Namespace": (_NAME, ("Status", "string", 0, "", lambda n: _get(n, "status", "phase", default="")), _AGE),
    # The Agones CRDs' additionalPrinterColumns.
    "Fleet": (_NAME,
              ("Scheduling", "string", 0, "", lambda f: _get(f, "spec", "scheduling", default="")),
              ("Desired", "integer", 0, "", lambda f: _get(f, "spec", "replicas")),
              ("Current", "integer", 0, "", lambda f: _get(f, "status", "replicas")),
              ("Allocated", "integer", 0, "", lambda f: _get(f, "status", "allocatedReplicas")),
              ("Ready", "integer", 0, "", lambda f: _get(f, "status", "readyReplicas")),
              _AGE),
    "GameServer": (_NAME,
                   ("State", "string", 0, "", lambda g: _get(g, "status", "state")),
                   ("Address", "string", 0, "", lambda g: _get(g, "status", "address")),
                   ("Port", "string", 0, "", lambda g: _get(g, "status", "ports", 0, "port")),
                   ("Node", "string", 0, "", lambda g: _get(g, "status", "nodeName")),
                   _AGE),
    "FleetAutoscaler": (_NAME,
                        ("Fleet", "string", 0, "", lambda a: _get(a, "spec", "fleetName")),
                        ("Current Replicas", "integer", 0, "", lambda a: _get(a, "status", "currentReplicas")),
                        ("Desired Replicas", "integer", 0, "", lambda a: _get(a, "status", "desiredReplicas")),
                        _AGE),
}  # fmt: skip


def _row_object(obj: dict, include: str) -> dict | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def table(kd: Kind, objects: list[dict], meta: dict, request: web.Request) -> dict:
    """The Table of `objects` (full objects as GET shows them), with list metadata `meta`."""
    columns = COLUMNS.get(kd.kind, (_NAME, _AGE))
    include = request.query.get("includeObject", "Metadata")
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": [cell(obj) for *_, cell in columns]}
        shown = _row_object(obj, include)
        if shown is not None:
            row["object"] = shown
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
            "columnDefinitions": [_column(name, kind, priority, fmt) for name, kind, priority, fmt, _ in columns],
            "rows": rows}  # fmt: skip
