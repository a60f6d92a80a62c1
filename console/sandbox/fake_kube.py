"""A loopback Kubernetes API server for what the console reads and changes (nodes, pods and their
logs, deployments and their scale, HPAs, Agones fleets, game servers and fleet autoscalers),
speaking the real wire format to kubernetes_asyncio: lists, watches, patches, Status errors."""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import json
import random
import re
import secrets
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from aiohttp import web

from console.sandbox.loopback import LoopbackServer

HISTORY = 2000  # events kept per kind; a watch from before them gets 410 Expired
LOG_KEEP = 5000  # lines kept per pod
SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
FLEET_LABEL = "agones.dev/fleet"


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    group: str = ""
    version: str = "v1"
    namespaced: bool = True
    scalable: bool = False
    short: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def builtin(self) -> bool:
        """Built-in types drop kind/apiVersion from list items and accept strategic merge patches."""
        return not self.group.endswith("agones.dev")

    @property
    def prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else "/api/v1"

    @property
    def resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind


NAMESPACE = Kind("Namespace", "namespaces", namespaced=False, short=("ns",))
NODE = Kind("Node", "nodes", namespaced=False, short=("no",))
POD = Kind("Pod", "pods", short=("po",))
DEPLOYMENT = Kind("Deployment", "deployments", "apps", scalable=True, short=("deploy",))
HPA = Kind("HorizontalPodAutoscaler", "horizontalpodautoscalers", "autoscaling", "v2", short=("hpa",))
FLEET = Kind("Fleet", "fleets", "agones.dev", scalable=True, short=("flt",))
GAMESERVER = Kind("GameServer", "gameservers", "agones.dev", short=("gs",))
FLEET_AUTOSCALER = Kind("FleetAutoscaler", "fleetautoscalers", "autoscaling.agones.dev", short=("fas",))
KINDS = (NAMESPACE, NODE, POD, DEPLOYMENT, HPA, FLEET, GAMESERVER, FLEET_AUTOSCALER)
_BY_NAME = {n.lower(): k for k in KINDS for n in (k.kind, k.plural, *k.short)}


def kind_of(name: str) -> Kind:
    """The Kind for "Deployment", "deployments" or "deploy"; raises KeyError for others."""
    try:
        return _BY_NAME[name.lower()]
    except KeyError:
        raise KeyError(f"fake-kube has no kind {name!r}") from None


class _Event(NamedTuple):
    rv: int
    type: str
    obj: dict
    raw: bytes  # the object as stored (item form for built-ins)
    prev: dict | None  # the object before a MODIFIED, for selector transitions


_DROP = object()  # end a stream abruptly
_END = object()  # end a stream cleanly


