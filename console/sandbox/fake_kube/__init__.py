"""A loopback Kubernetes API server for what the console reads and changes (nodes, pods and
their logs, deployments and their scale, HPAs, Agones fleets, game servers and fleet
autoscalers), over TLS, speaking the real wire format to kubernetes_asyncio and to kubectl.

kinds: what is served; wire: Status errors and selectors; patch: the three patch formats;
store: objects, versions, history; controllers: what follows a write; events, logs;
scenario: churn and the demo's story; world: populate(); discovery, tables and http: the
API server's routes; tls: its certificates; server: FakeKube and its control API."""

from console.sandbox.fake_kube.kinds import FLEET_LABEL, RESTARTED_AT, kind_of
from console.sandbox.fake_kube.server import FakeKube
from console.sandbox.fake_kube.world import populate

__all__ = ["FLEET_LABEL", "RESTARTED_AT", "FakeKube", "kind_of", "populate"]
