"""The fake cluster's objects as an API server keeps them: each stored once as JSON, a
resourceVersion per write, a bounded history per kind for watches (older versions give 410),
and the open watches to tell. No controller logic: see controllers.py."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import deque
from datetime import timedelta
from typing import NamedTuple

from console.sandbox.fake_kube.kinds import KINDS, NODE, Kind
from console.sandbox.fake_kube.wire import iso, now

HISTORY = 2000  # events kept per kind; a watch from before them gets 410 Expired

Key = tuple[str, str]  # (namespace or "", name)


class Event(NamedTuple):
    rv: int
    type: str
    obj: dict
    raw: bytes  # the object as stored (item form for built-ins)
    prev: dict | None  # the object before a MODIFIED, for selector transitions


DROP = object()  # end a stream abruptly
END = object()  # end a stream cleanly


class Store:
    """Objects per kind, keyed by (namespace, name). Lives in the server's event loop."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.rv = 1000
        self.objects: dict[str, dict[Key, dict]] = {k.kind: {} for k in KINDS}
        self.raw: dict[str, dict[Key, bytes]] = {k.kind: {} for k in KINDS}
        self.history: dict[str, deque[Event]] = {k.kind: deque(maxlen=HISTORY) for k in KINDS}
        self.floor: dict[str, int] = {k.kind: 0 for k in KINDS}  # older resourceVersions are gone
        self.watchers: dict[str, set[asyncio.Queue]] = {k.kind: set() for k in KINDS}
        self.streams: set[asyncio.Queue] = set()  # every open watch and log follow
        self.backdate: timedelta | None = None  # populate() makes its world look days old
        self.nodes_changed = True

    def key(self, kd: Kind, namespace: str | None, name: str) -> Key:
        return ((namespace or "default") if kd.namespaced else "", name)

    def full(self, kd: Kind, raw: bytes) -> bytes:
        """The object as GET and watch show it: built-ins stored without kind/apiVersion get them."""
        if not kd.builtin:
            return raw
        return b'{"kind":"%s","apiVersion":"%s",%s' % (kd.kind.encode(), kd.api_version.encode(), raw[1:])

    def public(self, kd: Kind, obj: dict) -> dict:
        return json.loads(self.full(kd, json.dumps(obj).encode()))

    def current(self, kd: Kind, key: Key) -> dict:
        """A copy of the stored object as GET shows it; raises KeyError."""
        return json.loads(self.full(kd, self.raw[kd.kind][key]))

    def editable(self, kd: Kind, key: Key) -> dict:
        """A copy of the stored object to change and write back."""
        return json.loads(self.raw[kd.kind][key])

    def stamp(self) -> str:
        when = now()
        if self.backdate is not None:
            when -= self.backdate + timedelta(minutes=self.rng.randint(0, 600))
        return iso(when)

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def put(self, kd: Kind, obj: dict) -> dict:
        """Store a new version: bump the resourceVersion, record ADDED or MODIFIED. No side effects."""
        meta = obj.setdefault("metadata", {})
        if kd.namespaced:
            meta.setdefault("namespace", "default")
        else:
            meta.pop("namespace", None)
        key = (meta.get("namespace", ""), meta["name"])
        prev = self.objects[kd.kind].get(key)
        if prev is None:
            meta.setdefault("uid", self.uid())
            meta.setdefault("creationTimestamp", self.stamp())
        else:
            meta.setdefault("uid", prev["metadata"]["uid"])
            meta.setdefault("creationTimestamp", prev["metadata"]["creationTimestamp"])
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        if kd.builtin:
            obj.pop("kind", None)
            obj.pop("apiVersion", None)
        else:
            obj = {"apiVersion": kd.api_version, "kind": kd.kind, **obj}
        raw = json.dumps(obj, separators=(",", ":")).encode()
        self.objects[kd.kind][key] = obj
        self.raw[kd.kind][key] = raw
        self._record(kd, Event(self.rv, "MODIFIED" if prev else "ADDED", obj, raw, prev))
        self.nodes_changed |= kd is NODE
        return obj

    def drop(self, kd: Kind, key: Key) -> dict:
        """Remove an object, recording DELETED. No side effects."""
        del self.objects[kd.kind][key]
        obj = json.loads(self.raw[kd.kind].pop(key))
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        raw = json.dumps(obj, separators=(",", ":")).encode()
        self._record(kd, Event(self.rv, "DELETED", obj, raw, None))
        self.nodes_changed |= kd is NODE
        return obj

    def _record(self, kd: Kind, event: Event) -> None:
        history = self.history[kd.kind]
        if len(history) == history.maxlen:
            self.floor[kd.kind] = history[0].rv
        history.append(event)
        for queue in self.watchers[kd.kind]:
            queue.put_nowait(event)

    def compact(self) -> int:
        """Forget history: a watch from any older resourceVersion gets 410. Returns the current one."""
        for kd in KINDS:
            self.history[kd.kind].clear()
            self.floor[kd.kind] = self.rv
        return self.rv

    def end_streams(self, how: object) -> int:
        """Tell every open watch and log follow to end (DROP: abruptly); returns how many."""
        streams = list(self.streams)
        for queue in streams:
            queue.put_nowait(how)
        return len(streams)