class _Failure(Exception):
    """An API error, answered as a Status object."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.status = _status(code, reason, message, details)

    def response(self) -> web.Response:
        return web.json_response(self.status, status=self.status["code"])


def _status(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
              "reason": reason}  # fmt: skip
    if details:
        status["details"] = details
    status["code"] = code
    return status


def _details(kd: Kind, name: str, **extra: Any) -> dict:
    details = {"name": name, "group": kd.group, "kind": kd.plural, **extra}
    return {k: v for k, v in details.items() if v != ""}


def _not_found(kd: Kind, name: str) -> _Failure:
    return _Failure(404, "NotFound", f'{kd.resource} "{name}" not found', _details(kd, name))


def _conflict(kd: Kind, name: str) -> _Failure:
    message = (f'Operation cannot be fulfilled on {kd.resource} "{name}": the object has been modified; '
               "please apply your changes to the latest version and try again")  # fmt: skip
    return _Failure(409, "Conflict", message, _details(kd, name))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return {str: "string", dict: "object", list: "array"}.get(type(value), "number")


def _check_replicas(qualified: str, group: str, kind: str, name: str, value: Any) -> int:
    """The replicas a write asks for; raises the 422 Invalid an API server answers."""
    if isinstance(value, bool) or not isinstance(value, int):
        shown = json.dumps(value)
        why = f'Invalid value: {shown}: spec.replicas in body must be of type integer: "{_json_type(value)}"'
    elif value < 0:
        why = f"Invalid value: {value}: must be greater than or equal to 0"
    else:
        return value
    cause = {"reason": "FieldValueInvalid", "message": why, "field": "spec.replicas"}
    details = {"name": name, "group": group, "kind": kind, "causes": [cause]}
    raise _Failure(422, "Invalid", f'{qualified} "{name}" is invalid: spec.replicas: {why}',
                   {k: v for k, v in details.items() if v != ""})  # fmt: skip


# ---- patches ----------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any, *, by_name: bool = False) -> Any:
    """RFC 7386; with by_name (the strategic flavour) lists of named items merge item by item."""
    if isinstance(patch, list) and by_name and isinstance(target, list) and _named(patch) and _named(target):
        merged = {item["name"]: item for item in target}
        for item in patch:
            merged[item["name"]] = merge_patch(merged.get(item["name"]), item, by_name=True)
        return list(merged.values())
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value, by_name=by_name)
    return result


def _named(items: list) -> bool:
    return all(isinstance(item, dict) and "name" in item for item in items)


class PatchError(ValueError):
    pass


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"JSON pointer {path!r} does not start with /")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _index(container: list, token: str, *, insert: bool = False) -> int:
    if insert and token == "-":
        return len(container)
    if not token.isdigit():
        raise PatchError(f"{token!r} is not an array index")
    index = int(token)
    if index > len(container) or (index == len(container) and not insert):
        raise PatchError(f"array index {index} out of bounds")
    return index


def _walk(doc: Any, tokens: list[str]) -> Any:
    for token in tokens:
        if isinstance(doc, dict):
            if token not in doc:
                raise PatchError(f"path element {token!r} not found")
            doc = doc[token]
        elif isinstance(doc, list):
            doc = doc[_index(doc, token)]
        else:
            raise PatchError(f"cannot descend into a {_json_type(doc)} at {token!r}")
    return doc


def json_patch(doc: Any, operations: list) -> Any:
    """RFC 6902 (add, remove, replace, move, copy, test) on a copy of doc; raises PatchError."""
    doc = copy.deepcopy(doc)
    for op in operations:
        if (
            not isinstance(op, dict)
            or not isinstance(op.get("op"), str)
            or not isinstance(op.get("path"), str)
        ):
            raise PatchError(f"malformed operation {op!r}")
        name, tokens = op["op"], _pointer(op["path"])
        if name in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"{name} operation at {op['path']} has no value")
        if name == "test":
            if _walk(doc, tokens) != op["value"]:
                raise PatchError(f"testing value {op['path']} failed")
        elif name == "remove":
            _remove(doc, tokens)
        elif name == "replace":
            _walk(doc, tokens)  # must exist
            doc = _add(doc, tokens, copy.deepcopy(op["value"]), replace=True)
        elif name == "add":
            doc = _add(doc, tokens, copy.deepcopy(op["value"]))
        elif name in ("move", "copy"):
            source = _pointer(op.get("from", ""))
            value = copy.deepcopy(_walk(doc, source))
            if name == "move":
                _remove(doc, source)
            doc = _add(doc, tokens, value)
        else:
            raise PatchError(f"unknown operation {name!r}")
    return doc


def _add(doc: Any, tokens: list[str], value: Any, *, replace: bool = False) -> Any:
    if not tokens:
        return value
    parent = _walk(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if replace:
            parent[_index(parent, last)] = value
        else:
            parent.insert(_index(parent, last, insert=True), value)
    else:
        raise PatchError(f"cannot add to a {_json_type(parent)}")
    return doc


def _remove(doc: Any, tokens: list[str]) -> None:
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _walk(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list):
        parent.pop(_index(parent, last))
    else:
        raise PatchError(f"path element {last!r} not found")


def _apply_patch(content_type: str, doc: dict, body: bytes, *, builtin: bool) -> dict:
    """The document after the patch a request carries; raises _Failure 400/415/422 as the API does."""
    accepted = [JSON_PATCH, MERGE, SMP] if builtin else [JSON_PATCH, MERGE]
    if content_type not in accepted:
        message = ("the body of the request was in an unknown format - accepted media types include: "
                   + ", ".join(accepted))  # fmt: skip
        raise _Failure(415, "UnsupportedMediaType", message)
    try:
        patch = json.loads(body or b"null")
    except ValueError as exc:
        raise _Failure(400, "BadRequest", f"error decoding patch: {exc}") from None
    if content_type == JSON_PATCH:
        if not isinstance(patch, list):
            raise _Failure(
                400, "BadRequest", "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
            )
        try:
            result = json_patch(doc, patch)
        except PatchError as exc:
            raise _Failure(
                422, "Invalid", f"the server rejected our request due to an error in our request: {exc}"
            ) from None
    else:
        if not isinstance(patch, dict):
            raise _Failure(
                400,
                "BadRequest",
                f"json: cannot unmarshal {_json_type(patch)} into Go value of type map[string]interface {{}}",
            )
        result = merge_patch(doc, patch, by_name=content_type == SMP)
    if not isinstance(result, dict):
        raise _Failure(422, "Invalid", "the patch does not leave an object")
    return result


# ---- selectors ---------------------------------------------------------------------------

Predicate = Callable[[dict], bool]
_LABEL_KEY = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_./]*")


def _field(obj: dict, path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _requirement(term: str, get: Callable[[dict, str], str | None], labels: bool) -> Predicate | None:
    for op in ("!=", "==", "="):
        if op in term:
            key, value = (part.strip() for part in term.split(op, 1))
            if not _LABEL_KEY.fullmatch(key):
                return None
            if op == "!=":
                return lambda o: get(o, key) != value
            return lambda o: get(o, key) == value
    negate = term.startswith("!")
    key = term[1:].strip() if negate else term
    if labels and _LABEL_KEY.fullmatch(key):
        return lambda o: (get(o, key) is None) == negate
    return None


def _selector(text: str, get: Callable[[dict, str], str | None], *, labels: bool) -> list[Predicate]:
    """k=v, k==v, k!=v and (for labels) k and !k, comma-separated; raises a 400 for anything else."""
    predicates = []
    for term in (t.strip() for t in text.split(",")):
        if term:
            predicate = _requirement(term, get, labels)
            if predicate is None:
                raise _Failure(400, "BadRequest", f"unable to parse requirement: {term!r}")
            predicates.append(predicate)
    return predicates


def _selectors(query: Any) -> list[Predicate]:
    def label(obj: dict, key: str) -> str | None:
        return (obj["metadata"].get("labels") or {}).get(key)

    predicates = _selector(query.get("labelSelector", ""), label, labels=True)
    return predicates + _selector(query.get("fieldSelector", ""), _field, labels=False)


def _labels_match(obj: dict, match: dict) -> bool:
    labels = obj["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in match.items())


# ---- object helpers ----------------------------------------------------------------------


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> datetime:
    return datetime.now(UTC)


def _ready(pod: dict | None) -> bool:
    statuses = (pod or {}).get("status", {}).get("containerStatuses") or []
    return bool(statuses) and all(s.get("ready") for s in statuses)


def _crashlooping(pod: dict) -> bool:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    return any(
        (s.get("state", {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff" for s in statuses
    )


def _state(gs: dict | None) -> str:
    return (gs or {}).get("status", {}).get("state", "")


def _template_hash(template: dict) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"  # what Kubernetes uses for generated names
    return "".join(alphabet[b % len(alphabet)] for b in digest[:10])


def _backoff(restarts: int) -> str:
    seconds = min(10 * 2 ** max(restarts - 1, 0), 300)
    return f"{seconds // 60}m{seconds % 60}s" if seconds >= 60 else f"{seconds}s"


_TRUE = ("true", "1")


class FakeKube(LoopbackServer):
    """Kubernetes for the sandbox. Handlers and the control API all change the store in the
    server's loop; the control API may be called from any thread."""

    name = "fake-kube"

    def __init__(self, token: str | None = None, *, seed: int | None = 7):
        super().__init__()
        self.token = token or secrets.token_urlsafe(24)
        self.rng = random.Random(seed)
        self.churned = 0  # MODIFIED events emitted by churn()
        self._rv = 1000
        self._objects: dict[str, dict[tuple[str, str], dict]] = {k.kind: {} for k in KINDS}
        self._raw: dict[str, dict[tuple[str, str], bytes]] = {k.kind: {} for k in KINDS}
        self._history: dict[str, deque[_Event]] = {k.kind: deque(maxlen=HISTORY) for k in KINDS}
        self._floor: dict[str, int] = {k.kind: 0 for k in KINDS}  # older resourceVersions are gone
        self._watchers: dict[str, set[asyncio.Queue]] = {k.kind: set() for k in KINDS}
        self._streams: set[asyncio.Queue] = set()  # every open watch and log follow
        self._logs: dict[tuple[str, str], list[str]] = {}
        self._followers: dict[tuple[str, str], set[asyncio.Queue]] = {}
        self._nodes: list[tuple[str, str]] | None = None  # (name, InternalIP), round-robin
        self._next_node = 0
        self._next_ip = 0
        self._backdate: timedelta | None = None  # populate() makes its world look days old
        self._tasks: dict[str, asyncio.Task] = {}
        self._port = 0

    # ---- threading -----------------------------------------------------------------------

    def _call(self, fn: Callable[..., Any], *args: Any, timeout: float = 30) -> Any:
        """Run fn in the server's loop (directly when not serving or already there)."""
        loop = self._loop
        if loop is None or not loop.is_running() or threading.current_thread() is self._thread:
            return fn(*args)

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout)

    def _await(self, coro: Any, timeout: float = 30) -> Any:
        assert self._loop is not None, "start the fake first"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> str:
        url = super().start()
        self._port = int(url.rsplit(":", 1)[1])
        return url

    def stop(self) -> None:
        if self._thread and self._loop and self._loop.is_running():
            self._call(self._quiesce)
        super().stop()

    def _quiesce(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()
        self._end_streams(_DROP)

    def _end_streams(self, how: object) -> int:
        streams = list(self._streams)
        for queue in streams:
            queue.put_nowait(how)
        return len(streams)

    # ---- control API ---------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    def apply(self, obj: dict) -> dict:
        """Add or replace an object (its kind from obj["kind"]); returns what is stored, as GET shows it."""
        kd = kind_of(obj["kind"])
        obj = copy.deepcopy(obj)

        def run() -> dict:
            stored = self._apply(kd, obj)
            return self._current(
                kd, self._key(kd, stored["metadata"].get("namespace"), stored["metadata"]["name"])
            )

        return self._call(run)

    def apply_all(self, objs: Iterable[dict]) -> None:
        """apply() for many objects in one trip to the server's loop."""
        items = [(kind_of(o["kind"]), copy.deepcopy(o)) for o in objs]
        self._call(lambda: [self._apply(kd, o) for kd, o in items])

    def delete(self, kind: str, namespace: str | None, name: str) -> dict | None:
        """Delete an object (with what a controller would do next); returns it, or None if absent."""
        kd = kind_of(kind)

        def run() -> dict | None:
            key = self._key(kd, namespace, name)
            if key not in self._objects[kd.kind]:
                return None
            return self._public(kd, self._delete(kd, key))

        return self._call(run)

    def get(self, kind: str, namespace: str | None, name: str) -> dict | None:
        """A copy of the object as GET shows it, or None."""
        kd = kind_of(kind)

        def run() -> dict | None:
            raw = self._raw[kd.kind].get(self._key(kd, namespace, name))
            return None if raw is None else json.loads(self._full(kd, raw))

        return self._call(run)

    def objects(self, kind: str, namespace: str | None = None) -> list[dict]:
        """Copies of every object of a kind (in one namespace if given), sorted by namespace/name."""
        kd = kind_of(kind)

        def run() -> list[dict]:
            raws = self._raw[kd.kind]
            keys = sorted(k for k in raws if namespace is None or k[0] == namespace)
            return [json.loads(self._full(kd, raws[k])) for k in keys]

        return self._call(run)

    def crashloop(self, namespace: str, pod_name: str) -> None:
        """The pod's containers crash: waiting CrashLoopBackOff, not ready, restartCount + 1."""
        self._call(self._crashloop, (namespace, pod_name))

    def log(self, namespace: str, pod: str, line: str) -> None:
        """Append a line to the pod's log (and to every follow of it)."""

        def run() -> None:
            if (namespace, pod) not in self._objects["Pod"]:
                raise KeyError(f"no pod {namespace}/{pod}")
            self._append_log((namespace, pod), line)

        self._call(run)

    def compact(self) -> int:
        """Forget history: a watch from any older resourceVersion gets 410. Returns the current one."""

        def run() -> int:
            for kd in KINDS:
                self._history[kd.kind].clear()
                self._floor[kd.kind] = self._rv
            return self._rv

        return self._call(run)

    def drop_watches(self) -> int:
        """Cut every open watch and log follow mid-stream; returns how many."""
        return self._call(self._end_streams, _DROP)

    def outage(self) -> None:
        """Stop listening (connections are refused) and cut every open connection."""

        async def down() -> None:
            assert self._runner is not None
            for site in list(self._runner.sites):
                await site.stop()
            self._end_streams(_DROP)
            server = self._runner.server
            for connection in server.connections if server else []:
                connection.force_close()

        self._await(down())

    def restore(self) -> None:
        """Listen again on the same port after outage()."""

        async def up() -> None:
            assert self._runner is not None
            if not self._runner.sites:
                await web.TCPSite(self._runner, "127.0.0.1", self._port, reuse_address=True).start()

        self._await(up())

    def kubeconfig(self, path: str | Path, namespace: str = "production") -> Path:
        """Write a kubeconfig for this server (token auth, plain http); returns its path. Contexts
        fake-production and fake-staging; the current one is fake-<namespace>."""
        if not self.url:
            raise RuntimeError("start the fake before writing its kubeconfig")
        namespaces = ["production", "staging"] + (
            [namespace] if namespace not in ("production", "staging") else []
        )
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [{"name": "fake", "cluster": {"server": self.url, "insecure-skip-tls-verify": True}}],
            "users": [{"name": "fake-admin", "user": {"token": self.token}}],
            "contexts": [
                {"name": f"fake-{ns}", "context": {"cluster": "fake", "user": "fake-admin", "namespace": ns}}
                for ns in namespaces
            ],
            "current-context": f"fake-{namespace}",
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path

    def churn(self, events_per_second: float) -> None:
        """Emit MODIFIED events on random pods and game servers at that rate until stop_churn()."""
        self._start_task("churn", lambda: self._churn(events_per_second))

    def stop_churn(self) -> None:
        self._stop_task("churn")

    def start_scenario(self, speed: float = 1.0) -> None:
        """The demo's story, `speed` times faster than real time: bot pods crash-loop, game
        servers get allocated, the fleet autoscaler scales up, finished ones shut down."""
        self._start_task("scenario", lambda: self._scenario(speed))

    def stop_scenario(self) -> None:
        self._stop_task("scenario")

    def _start_task(self, name: str, make: Callable[[], Any]) -> None:
        def run() -> None:
            if name not in self._tasks or self._tasks[name].done():
                self._tasks[name] = asyncio.get_running_loop().create_task(make())

        if self._loop is None or not self._loop.is_running():
            raise RuntimeError("start the fake first")
        self._call(run)

    def _stop_task(self, name: str) -> None:
        def run() -> None:
            task = self._tasks.pop(name, None)
            if task:
                task.cancel()

        self._call(run)

    # ---- store ---------------------------------------------------------------------------

    def _key(self, kd: Kind, namespace: str | None, name: str) -> tuple[str, str]:
        return ((namespace or "default") if kd.namespaced else "", name)

    def _full(self, kd: Kind, raw: bytes) -> bytes:
        """The object as GET and watch show it: built-ins stored without kind/apiVersion get them."""
        if not kd.builtin:
            return raw
        return b'{"kind":"%s","apiVersion":"%s",%s' % (kd.kind.encode(), kd.api_version.encode(), raw[1:])

    def _public(self, kd: Kind, obj: dict) -> dict:
        return json.loads(self._full(kd, json.dumps(obj).encode()))

    def _current(self, kd: Kind, key: tuple[str, str]) -> dict:
        return json.loads(self._full(kd, self._raw[kd.kind][key]))

    def _stamp(self) -> str:
        when = _now()
        if self._backdate is not None:
            when -= self._backdate + timedelta(minutes=self.rng.randint(0, 600))
        return _iso(when)

    def _uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _put(self, kd: Kind, obj: dict) -> dict:
        """Store a new version: bump the resourceVersion, record ADDED or MODIFIED. No side effects."""
        meta = obj.setdefault("metadata", {})
        if kd.namespaced:
            meta.setdefault("namespace", "default")
        else:
            meta.pop("namespace", None)
        key = (meta.get("namespace", ""), meta["name"])
        prev = self._objects[kd.kind].get(key)
        if prev is None:
            meta.setdefault("uid", self._uid())
            meta.setdefault("creationTimestamp", self._stamp())
        else:
            meta.setdefault("uid", prev["metadata"]["uid"])
            meta.setdefault("creationTimestamp", prev["metadata"]["creationTimestamp"])
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        if kd.builtin:
            obj.pop("kind", None)
            obj.pop("apiVersion", None)
        else:
            obj = {"apiVersion": kd.api_version, "kind": kd.kind, **obj}
        raw = json.dumps(obj, separators=(",", ":")).encode()
        self._objects[kd.kind][key] = obj
        self._raw[kd.kind][key] = raw
        self._record(kd, _Event(self._rv, "MODIFIED" if prev else "ADDED", obj, raw, prev))
        if kd is NODE:
            self._nodes = None
        return obj

    def _drop(self, kd: Kind, key: tuple[str, str]) -> dict:
        """Remove an object, recording DELETED. No side effects."""
        del self._objects[kd.kind][key]
        obj = json.loads(self._raw[kd.kind].pop(key))
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        raw = json.dumps(obj, separators=(",", ":")).encode()
        self._record(kd, _Event(self._rv, "DELETED", obj, raw, None))
        if kd is NODE:
            self._nodes = None
        return obj

    def _record(self, kd: Kind, event: _Event) -> None:
        history = self._history[kd.kind]
        if len(history) == history.maxlen:
            self._floor[kd.kind] = history[0].rv
        history.append(event)
        for queue in self._watchers[kd.kind]:
            queue.put_nowait(event)

    def _modify(self, kd: Kind, key: tuple[str, str], change: Callable[[dict], None]) -> dict:
        obj = json.loads(self._raw[kd.kind][key])
        change(obj)
        return self._write(kd, obj)

    def _write(self, kd: Kind, obj: dict) -> dict:
        """Store and let the controllers react (pods follow deployments, game servers fleets)."""
        key = (obj["metadata"].get("namespace", "default") if kd.namespaced else "", obj["metadata"]["name"])
        prev = self._objects[kd.kind].get(key)
        obj = self._put(kd, obj)
        ns, name = key
        if kd is DEPLOYMENT:
            self._reconcile_deployment(ns, name)
        elif kd is FLEET:
            self._reconcile_fleet(ns, name)
        elif kd is POD:
            if (
                prev is None
                or _ready(prev) != _ready(obj)
                or prev["metadata"].get("labels") != obj["metadata"].get("labels")
            ):
                self._refresh_owners(ns, obj, prev)
        elif kd is GAMESERVER:
            fleets = {(g or {}).get("metadata", {}).get("labels", {}).get(FLEET_LABEL) for g in (prev, obj)}
            if prev is None or _state(prev) != _state(obj) or len(fleets) > 1:
                for fleet in fleets - {None}:
                    self._refresh_fleet(ns, fleet)
        return obj

    def _delete(self, kd: Kind, key: tuple[str, str]) -> dict:
        obj = self._drop(kd, key)
        ns, name = key
        if kd is DEPLOYMENT:
            match = obj["spec"].get("selector", {}).get("matchLabels") or {"app": name}
            for pod_key, pod in list(self._objects["Pod"].items()):
                if pod_key[0] == ns and _labels_match(pod, match):
                    self._delete(POD, pod_key)
        elif kd is FLEET:
            for gs_key, gs in list(self._objects["GameServer"].items()):
                if gs_key[0] == ns and gs["metadata"].get("labels", {}).get(FLEET_LABEL) == name:
                    self._delete(GAMESERVER, gs_key)
        elif kd is POD:
            self._logs.pop(key, None)
            for queue in self._followers.pop(key, set()):
                queue.put_nowait(_END)
            self._refresh_owners(ns, None, obj, reconcile=True)
        elif kd is GAMESERVER:
            fleet = obj["metadata"].get("labels", {}).get(FLEET_LABEL)
            if fleet:
                self._reconcile_fleet(ns, fleet)
        return obj

    def _apply(self, kd: Kind, obj: dict) -> dict:
        meta = obj.setdefault("metadata", {})
        key = self._key(kd, meta.get("namespace"), meta["name"])
        return self._replace(kd, self._objects[kd.kind].get(key), obj)

    def _replace(self, kd: Kind, old: dict | None, new: dict) -> dict:
        """Store a client's version of an object as the update path does: identity kept,
        generation bumped when the spec changed, nothing recorded when nothing changed."""
        if kd.builtin:
            new.pop("kind", None)
            new.pop("apiVersion", None)
        else:
            new.update(apiVersion=kd.api_version, kind=kd.kind)
        meta = new.setdefault("metadata", {})
        if kd is DEPLOYMENT:
            new.setdefault("spec", {}).setdefault("replicas", 1)
        if old is None:
            if kd not in (POD, NODE, NAMESPACE):
                meta.setdefault("generation", 1)
            return self._write(kd, new)
        old_meta = old["metadata"]
        for field in ("name", "namespace", "uid", "creationTimestamp"):
            if field in old_meta:
                meta[field] = old_meta[field]
        if "generation" in old_meta:
            meta["generation"] = old_meta["generation"] + (new.get("spec") != old.get("spec"))
        if kd is DEPLOYMENT and new["spec"].get("template") != old["spec"].get("template"):
            annotations = meta.setdefault("annotations", {})
            revision = (old_meta.get("annotations") or {}).get("deployment.kubernetes.io/revision", "1")
            annotations["deployment.kubernetes.io/revision"] = str(int(revision) + 1)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if new == old:
            return old
        return self._write(kd, new)

    # ---- controllers ---------------------------------------------------------------------

    def _node_pick(self) -> tuple[str, str] | None:
        if self._nodes is None:
            self._nodes = []
            for (_, name), node in sorted(self._objects["Node"].items()):
                ips = [
                    a["address"]
                    for a in node.get("status", {}).get("addresses", [])
                    if a.get("type") == "InternalIP"
                ]
                self._nodes.append((name, ips[0] if ips else "10.132.0.2"))
        if not self._nodes:
            return None
        self._next_node += 1
        return self._nodes[self._next_node % len(self._nodes)]

    def _suffix(self, length: int = 5) -> str:
        return "".join(self.rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(length))

    def _new_pod(self, deployment: dict, pod_hash: str) -> dict:
        meta, spec = deployment["metadata"], deployment["spec"]
        ns, owner = meta["namespace"], meta["name"]
        template = spec.get("template") or {}
        template_meta = template.get("metadata") or {}
        labels = {**(template_meta.get("labels") or {"app": owner}), "pod-template-hash": pod_hash}
        node = self._node_pick()
        started = self._stamp()
        self._next_ip += 1
        node_index = self._nodes.index(node) if node and self._nodes else 0
        pod_ip = f"10.4.{node_index}.{self._next_ip % 250 + 2}"
        containers, statuses = [], []
        for c in (template.get("spec") or {}).get("containers") or [
            {"name": owner, "image": f"{owner}:latest"}
        ]:
            container = {"name": c["name"], "image": c.get("image", ""), "imagePullPolicy": "IfNotPresent",
                         "resources": copy.deepcopy(c.get("resources") or {}), "terminationMessagePath": "/dev/termination-log",
                         "terminationMessagePolicy": "File"}  # fmt: skip
            if c.get("ports"):
                container["ports"] = copy.deepcopy(c["ports"])
            containers.append(container)
            statuses.append({
                "name": c["name"], "image": container["image"], "imageID": f"{container['image']}@sha256:{self.rng.getrandbits(256):064x}",
                "containerID": f"containerd://{self.rng.getrandbits(256):064x}", "ready": True, "started": True,
                "restartCount": 0, "state": {"running": {"startedAt": started}}, "lastState": {},
            })  # fmt: skip
        pod_meta: dict[str, Any] = {
            "name": f"{owner}-{pod_hash}-{self._suffix()}", "generateName": f"{owner}-{pod_hash}-", "namespace": ns,
            "creationTimestamp": started, "labels": labels,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{owner}-{pod_hash}",
                                 "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{meta['uid']}/{pod_hash}")),
                                 "controller": True, "blockOwnerDeletion": True}],
        }  # fmt: skip
        if template_meta.get("annotations"):
            pod_meta["annotations"] = dict(template_meta["annotations"])
        pod_spec: dict[str, Any] = {"containers": containers, "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                                    "serviceAccountName": "default", "schedulerName": "default-scheduler",
                                    "terminationGracePeriodSeconds": 30}  # fmt: skip
        status: dict[str, Any] = {
            "phase": "Running", "podIP": pod_ip, "podIPs": [{"ip": pod_ip}], "startTime": started, "qosClass": "Burstable",
            "conditions": [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": started}
                           for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
            "containerStatuses": statuses,
        }  # fmt: skip
        if node:
            pod_spec["nodeName"] = node[0]
            status["hostIP"] = node[1]
        return self._put(POD, {"metadata": pod_meta, "spec": pod_spec, "status": status})

    def _deployments_of(self, ns: str, *pods: dict | None) -> list[tuple[str, str]]:
        found = []
        for (dns, name), dep in self._objects["Deployment"].items():
            match = dep["spec"].get("selector", {}).get("matchLabels") or {"app": name}
            if dns == ns and any(p is not None and _labels_match(p, match) for p in pods):
                found.append((dns, name))
        return found

    def _refresh_owners(
        self, ns: str, pod: dict | None, prev: dict | None, *, reconcile: bool = False
    ) -> None:
        for dns, name in self._deployments_of(ns, pod, prev):
            if reconcile:
                self._reconcile_deployment(dns, name)
            else:
                self._refresh_deployment(dns, name)

    def _reconcile_deployment(self, ns: str, name: str) -> None:
        """A ReplicaSet's work, done at once: pods of the current template, as many as spec.replicas."""
        dep = self._objects["Deployment"].get((ns, name))
        if dep is None:
            return
        spec = dep["spec"]
        want = spec.get("replicas", 1)
        match = spec.get("selector", {}).get("matchLabels") or {"app": name}
        pod_hash = _template_hash(spec.get("template") or {})
        pods = [(k, p) for k, p in self._objects["Pod"].items() if k[0] == ns and _labels_match(p, match)]
        current = [
            (k, p)
            for k, p in pods
            if p["metadata"].get("labels", {}).get("pod-template-hash", pod_hash) == pod_hash
        ]
        kept = {k for k, _ in current}
        for key in [k for k, _ in pods if k not in kept]:  # a rollout: each old pod gives way to a new one
            self._drop(POD, key)
            self._end_follows(key)
            if len(current) < want:
                pod = self._new_pod(dep, pod_hash)
                current.append(((ns, pod["metadata"]["name"]), pod))
        while len(current) < want:
            pod = self._new_pod(dep, pod_hash)
            current.append(((ns, pod["metadata"]["name"]), pod))
        if len(current) > want:  # like a ReplicaSet: not-ready first, then most restarts, then newest

            def rank(kp: tuple) -> tuple:
                restarts = sum(
                    s.get("restartCount", 0) for s in kp[1]["status"].get("containerStatuses") or []
                )
                return (_ready(kp[1]), -restarts, -int(kp[1]["metadata"]["resourceVersion"]))

            for key, _ in sorted(current, key=rank)[: len(current) - want]:
                self._drop(POD, key)
                self._end_follows(key)
        self._refresh_deployment(ns, name)

    def _end_follows(self, key: tuple[str, str]) -> None:
        self._logs.pop(key, None)
        for queue in self._followers.pop(key, set()):
            queue.put_nowait(_END)

    def _refresh_deployment(self, ns: str, name: str) -> None:
        dep = self._objects["Deployment"].get((ns, name))
        if dep is None:
            return
        spec = dep["spec"]
        match = spec.get("selector", {}).get("matchLabels") or {"app": name}
        pod_hash = _template_hash(spec.get("template") or {})
        pods = [p for k, p in self._objects["Pod"].items() if k[0] == ns and _labels_match(p, match)]
        ready = sum(_ready(p) for p in pods)
        updated = sum(
            p["metadata"].get("labels", {}).get("pod-template-hash", pod_hash) == pod_hash for p in pods
        )
        want = spec.get("replicas", 1)
        old = dep.get("status") or {}
        since = {c["type"]: c for c in old.get("conditions", [])}
        now = _iso(_now())

        def condition(kind: str, ok: bool, reason: str, message: str) -> dict:
            before = since.get(kind, {})
            changed = before.get("status") != ("True" if ok else "False")
            return {"type": kind, "status": "True" if ok else "False",
                    "lastUpdateTime": now if changed else before.get("lastUpdateTime", now),
                    "lastTransitionTime": now if changed else before.get("lastTransitionTime", now),
                    "reason": reason, "message": message}  # fmt: skip

        available = ready >= want - want // 4  # maxUnavailable 25%, rounded down
        status: dict[str, Any] = {"observedGeneration": dep["metadata"].get("generation", 1), "replicas": len(pods),
                                  "updatedReplicas": updated, "readyReplicas": ready, "availableReplicas": ready}  # fmt: skip
        if len(pods) > ready:
            status["unavailableReplicas"] = len(pods) - ready
        status["conditions"] = [
            condition("Available", available, "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                      "Deployment has minimum availability." if available else "Deployment does not have minimum availability."),
            condition("Progressing", True, "NewReplicaSetAvailable",
                      f'ReplicaSet "{name}-{pod_hash}" has successfully progressed.'),
        ]  # fmt: skip
        if status != old:
            self._put(DEPLOYMENT, {**json.loads(self._raw["Deployment"][(ns, name)]), "status": status})
            for key, hpa in list(self._objects["HorizontalPodAutoscaler"].items()):
                target = hpa.get("spec", {}).get("scaleTargetRef", {})
                if key[0] == ns and target.get("kind") == "Deployment" and target.get("name") == name:
                    if hpa.get("status", {}).get("currentReplicas") != len(pods):
                        fresh = json.loads(self._raw["HorizontalPodAutoscaler"][key])
                        fresh.setdefault("status", {})["currentReplicas"] = len(pods)
                        self._put(HPA, fresh)

    def _new_gameserver(self, fleet: dict, state: str = "Ready") -> dict:
        meta = fleet["metadata"]
        ns, owner = meta["namespace"], meta["name"]
        template = fleet["spec"].get("template") or {}
        gss = f"{owner}-{_template_hash(template)[:5]}"
        node = self._node_pick()
        spec = copy.deepcopy(template.get("spec") or {})
        port = self.rng.randint(7000, 7999)
        gs = {
            "metadata": {"name": f"{gss}-{self._suffix()}", "generateName": f"{gss}-", "namespace": ns, "generation": 1,
                         "labels": {**((template.get("metadata") or {}).get("labels") or {}), FLEET_LABEL: owner,
                                    "agones.dev/gameserverset": gss},
                         "ownerReferences": [{"apiVersion": "agones.dev/v1", "kind": "GameServerSet", "name": gss,
                                              "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{meta['uid']}/{gss}")),
                                              "controller": True, "blockOwnerDeletion": True}]},
            "spec": spec,
            "status": {"state": state, "ports": [{"name": p.get("name", "default"), "port": port} for p in spec.get("ports") or [{}]],
                       "address": node[1] if node else "", "addresses": [{"type": "InternalIP", "address": node[1]}] if node else [],
                       "nodeName": node[0] if node else "", "reservedUntil": None, "players": None},
        }  # fmt: skip
        return self._put(GAMESERVER, gs)

    def _fleet_gameservers(self, ns: str, name: str) -> list[tuple[tuple[str, str], dict]]:
        return [(k, g) for k, g in self._objects["GameServer"].items()
                if k[0] == ns and g["metadata"].get("labels", {}).get(FLEET_LABEL) == name]  # fmt: skip

    def _reconcile_fleet(self, ns: str, name: str) -> None:
        """The fleet's GameServerSet, done at once: as many game servers as spec.replicas, removing
        those not yet serving first and never an Allocated one."""
        fleet = self._objects["Fleet"].get((ns, name))
        if fleet is None:
            return
        want = fleet["spec"].get("replicas", 0)
        servers = self._fleet_gameservers(ns, name)
        for _ in range(want - len(servers)):
            self._new_gameserver(fleet)
        if len(servers) > want:
            order = {"Shutdown": 0, "Unhealthy": 1, "Error": 1, "Ready": 3, "Reserved": 4}
            candidates = sorted((kg for kg in servers if _state(kg[1]) != "Allocated"),
                                key=lambda kg: (order.get(_state(kg[1]), 2), -int(kg[1]["metadata"]["resourceVersion"])))  # fmt: skip
            for key, _ in candidates[: len(servers) - want]:
                self._drop(GAMESERVER, key)
        self._refresh_fleet(ns, name)

    def _refresh_fleet(self, ns: str, name: str) -> None:
        fleet = self._objects["Fleet"].get((ns, name))
        if fleet is None:
            return
        states = [_state(g) for _, g in self._fleet_gameservers(ns, name)]
        status = {"replicas": len(states), "readyReplicas": states.count("Ready"), "reservedReplicas": states.count("Reserved"),
                  "allocatedReplicas": states.count("Allocated"), "players": {"count": 0, "capacity": 0}}  # fmt: skip
        if status != fleet.get("status"):
            self._put(FLEET, {**json.loads(self._raw["Fleet"][(ns, name)]), "status": status})
        for key, fas in list(self._objects["FleetAutoscaler"].items()):
            if key[0] == ns and fas.get("spec", {}).get("fleetName") == name:
                old = fas.get("status") or {}
                new = {
                    **old,
                    "currentReplicas": len(states),
                    "desiredReplicas": old.get("desiredReplicas", fleet["spec"].get("replicas", 0)),
                }
                if new != old:
                    self._put(
                        FLEET_AUTOSCALER, {**json.loads(self._raw["FleetAutoscaler"][key]), "status": new}
                    )

    def _crashloop(self, key: tuple[str, str]) -> None:
        if key not in self._objects["Pod"]:
            raise KeyError(f"no pod {key[0]}/{key[1]}")
        now = _iso(_now())

        def change(pod: dict) -> None:
            names = []
            for cs in pod["status"].get("containerStatuses") or []:
                names.append(cs["name"])
                started = (cs.get("state", {}).get("running") or {}).get("startedAt") or now
                cs["restartCount"] = cs.get("restartCount", 0) + 1
                cs["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": started, "finishedAt": now,
                                                  "containerID": cs.get("containerID", "")}}  # fmt: skip
                message = f"back-off {_backoff(cs['restartCount'])} restarting failed container={cs['name']} pod={key[1]}_{key[0]}({pod['metadata']['uid']})"
                cs["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
                cs["ready"] = False
                cs["started"] = False
            for condition in pod["status"].get("conditions") or []:
                if condition["type"] in ("Ready", "ContainersReady") and condition["status"] != "False":
                    condition.update(status="False", reason="ContainersNotReady", lastTransitionTime=now,
                                     message=f"containers with unready status: [{' '.join(names)}]")  # fmt: skip

        self._modify(POD, key, change)
        stamp = _now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        self._append_log(
            key, f"{stamp} ERROR database ping failed: dial tcp 10.4.2.17:5432: connect: connection refused"
        )
        self._append_log(
            key, f"{stamp} FATAL giving up after 5 attempts: database unavailable, exiting with status 1"
        )

    # ---- logs ----------------------------------------------------------------------------

    def _log_lines(self, key: tuple[str, str]) -> list[str]:
        lines = self._logs.get(key)
        if lines is None:
            pod = self._objects["Pod"][key]
            app = pod["metadata"].get("labels", {}).get("app", "")
            rng = random.Random(key[1])
            when = _now() - timedelta(seconds=200 * 3)
            lines = []
            for _ in range(200):
                when += timedelta(seconds=rng.uniform(0.5, 5.5))
                lines.append(_log_line(rng, app, when))
            self._logs[key] = lines
        return lines

    def _append_log(self, key: tuple[str, str], line: str) -> None:
        lines = self._log_lines(key)
        lines.append(line)
        if len(lines) > LOG_KEEP:
            del lines[: len(lines) - LOG_KEEP]
        for queue in self._followers.get(key, ()):
            queue.put_nowait(line)

    # ---- background stories --------------------------------------------------------------

    async def _churn(self, events_per_second: float) -> None:
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
            self._churn_once()

    def _churn_once(self) -> None:
        use_pod = self.churned % 2 == 0 or not self._objects["GameServer"]
        if use_pod and self._objects["Pod"]:
            key = self.rng.choice(list(self._objects["Pod"]))
            count = self.churned

            def change(pod: dict) -> None:
                pod["metadata"].setdefault("annotations", {})["sandbox.opsconsole/churn"] = str(count)
                statuses = pod["status"].get("containerStatuses") or []
                if statuses and count % 10 == 0:
                    statuses[0]["restartCount"] = statuses[0].get("restartCount", 0) + 1

            self._modify(POD, key, change)
        elif self._objects["GameServer"]:
            key = self.rng.choice(list(self._objects["GameServer"]))
            flip = {"Ready": "Allocated", "Allocated": "Ready"}
            if _state(self._objects["GameServer"][key]) in flip:
                self._modify(
                    GAMESERVER, key, lambda gs: gs["status"].update(state=flip[gs["status"]["state"]])
                )
            else:
                self._modify(GAMESERVER, key, lambda gs: gs["metadata"].setdefault("annotations", {}).update(
                    {"sandbox.opsconsole/churn": str(self.churned)}))  # fmt: skip
        else:
            return
        self.churned += 1

    async def _scenario(self, speed: float) -> None:
        tick = 0
        shutdown_at: dict[tuple[str, str], int] = {}
        while True:
            await asyncio.sleep(1.0 / speed)
            tick += 1
            self._scenario_tick(tick, shutdown_at)

    def _scenario_tick(self, tick: int, shutdown_at: dict[tuple[str, str], int]) -> None:
        rng = self.rng
        bots = [
            (k, p)
            for k, p in self._objects["Pod"].items()
            if p["metadata"].get("labels", {}).get("app") == "agis-bot"
        ]
        now = _now()
        for key, _ in bots:
            self._append_log(key, _log_line(rng, "agis-bot", now))
        looping = [k for k, p in bots if _crashlooping(p)]
        if tick % 15 == 0 and not looping:
            healthy = [k for k, p in bots if _ready(p)]
            if healthy:
                self._crashloop(rng.choice(sorted(healthy)))
        elif tick % 10 == 0:
            for key in looping:
                self._crashloop(key)
        servers = self._objects["GameServer"]
        if tick % 2 == 0:
            ready = [k for k, g in servers.items() if _state(g) == "Ready"]
            if ready:
                self._modify(GAMESERVER, rng.choice(ready), lambda gs: gs["status"].update(state="Allocated"))
        if tick % 7 == 0:
            allocated = [k for k, g in servers.items() if _state(g) == "Allocated"]
            if allocated:
                self._modify(
                    GAMESERVER, rng.choice(allocated), lambda gs: gs["status"].update(state="Shutdown")
                )
        for key, gs in list(servers.items()):
            if _state(gs) == "Shutdown":
                shutdown_at.setdefault(key, tick)
        for key, since in list(shutdown_at.items()):
            if tick - since >= 3:
                shutdown_at.pop(key)
                if key in servers and _state(servers[key]) == "Shutdown":
                    self._delete(GAMESERVER, key)
        self._autoscale()

    def _autoscale(self) -> None:
        """Buffer policy: keep bufferSize Ready beyond the Allocated ones, within min..max (scale up only)."""
        for key, fas in list(self._objects["FleetAutoscaler"].items()):
            ns, spec = key[0], fas.get("spec", {})
            fleet = self._objects["Fleet"].get((ns, spec.get("fleetName", "")))
            buffer = spec.get("policy", {}).get("buffer") or {}
            if fleet is None:
                continue
            allocated = sum(
                _state(g) == "Allocated" for _, g in self._fleet_gameservers(ns, fleet["metadata"]["name"])
            )
            size = buffer.get("bufferSize", 5)
            if isinstance(size, str) and size.endswith("%"):
                size = max(1, allocated * int(size[:-1]) // 100)
            wanted = allocated + int(size)
            top, bottom = buffer.get("maxReplicas", 100), buffer.get("minReplicas", 0)
            desired = max(bottom, min(top, wanted))
            status = dict(fas.get("status") or {})
            if desired > fleet["spec"].get("replicas", 0):
                fresh = json.loads(self._raw["Fleet"][(ns, fleet["metadata"]["name"])])
                fresh["spec"]["replicas"] = desired
                self._replace(FLEET, fleet, fresh)
                status["lastScaleTime"] = _iso(_now())
            fleet = self._objects["Fleet"][(ns, fleet["metadata"]["name"])]
            status.update(currentReplicas=fleet.get("status", {}).get("replicas", 0), desiredReplicas=fleet["spec"]["replicas"],
                          ableToScale=True, scalingLimited=wanted > top)  # fmt: skip
            if status != self._objects["FleetAutoscaler"][key].get("status"):
                self._put(
                    FLEET_AUTOSCALER, {**json.loads(self._raw["FleetAutoscaler"][key]), "status": status}
                )

    # ---- HTTP ----------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.middlewares.append(self._guard)
        add = app.router.add_route
        add("GET", "/version", self._version)
        add("GET", "/version/", self._version)
        add("GET", "/api", self._api_versions)
        add("GET", "/apis", self._api_groups)
        for path in ("/healthz", "/livez", "/readyz"):
            add("GET", path, self._healthz)
        for group, version in sorted({(k.group, k.version) for k in KINDS}):
            prefix = f"/apis/{group}/{version}" if group else "/api/v1"
            add("GET", prefix, self._resources(group, version))
        for kd in KINDS:
            base = (
                f"{kd.prefix}/namespaces/{{namespace}}/{kd.plural}"
                if kd.namespaced
                else f"{kd.prefix}/{kd.plural}"
            )
            add("GET", base, self._bind(self._collection, kd))
            if kd.namespaced:
                add("GET", f"{kd.prefix}/{kd.plural}", self._bind(self._collection, kd))
            item = f"{base}/{{name}}"
            add("GET", item, self._bind(self._read, kd))
            add("PATCH", item, self._bind(self._patch, kd))
            add("PUT", item, self._bind(self._update, kd))
            add("DELETE", item, self._bind(self._remove, kd))
            if kd.scalable:
                add("GET", f"{item}/scale", self._bind(self._scale_read, kd))
                add("PATCH", f"{item}/scale", self._bind(self._scale_patch, kd))
                add("PUT", f"{item}/scale", self._bind(self._scale_update, kd))
        add("GET", f"{POD.prefix}/namespaces/{{namespace}}/pods/{{name}}/log", self._pod_log)

    @staticmethod
    def _bind(handler: Callable, kd: Kind) -> Callable:
        async def bound(request: web.Request) -> web.StreamResponse:
            return await handler(request, kd)

        return bound

    @web.middleware
    async def _guard(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        try:
            if (
                request.path not in ("/healthz", "/livez", "/readyz")
                and request.headers.get("Authorization") != f"Bearer {self.token}"
            ):
                raise _Failure(401, "Unauthorized", "Unauthorized")
            return await handler(request)
        except _Failure as failure:
            return failure.response()
        except web.HTTPNotFound:
            return _Failure(404, "NotFound", "the server could not find the requested resource").response()
        except web.HTTPMethodNotAllowed:
            return _Failure(
                405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
            ).response()

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"major": "1", "minor": "29", "gitVersion": "v1.29.4-fake", "gitCommit": "0" * 40,
                                  "gitTreeState": "clean", "buildDate": "2024-04-16T00:00:00Z", "goVersion": "go1.21.9",
                                  "compiler": "gc", "platform": "linux/amd64"})  # fmt: skip

    async def _api_versions(self, request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIVersions", "versions": ["v1"],
                                  "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self._port}"}]})  # fmt: skip

    async def _api_groups(self, request: web.Request) -> web.Response:
        groups = []
        for group in sorted({k.group for k in KINDS if k.group}):
            versions = [
                {"groupVersion": f"{group}/{v}", "version": v}
                for v in sorted({k.version for k in KINDS if k.group == group})
            ]
            groups.append({"name": group, "versions": versions, "preferredVersion": versions[0]})
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})

    def _resources(self, group: str, version: str) -> Callable:
        resources: list[dict] = []
        for kd in KINDS:
            if (kd.group, kd.version) != (group, version):
                continue
            verbs = ["delete", "get", "list", "patch", "update", "watch"]
            resources.append({"name": kd.plural, "singularName": kd.kind.lower(), "namespaced": kd.namespaced,
                              "kind": kd.kind, "verbs": verbs, "shortNames": list(kd.short)})  # fmt: skip
            if kd.scalable:
                resources.append({"name": f"{kd.plural}/scale", "singularName": "", "namespaced": True,
                                  "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]})  # fmt: skip
            if kd is POD:
                resources.append(
                    {
                        "name": "pods/log",
                        "singularName": "",
                        "namespaced": True,
                        "kind": "Pod",
                        "verbs": ["get"],
                    }
                )
        body = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}" if group else version,
                "resources": resources}  # fmt: skip

        async def handler(request: web.Request) -> web.Response:
            return web.json_response(body)

        return handler

    def _raw_json(self, payload: bytes, status: int = 200) -> web.Response:
        return web.Response(body=payload, status=status, content_type="application/json")

    def _lookup(self, request: web.Request, kd: Kind) -> tuple[tuple[str, str], dict]:
        name = request.match_info["name"]
        key = (request.match_info.get("namespace", ""), name)
        obj = self._objects[kd.kind].get(key)
        if obj is None:
            raise _not_found(kd, name)
        return key, obj

    async def _body(self, request: web.Request) -> Any:
        try:
            return json.loads(await request.read() or b"null")
        except ValueError as exc:
            raise _Failure(400, "BadRequest", f"the request body is not JSON: {exc}") from None

    async def _collection(self, request: web.Request, kd: Kind) -> web.StreamResponse:
        namespace = request.match_info.get("namespace", "")
        predicates = _selectors(request.query)
        if request.query.get("watch", "").lower() in _TRUE:
            return await self._watch(request, kd, namespace, predicates)
        return self._list(kd, namespace, predicates, request.query)

    def _list(self, kd: Kind, namespace: str, predicates: list[Predicate], query: Any) -> web.Response:
        objects, raws = self._objects[kd.kind], self._raw[kd.kind]
        keys = sorted(k for k in objects if not namespace or k[0] == namespace)
        meta: dict[str, Any] = {"resourceVersion": str(self._rv)}
        token = query.get("continue", "")
        if token:
            try:
                start = tuple(json.loads(base64.urlsafe_b64decode(token))["start"])
            except (ValueError, KeyError, TypeError):
                raise _Failure(400, "BadRequest", "continue key is not valid") from None
            keys = [k for k in keys if k > start]
        if predicates:
            keys = [k for k in keys if all(p(objects[k]) for p in predicates)]
        limit = query.get("limit", "")
        if limit.isdigit() and 0 < int(limit) < len(keys):
            rest = len(keys) - int(limit)
            keys = keys[: int(limit)]
            meta["continue"] = base64.urlsafe_b64encode(
                json.dumps({"start": list(keys[-1])}).encode()
            ).decode()
            meta["remainingItemCount"] = rest
        items = b",".join(raws[k] for k in keys)
        head = {"kind": f"{kd.kind}List", "apiVersion": kd.api_version, "metadata": meta}
        return self._raw_json(
            json.dumps(head, separators=(",", ":")).encode()[:-1] + b',"items":[' + items + b"]}"
        )

    def _event_line(self, kd: Kind, kind: str, raw: bytes) -> bytes:
        return b'{"type":"%s","object":%s}\n' % (kind.encode(), self._full(kd, raw))

    async def _watch(
        self, request: web.Request, kd: Kind, namespace: str, predicates: list[Predicate]
    ) -> web.StreamResponse:
        query = request.query
        since_text = query.get("resourceVersion", "")
        try:
            since = int(since_text) if since_text not in ("", "0") else None
            timeout = float(query.get("timeoutSeconds") or 0)
        except ValueError:
            raise _Failure(
                400, "BadRequest", f"invalid resourceVersion or timeoutSeconds: {since_text!r}"
            ) from None
        bookmarks = query.get("allowWatchBookmarks", "").lower() in _TRUE

        def matches(obj: dict | None) -> bool:
            if obj is None or (namespace and obj["metadata"].get("namespace") != namespace):
                return False
            return all(p(obj) for p in predicates)

        def visible(event: _Event) -> str | None:
            now = matches(event.obj)
            if event.type == "MODIFIED" and predicates:
                was = matches(event.prev)
                if now != was:
                    return "ADDED" if now else "DELETED"
            return event.type if now else None

        response = web.StreamResponse(
            headers={"Content-Type": "application/json", "Cache-Control": "no-cache, private"}
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        if since is not None and since < self._floor[kd.kind]:
            gone = _status(410, "Expired", f"too old resource version: {since} ({self._floor[kd.kind]})")
            await response.write(json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n")
            await response.write_eof()
            return response
        # The backlog and the subscription are taken with no await between them: nothing is missed.
        if since is None:
            objects, raws = self._objects[kd.kind], self._raw[kd.kind]
            backlog = [self._event_line(kd, "ADDED", raws[k]) for k in sorted(objects) if matches(objects[k])]
        else:
            backlog = [
                self._event_line(kd, t, e.raw)
                for e in self._history[kd.kind]
                if e.rv > since and (t := visible(e))
            ]
        queue: asyncio.Queue = asyncio.Queue()
        self._watchers[kd.kind].add(queue)
        self._streams.add(queue)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout > 0 else None
        try:
            for start in range(0, len(backlog), 200):
                await response.write(b"".join(backlog[start : start + 200]))
            while True:
                wait = 1.0 if deadline is None else min(1.0, deadline - loop.time())
                if wait <= 0:
                    break
                try:
                    item = await asyncio.wait_for(queue.get(), wait)
                except TimeoutError:
                    if request.transport is None or request.transport.is_closing():
                        return response  # the client went away
                    continue
                items = [item]
                while not queue.empty():
                    items.append(queue.get_nowait())
                lines = []
                for entry in items:
                    if entry is _DROP:
                        if request.transport:
                            request.transport.close()
                        return response
                    if entry is _END:
                        deadline = loop.time()
                        break
                    if kind := visible(entry):
                        lines.append(self._event_line(kd, kind, entry.raw))
                if lines:
                    await response.write(b"".join(lines))
            if bookmarks:
                mark = {
                    "kind": kd.kind,
                    "apiVersion": kd.api_version,
                    "metadata": {"resourceVersion": str(self._rv)},
                }
                await response.write(json.dumps({"type": "BOOKMARK", "object": mark}).encode() + b"\n")
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client is gone
        finally:
            self._watchers[kd.kind].discard(queue)
            self._streams.discard(queue)
        return response

    async def _read(self, request: web.Request, kd: Kind) -> web.Response:
        key, _ = self._lookup(request, kd)
        return self._raw_json(self._full(kd, self._raw[kd.kind][key]))

    def _check_version(self, kd: Kind, old: dict, new: dict) -> None:
        wanted = (new.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            raise _conflict(kd, old["metadata"]["name"])

    async def _patch(self, request: web.Request, kd: Kind) -> web.Response:
        key, old = self._lookup(request, kd)
        body = await request.read()
        current = json.loads(self._full(kd, self._raw[kd.kind][key]))
        new = _apply_patch(request.content_type, current, body, builtin=kd.builtin)
        self._check_version(kd, old, new)
        if kd.scalable:
            _check_replicas(
                kd.qualified, kd.group, kd.kind, key[1], (new.get("spec") or {}).get("replicas", 1)
            )
        self._replace(kd, old, new)
        return self._raw_json(self._full(kd, self._raw[kd.kind][key]))

    async def _update(self, request: web.Request, kd: Kind) -> web.Response:
        key, old = self._lookup(request, kd)
        new = await self._body(request)
        if not isinstance(new, dict):
            raise _Failure(400, "BadRequest", "the request body is not an object")
        name = (new.get("metadata") or {}).get("name")
        if name != key[1]:
            raise _Failure(
                400,
                "BadRequest",
                f"the name of the object ({name}) does not match the name on the URL ({key[1]})",
            )
        self._check_version(kd, old, new)
        if kd.scalable:
            _check_replicas(
                kd.qualified, kd.group, kd.kind, key[1], (new.get("spec") or {}).get("replicas", 1)
            )
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])  # status has its own subresource
        self._replace(kd, old, new)
        return self._raw_json(self._full(kd, self._raw[kd.kind][key]))

    async def _remove(self, request: web.Request, kd: Kind) -> web.Response:
        key, _ = self._lookup(request, kd)
        gone = self._delete(kd, key)
        if kd is POD:
            return self._raw_json(self._full(kd, json.dumps(gone).encode()))
        details = _details(kd, key[1], uid=gone["metadata"]["uid"])
        return web.json_response(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
        )

    def _scale(self, kd: Kind, obj: dict) -> dict:
        meta, spec = obj["metadata"], obj.get("spec") or {}
        if kd is DEPLOYMENT:
            match = spec.get("selector", {}).get("matchLabels") or {"app": meta["name"]}
        else:
            match = {FLEET_LABEL: meta["name"]}
        return {
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta},
            "spec": {"replicas": spec.get("replicas", 0)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0), "selector": ",".join(f"{k}={v}" for k, v in match.items())},
        }  # fmt: skip

    async def _scale_read(self, request: web.Request, kd: Kind) -> web.Response:
        _, obj = self._lookup(request, kd)
        return web.json_response(self._scale(kd, obj))

    def _rescale(self, kd: Kind, key: tuple[str, str], old: dict, scale: dict) -> web.Response:
        self._check_version(kd, old, scale)
        replicas = _check_replicas(
            "Scale.autoscaling", "autoscaling", "Scale", key[1], (scale.get("spec") or {}).get("replicas")
        )
        new = json.loads(self._raw[kd.kind][key])
        new["spec"]["replicas"] = replicas
        self._replace(kd, old, new)
        return web.json_response(self._scale(kd, self._objects[kd.kind][key]))

    async def _scale_patch(self, request: web.Request, kd: Kind) -> web.Response:
        key, old = self._lookup(request, kd)
        body = await request.read()
        scale = _apply_patch(request.content_type, self._scale(kd, old), body, builtin=kd.builtin)
        return self._rescale(kd, key, old, scale)

    async def _scale_update(self, request: web.Request, kd: Kind) -> web.Response:
        key, old = self._lookup(request, kd)
        scale = await self._body(request)
        if not isinstance(scale, dict):
            raise _Failure(400, "BadRequest", "the request body is not a Scale object")
        return self._rescale(kd, key, old, scale)

    async def _pod_log(self, request: web.Request) -> web.StreamResponse:
        key, pod = self._lookup(request, POD)
        query = request.query
        names = [c["name"] for c in pod["spec"].get("containers") or []]
        container = query.get("container", "")
        if container and container not in names:
            raise _Failure(400, "BadRequest", f"container {container} is not valid for pod {key[1]}")
        if not container and len(names) > 1:
            raise _Failure(
                400,
                "BadRequest",
                f"a container name must be specified for pod {key[1]}, choose one of: [{' '.join(names)}]",
            )
        lines = self._log_lines(key)
        tail = query.get("tailLines", "")
        if tail:
            if not tail.lstrip("-").isdigit():
                raise _Failure(400, "BadRequest", f"tailLines {tail!r} is not an integer")
            lines = lines[-int(tail) :] if int(tail) > 0 else []
        text = "".join(f"{line}\n" for line in lines).encode()
        if query.get("follow", "").lower() not in _TRUE:
            return web.Response(body=text, content_type="text/plain")
        queue: asyncio.Queue = asyncio.Queue()
        self._followers.setdefault(key, set()).add(queue)
        self._streams.add(queue)
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            if text:
                await response.write(text)
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), 1.0)
                except TimeoutError:
                    if request.transport is None or request.transport.is_closing():
                        return response
                    continue
                if item is _DROP:
                    if request.transport:
                        request.transport.close()
                    return response
                if item is _END:
                    break
                await response.write(f"{item}\n".encode())
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self._followers.get(key, set()).discard(queue)
            self._streams.discard(queue)
        return response


