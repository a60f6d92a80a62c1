"""What the cluster's controllers would do after each write, done at once: a deployment's
ReplicaSets and pods follow its template and replicas, a fleet's game servers follow its
replicas, owners' statuses follow their pods and game servers, a crashing pod backs off."""

from __future__ import annotations

import copy
import hashlib
import json
import random
import uuid
from collections.abc import Callable
from typing import Any

from console.sandbox.fake_kube import events
from console.sandbox.fake_kube.kinds import (
    DEPLOYMENT,
    FLEET,
    FLEET_AUTOSCALER,
    FLEET_LABEL,
    GAMESERVER,
    HPA,
    NAMESPACE,
    NODE,
    POD,
    REPLICASET,
    REVISION,
    Kind,
)  # fmt: skip
from console.sandbox.fake_kube.logs import PodLogs
from console.sandbox.fake_kube.store import Key, Store
from console.sandbox.fake_kube.wire import iso, labels_match, now

HASH = "pod-template-hash"
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what Kubernetes uses for generated names


def template_hash(template: dict) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:10])


def ready(pod: dict | None) -> bool:
    statuses = (pod or {}).get("status", {}).get("containerStatuses") or []
    return bool(statuses) and all(s.get("ready") for s in statuses)


def crashlooping(pod: dict) -> bool:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    return any(
        (s.get("state", {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff" for s in statuses
    )


def state(gs: dict | None) -> str:
    return (gs or {}).get("status", {}).get("state", "")


def _backoff(restarts: int) -> str:
    seconds = min(10 * 2 ** max(restarts - 1, 0), 300)
    return f"{seconds // 60}m{seconds % 60}s" if seconds >= 60 else f"{seconds}s"


def _selector(dep: dict) -> dict:
    return dep["spec"].get("selector", {}).get("matchLabels") or {"app": dep["metadata"]["name"]}


class Cluster(Store):
    """The store plus its controllers; every change the HTTP API or the control API makes goes
    through write(), replace() or delete() here."""

    def __init__(self, rng: random.Random):
        super().__init__(rng)
        self.logs = PodLogs()
        self._nodes: list[tuple[str, str]] = []  # (name, InternalIP), round-robin
        self._next_node = 0
        self._next_ip = 0

    # ---- writes --------------------------------------------------------------------------

    def modify(self, kd: Kind, key: Key, change: Callable[[dict], None]) -> dict:
        obj = self.editable(kd, key)
        change(obj)
        return self.write(kd, obj)

    def write(self, kd: Kind, obj: dict) -> dict:
        """Store and let the controllers react (pods follow deployments, game servers fleets)."""
        key = (obj["metadata"].get("namespace", "default") if kd.namespaced else "", obj["metadata"]["name"])
        prev = self.objects[kd.kind].get(key)
        obj = self.put(kd, obj)
        ns, name = key
        if kd is DEPLOYMENT:
            self.reconcile_deployment(ns, name)
        elif kd is FLEET:
            self.reconcile_fleet(ns, name)
        elif kd is POD:
            if (
                prev is None
                or ready(prev) != ready(obj)
                or prev["metadata"].get("labels") != obj["metadata"].get("labels")
            ):
                self._refresh_owners(ns, obj, prev)
        elif kd is GAMESERVER:
            fleets = {(g or {}).get("metadata", {}).get("labels", {}).get(FLEET_LABEL) for g in (prev, obj)}
            if prev is None or state(prev) != state(obj) or len(fleets) > 1:
                for fleet in fleets - {None}:
                    self.refresh_fleet(ns, fleet)
        return obj

    def delete(self, kd: Kind, key: Key) -> dict:
        """Remove an object and what it owns (a deployment's ReplicaSets and pods, a fleet's game servers)."""
        obj = self.drop(kd, key)
        ns, name = key
        if kd is DEPLOYMENT:
            for owned in (REPLICASET, POD):
                for owned_key, item in list(self.objects[owned.kind].items()):
                    if owned_key[0] == ns and labels_match(item, _selector(obj)):
                        self.delete(owned, owned_key)
        elif kd is FLEET:
            for gs_key, _ in self.fleet_gameservers(ns, name):
                self.delete(GAMESERVER, gs_key)
        elif kd is POD:
            self.logs.forget(key)
            self._refresh_owners(ns, None, obj, reconcile=True)
        elif kd is GAMESERVER:
            fleet = obj["metadata"].get("labels", {}).get(FLEET_LABEL)
            if fleet:
                self.reconcile_fleet(ns, fleet)
        return obj

    def apply(self, kd: Kind, obj: dict) -> dict:
        """Create or replace an object from its full form."""
        meta = obj.setdefault("metadata", {})
        key = self.key(kd, meta.get("namespace"), meta["name"])
        return self.replace(kd, self.objects[kd.kind].get(key), obj)

    def replace(self, kd: Kind, old: dict | None, new: dict) -> dict:
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
            return self.write(kd, new)
        old_meta = old["metadata"]
        for field in ("name", "namespace", "uid", "creationTimestamp"):
            if field in old_meta:
                meta[field] = old_meta[field]
        if "generation" in old_meta:
            meta["generation"] = old_meta["generation"] + (new.get("spec") != old.get("spec"))
        if kd is DEPLOYMENT and new["spec"].get("template") != old["spec"].get("template"):
            revision = (old_meta.get("annotations") or {}).get(REVISION, "1")
            meta.setdefault("annotations", {})[REVISION] = str(int(revision) + 1)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if new == old:
            return old
        return self.write(kd, new)

    # ---- deployments ---------------------------------------------------------------------

    def _node_pick(self) -> tuple[int, tuple[str, str]] | None:
        if self.nodes_changed:
            self.nodes_changed = False
            self._nodes = []
            for (_, name), node in sorted(self.objects["Node"].items()):
                addresses = node.get("status", {}).get("addresses", [])
                ips = [a["address"] for a in addresses if a.get("type") == "InternalIP"]
                self._nodes.append((name, ips[0] if ips else "10.132.0.2"))
        if not self._nodes:
            return None
        self._next_node += 1
        index = self._next_node % len(self._nodes)
        return index, self._nodes[index]

    def suffix(self, length: int = 5) -> str:
        return "".join(self.rng.choice(_ALPHABET) for _ in range(length))

    def _new_pod(self, deployment: dict, pod_hash: str) -> dict:
        meta, spec = deployment["metadata"], deployment["spec"]
        ns, owner = meta["namespace"], meta["name"]
        template = spec.get("template") or {}
        template_meta = template.get("metadata") or {}
        labels = {**(template_meta.get("labels") or {"app": owner}), HASH: pod_hash}
        picked = self._node_pick()
        started = self.stamp()
        self._next_ip += 1
        pod_ip = f"10.4.{picked[0] if picked else 0}.{self._next_ip % 250 + 2}"
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
            "name": f"{owner}-{pod_hash}-{self.suffix()}", "generateName": f"{owner}-{pod_hash}-", "namespace": ns,
            "creationTimestamp": started, "labels": labels,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{owner}-{pod_hash}",
                                 "uid": _replicaset_uid(deployment, pod_hash), "controller": True, "blockOwnerDeletion": True}],
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
        if picked:
            pod_spec["nodeName"], status["hostIP"] = picked[1]
        return self.put(POD, {"metadata": pod_meta, "spec": pod_spec, "status": status})

    def _refresh_owners(
        self, ns: str, pod: dict | None, prev: dict | None, *, reconcile: bool = False
    ) -> None:
        for (dns, name), dep in list(self.objects["Deployment"].items()):
            if dns == ns and any(p is not None and labels_match(p, _selector(dep)) for p in (pod, prev)):
                if reconcile:
                    self.reconcile_deployment(dns, name)
                else:
                    self._refresh_deployment(dns, name)

    def _pods_of(self, ns: str, dep: dict) -> list[tuple[Key, dict]]:
        match = _selector(dep)
        return [(k, p) for k, p in self.objects["Pod"].items() if k[0] == ns and labels_match(p, match)]

    def reconcile_deployment(self, ns: str, name: str) -> None:
        """A ReplicaSet's work, done at once: pods of the current template, as many as spec.replicas."""
        dep = self.objects["Deployment"].get((ns, name))
        if dep is None:
            return
        want = dep["spec"].get("replicas", 1)
        pod_hash = template_hash(dep["spec"].get("template") or {})
        pods = self._pods_of(ns, dep)
        current = [(k, p) for k, p in pods if p["metadata"].get("labels", {}).get(HASH, pod_hash) == pod_hash]
        kept = {k for k, _ in current}
        for key in [k for k, _ in pods if k not in kept]:  # a rollout: each old pod gives way to a new one
            self.drop(POD, key)
            self.logs.forget(key)
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
                return (ready(kp[1]), -restarts, -int(kp[1]["metadata"]["resourceVersion"]))

            for key, _ in sorted(current, key=rank)[: len(current) - want]:
                self.drop(POD, key)
                self.logs.forget(key)
        self._refresh_deployment(ns, name)

    def _refresh_deployment(self, ns: str, name: str) -> None:
        """The deployment's status, its ReplicaSets' and its HPA's current count, from its pods."""
        dep = self.objects["Deployment"].get((ns, name))
        if dep is None:
            return
        spec = dep["spec"]
        pod_hash = template_hash(spec.get("template") or {})
        pods = [p for _, p in self._pods_of(ns, dep)]
        ready_count = sum(ready(p) for p in pods)
        updated = sum(p["metadata"].get("labels", {}).get(HASH, pod_hash) == pod_hash for p in pods)
        want = spec.get("replicas", 1)
        old = dep.get("status") or {}
        since = {c["type"]: c for c in old.get("conditions", [])}
        stamp = iso(now())

        def condition(kind: str, ok: bool, reason: str, message: str) -> dict:
            before = since.get(kind, {})
            changed = before.get("status") != ("True" if ok else "False")
            return {"type": kind, "status": "True" if ok else "False",
                    "lastUpdateTime": stamp if changed else before.get("lastUpdateTime", stamp),
                    "lastTransitionTime": stamp if changed else before.get("lastTransitionTime", stamp),
                    "reason": reason, "message": message}  # fmt: skip

        available = ready_count >= want - want // 4  # maxUnavailable 25%, rounded down
        status: dict[str, Any] = {"observedGeneration": dep["metadata"].get("generation", 1), "replicas": len(pods),
                                  "updatedReplicas": updated, "readyReplicas": ready_count, "availableReplicas": ready_count}  # fmt: skip
        if len(pods) > ready_count:
            status["unavailableReplicas"] = len(pods) - ready_count
        status["conditions"] = [
            condition("Available", available, "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                      "Deployment has minimum availability." if available else "Deployment does not have minimum availability."),
            condition("Progressing", True, "NewReplicaSetAvailable",
                      f'ReplicaSet "{name}-{pod_hash}" has successfully progressed.'),
        ]  # fmt: skip
        self._sync_replicasets(dep, pod_hash, pods)
        if status == old:
            return
        self.put(DEPLOYMENT, {**self.editable(DEPLOYMENT, (ns, name)), "status": status})
        for key, hpa in list(self.objects["HorizontalPodAutoscaler"].items()):
            target = hpa.get("spec", {}).get("scaleTargetRef", {})
            if key[0] == ns and target.get("kind") == "Deployment" and target.get("name") == name:
                if hpa.get("status", {}).get("currentReplicas") != len(pods):
                    fresh = self.editable(HPA, key)
                    fresh.setdefault("status", {})["currentReplicas"] = len(pods)
                    self.put(HPA, fresh)

    def _sync_replicasets(self, dep: dict, pod_hash: str, pods: list[dict]) -> None:
        """One ReplicaSet per template the deployment has had (what `describe deployment` and
        `get rs` show): the current one with spec.replicas, older ones scaled to 0; each
        scaling recorded as an event on the deployment."""
        meta, spec = dep["metadata"], dep["spec"]
        ns, name = meta["namespace"], meta["name"]
        want = spec.get("replicas", 1)
        revision = (meta.get("annotations") or {}).get(REVISION, "1")
        mine = [p for p in pods if p["metadata"].get("labels", {}).get(HASH) == pod_hash]
        count = sum(ready(p) for p in mine)
        template = copy.deepcopy(spec.get("template") or {})
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH] = pod_hash
        rs_meta = {"name": f"{name}-{pod_hash}", "namespace": ns, "uid": _replicaset_uid(dep, pod_hash), "generation": 1,
                   "labels": dict(template["metadata"]["labels"]),
                   "annotations": {REVISION: revision, "deployment.kubernetes.io/desired-replicas": str(want)},
                   "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": meta["uid"],
                                        "controller": True, "blockOwnerDeletion": True}]}  # fmt: skip
        rs = {"metadata": rs_meta,
              "spec": {"replicas": want, "selector": {"matchLabels": {**_selector(dep), HASH: pod_hash}}, "template": template},
              "status": {"replicas": len(mine), "fullyLabeledReplicas": len(mine), "readyReplicas": count,
                         "availableReplicas": count, "observedGeneration": 1}}  # fmt: skip
        old = self.objects["ReplicaSet"].get((ns, rs_meta["name"]))
        before = old["spec"].get("replicas", 0) if old else 0
        if old is not None:
            rs_meta["creationTimestamp"] = old["metadata"]["creationTimestamp"]
            unchanged = {**old, "metadata": {**old["metadata"], "resourceVersion": None}}
        if old is None or unchanged != {**rs, "metadata": {**rs_meta, "resourceVersion": None}}:
            self.put(REPLICASET, rs)
        if want != before:
            self._scaled(dep, rs_meta["name"], before, want)
        for (rns, rname), other in list(self.objects["ReplicaSet"].items()):
            owned = rns == ns and other["metadata"].get("ownerReferences", [{}])[0].get("uid") == meta["uid"]
            if owned and rname != rs_meta["name"] and other["spec"].get("replicas"):
                self.put(REPLICASET, {**self.editable(REPLICASET, (rns, rname)), "spec": {**other["spec"], "replicas": 0},
                                      "status": {"replicas": 0, "observedGeneration": other["metadata"].get("generation", 1)}})  # fmt: skip
                self._scaled(dep, rname, other["spec"]["replicas"], 0)

    def _scaled(self, dep: dict, replicaset: str, before: int, after: int) -> None:
        way = "up" if after > before else "down"
        events.record(self, DEPLOYMENT, dep, "Normal", "ScalingReplicaSet", f"Scaled {way} replica set {replicaset} to {after}",
                      {"component": "deployment-controller"})  # fmt: skip

    # ---- fleets --------------------------------------------------------------------------

    def _new_gameserver(self, fleet: dict, server_state: str = "Ready") -> dict:
        meta = fleet["metadata"]
        ns, owner = meta["namespace"], meta["name"]
        template = fleet["spec"].get("template") or {}
        gss = f"{owner}-{template_hash(template)[:5]}"
        picked = self._node_pick()
        node = picked[1] if picked else None
        spec = copy.deepcopy(template.get("spec") or {})
        port = self.rng.randint(7000, 7999)
        gs = {
            "metadata": {"name": f"{gss}-{self.suffix()}", "generateName": f"{gss}-", "namespace": ns, "generation": 1,
                         "labels": {**((template.get("metadata") or {}).get("labels") or {}), FLEET_LABEL: owner,
                                    "agones.dev/gameserverset": gss},
                         "ownerReferences": [{"apiVersion": "agones.dev/v1", "kind": "GameServerSet", "name": gss,
                                              "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{meta['uid']}/{gss}")),
                                              "controller": True, "blockOwnerDeletion": True}]},
            "spec": spec,
            "status": {"state": server_state, "ports": [{"name": p.get("name", "default"), "port": port} for p in spec.get("ports") or [{}]],
                       "address": node[1] if node else "", "addresses": [{"type": "InternalIP", "address": node[1]}] if node else [],
                       "nodeName": node[0] if node else "", "reservedUntil": None, "players": None},
        }  # fmt: skip
        return self.put(GAMESERVER, gs)

    def fleet_gameservers(self, ns: str, name: str) -> list[tuple[Key, dict]]:
        return [(k, g) for k, g in self.objects["GameServer"].items()
                if k[0] == ns and g["metadata"].get("labels", {}).get(FLEET_LABEL) == name]  # fmt: skip

    def reconcile_fleet(self, ns: str, name: str) -> None:
        """The fleet's GameServerSet, done at once: as many game servers as spec.replicas, removing
        those not yet serving first and never an Allocated one."""
        fleet = self.objects["Fleet"].get((ns, name))
        if fleet is None:
            return
        want = fleet["spec"].get("replicas", 0)
        servers = self.fleet_gameservers(ns, name)
        for _ in range(want - len(servers)):
            self._new_gameserver(fleet)
        if len(servers) > want:
            order = {"Shutdown": 0, "Unhealthy": 1, "Error": 1, "Ready": 3, "Reserved": 4}
            candidates = sorted((kg for kg in servers if state(kg[1]) != "Allocated"),
                                key=lambda kg: (order.get(state(kg[1]), 2), -int(kg[1]["metadata"]["resourceVersion"])))  # fmt: skip
            for key, _ in candidates[: len(servers) - want]:
                self.drop(GAMESERVER, key)
        self.refresh_fleet(ns, name)

    def refresh_fleet(self, ns: str, name: str) -> None:
        """The fleet's status and its autoscalers' current count, from its game servers."""
        fleet = self.objects["Fleet"].get((ns, name))
        if fleet is None:
            return
        states = [state(g) for _, g in self.fleet_gameservers(ns, name)]
        status = {"replicas": len(states), "readyReplicas": states.count("Ready"), "reservedReplicas": states.count("Reserved"),
                  "allocatedReplicas": states.count("Allocated"), "players": {"count": 0, "capacity": 0}}  # fmt: skip
        if status != fleet.get("status"):
            self.put(FLEET, {**self.editable(FLEET, (ns, name)), "status": status})
        for key, fas in list(self.objects["FleetAutoscaler"].items()):
            if key[0] == ns and fas.get("spec", {}).get("fleetName") == name:
                old = fas.get("status") or {}
                desired = old.get("desiredReplicas", fleet["spec"].get("replicas", 0))
                new = {**old, "currentReplicas": len(states), "desiredReplicas": desired}
                if new != old:
                    self.put(FLEET_AUTOSCALER, {**self.editable(FLEET_AUTOSCALER, key), "status": new})

    # ---- pods ----------------------------------------------------------------------------

    def log_lines(self, key: Key) -> list[str]:
        return self.logs.lines(key, self.objects["Pod"][key]["metadata"].get("labels", {}).get("app", ""))

    def append_log(self, key: Key, line: str) -> None:
        if key not in self.objects["Pod"]:
            raise KeyError(f"no pod {key[0]}/{key[1]}")
        self.logs.append(key, self.objects["Pod"][key]["metadata"].get("labels", {}).get("app", ""), line)

    def crashloop(self, key: Key) -> None:
        """The pod's containers crash: waiting CrashLoopBackOff, not ready, restartCount + 1."""
        if key not in self.objects["Pod"]:
            raise KeyError(f"no pod {key[0]}/{key[1]}")
        stamp = iso(now())

        def change(pod: dict) -> None:
            names = []
            for cs in pod["status"].get("containerStatuses") or []:
                names.append(cs["name"])
                started = (cs.get("state", {}).get("running") or {}).get("startedAt") or stamp
                cs["restartCount"] = cs.get("restartCount", 0) + 1
                cs["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": started, "finishedAt": stamp,
                                                  "containerID": cs.get("containerID", "")}}  # fmt: skip
                message = f"back-off {_backoff(cs['restartCount'])} restarting failed container={cs['name']} pod={key[1]}_{key[0]}({pod['metadata']['uid']})"
                cs["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
                cs["ready"] = False
                cs["started"] = False
            for condition in pod["status"].get("conditions") or []:
                if condition["type"] in ("Ready", "ContainersReady") and condition["status"] != "False":
                    condition.update(status="False", reason="ContainersNotReady", lastTransitionTime=stamp,
                                     message=f"containers with unready status: [{' '.join(names)}]")  # fmt: skip

        pod = self.modify(POD, key, change)
        for cs in pod["status"].get("containerStatuses") or []:
            message = f"Back-off restarting failed container {cs['name']} in pod {key[1]}_{key[0]}({pod['metadata']['uid']})"
            events.record(self, POD, pod, "Warning", "BackOff", message,
                          {"component": "kubelet", "host": pod["spec"].get("nodeName", "")})  # fmt: skip
        when = now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        self.append_log(
            key, f"{when} ERROR database ping failed: dial tcp 10.4.2.17:5432: connect: connection refused"
        )
        self.append_log(
            key, f"{when} FATAL giving up after 5 attempts: database unavailable, exiting with status 1"
        )


def _replicaset_uid(deployment: dict, pod_hash: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{deployment['metadata']['uid']}/{pod_hash}"))
