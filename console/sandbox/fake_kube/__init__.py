"""A loopback Kubernetes API server for what the console reads and changes (nodes, pods and
their logs, deployments and their scale, HPAs, Agones fleets, game servers and fleet
autoscalers), over TLS, speaking the real wire format to kubernetes_asyncio and to kubectl."""

from console.sandbox.fake_kube.kinds import FLEET_LABEL, KINDS, RESTARTED_AT, Kind, kind_of
from console.sandbox.fake_kube.patch import PatchError, json_patch, merge_patch
from console.sandbox.fake_kube.server import FakeKube
from console.sandbox.fake_kube.world import populate

__all__ = ["FLEET_LABEL", "KINDS", "RESTARTED_AT", "FakeKube", "Kind", "PatchError", "json_patch", "kind_of",
           "merge_patch", "populate"]  # fmt: skip