# ---- generated logs ----------------------------------------------------------------------

_LOG_TEMPLATES: dict[str, tuple[tuple[int, str, str], ...]] = {
    "agis-bot": (
        (40, "INFO", "command /servers by user {user} in guild {guild} ({ms}ms)"),
        (14, "INFO", "command /status by user {user} in guild {guild} ({ms}ms)"),
        (8, "INFO", "command /order by user {user}: order #{order} created, awaiting payment"),
        (6, "INFO", "stripe webhook invoice.paid for order #{order}"),
        (6, "INFO", "provisioner: server srv-{hex} ready on gke-agis-pool-1-{node} in {sec}s"),
        (10, "DEBUG", "discord gateway heartbeat acknowledged in {ms}ms"),
        (4, "WARN", "discord rate limit on /channels/{guild}/messages, retrying in {sec}s"),
        (3, "ERROR", "database ping failed: dial tcp 10.4.2.17:5432: i/o timeout"),
        (4, "INFO", "metrics: {servers} game servers online, {players} players"),
    ),
    "postgres": (
        (50, "LOG", "checkpoint complete: wrote {ms} buffers; write={sec}.{ms} s, sync=0.0{sec} s"),
        (30, "LOG", "connection authorized: user=agis database=agis application_name=agis-bot"),
        (10, "LOG", 'automatic vacuum of table "agis.public.orders": index scans: 1'),
        (5, "WARNING", "there is already a transaction in progress"),
    ),
    "": (
        (60, "INFO", "job {order} done in {ms}ms"),
        (25, "INFO", "GET /healthz 200 {ms}us"),
        (10, "WARN", "job {order} retried after {sec}s"),
        (5, "ERROR", "job {order} failed: context deadline exceeded"),
    ),
}


