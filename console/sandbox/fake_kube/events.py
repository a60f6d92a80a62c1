"""Events as the kubelet and the deployment controller record them (what `kubectl describe`
lists under Events): a repeat of the same reason on the same object counts up, as the
real event recorder's aggregation does."""

from __future__ import annotations

import zlib

from console.sandbox.fake_kube.kinds import EVENT, Kind
from console.sandbox.fake_kube.store import Store


def record(store: Store, kd: Kind, obj: dict, kind: str, reason: str, message: str, source: dict) -> None:
    """Record (or count up) a `kind` ("Normal", "Warning") event about `obj`."""
    meta = obj["metadata"]
    ns = meta.get("namespace", "default")
    name = f"{meta['name']}.{reason.lower()}.{zlib.crc32(message.encode()):08x}"
    stamp = store.stamp()  # populate()'s world happened days ago
    old = store.objects[EVENT.kind].get((ns, name))
    count = (old or {}).get("count", 0) + 1
    event = {
        "metadata": {"name": name, "namespace": ns},
        "involvedObject": {"kind": kd.kind, "namespace": ns, "name": meta["name"], "uid": meta.get("uid", ""),
                           "apiVersion": kd.api_version, "resourceVersion": meta.get("resourceVersion", "")},
        "reason": reason, "message": message, "source": source, "type": kind, "count": count,
        "firstTimestamp": (old or {}).get("firstTimestamp", stamp), "lastTimestamp": stamp,
        "reportingComponent": source.get("component", ""), "reportingInstance": source.get("host", ""),
    }  # fmt: skip
    store.put(EVENT, event)