def _log_line(rng: random.Random, app: str, when: datetime) -> str:
    templates = _LOG_TEMPLATES.get(app, _LOG_TEMPLATES[""])
    _, level, text = rng.choices(templates, weights=[t[0] for t in templates])[0]
    message = text.format(user=rng.randint(10**17, 10**18), guild=rng.randint(10**17, 10**18), ms=rng.randint(2, 900),
                          order=rng.randint(4000, 9999), hex=f"{rng.getrandbits(24):06x}", node=rng.choice("abc"),
                          sec=rng.randint(1, 9), servers=rng.randint(15, 40), players=rng.randint(20, 400))  # fmt: skip
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return f"{stamp} {level:<5} {message}"


# ---- the AGIS world ----------------------------------------------------------------------


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
    since = _iso(_now() - timedelta(days=30))
    now = _iso(_now())

    def condition(kind: str, bad: bool, reason: str, message: str) -> dict:
        return {"type": kind, "status": "True" if bad else "False", "lastHeartbeatTime": now, "lastTransitionTime": since,
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
        "status": {"currentReplicas": 3, "desiredReplicas": 3, "lastScaleTime": _iso(_now() - timedelta(hours=5)),
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
                   "lastScaleTime": _iso(_now() - timedelta(hours=2))},
    }  # fmt: skip

    def build() -> None:
        for ns in ("default", "kube-system", "agones-system", namespace, "staging"):
            fake._apply(NAMESPACE, {"metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                                    "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})  # fmt: skip
        for index, letter in enumerate("abc"):
            fake._apply(NODE, _node(letter, index, memory_pressure=letter == "c"))
        fake._backdate = timedelta(days=2)
        try:
            for deployment in base:
                fake._apply(DEPLOYMENT, deployment)
            fake._apply(HPA, hpa)
            fake._apply(FLEET, _fleet("agis-fleet", namespace, fleet_size))
            servers = sorted(fake._fleet_gameservers(namespace, "agis-fleet"))
            allocated = round(fleet_size * 0.35)
            for number, (key, _) in enumerate(servers):
                last = number == len(servers) - 1 and fleet_size >= 3
                state = "Shutdown" if last else "Allocated" if number < allocated else "Ready"
                if state != "Ready":
                    fake._put(GAMESERVER, {**json.loads(fake._raw["GameServer"][key]), "status": {
                        **fake._objects["GameServer"][key]["status"], "state": state}})  # fmt: skip
            fake._apply(FLEET_AUTOSCALER, autoscaler)
            fake._refresh_fleet(namespace, "agis-fleet")
            fake._apply(
                DEPLOYMENT,
                _deployment(
                    "agis-bot", "staging", 1, "ghcr.io/agis/agis-bot:v1.8.0-rc.1", "500m", "512Mi", 8080
                ),
            )
        finally:
            fake._backdate = None

    fake._call(build, timeout=60)
