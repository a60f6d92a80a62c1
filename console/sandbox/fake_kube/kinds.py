"""The kinds the fake cluster serves (built-in and Agones), how each is named on the wire,
and the annotations and labels its controllers share."""

from __future__ import annotations

from dataclasses import dataclass

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
FLEET_LABEL = "agones.dev/fleet"
REVISION = "deployment.kubernetes.io/revision"


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    group: str = ""
    version: str = "v1"
    namespaced: bool = True
    scalable: bool = False
    short: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()  # "all" puts it in `kubectl get all`

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
POD = Kind("Pod", "pods", short=("po",), categories=("all",))
EVENT = Kind("Event", "events", short=("ev",))
DEPLOYMENT = Kind("Deployment", "deployments", "apps", scalable=True, short=("deploy",), categories=("all",))
REPLICASET = Kind("ReplicaSet", "replicasets", "apps", short=("rs",), categories=("all",))
HPA = Kind("HorizontalPodAutoscaler", "horizontalpodautoscalers", "autoscaling", "v2", short=("hpa",),
           categories=("all",))  # fmt: skip
FLEET = Kind("Fleet", "fleets", "agones.dev", scalable=True, short=("flt",))
GAMESERVER = Kind("GameServer", "gameservers", "agones.dev", short=("gs",))
FLEET_AUTOSCALER = Kind("FleetAutoscaler", "fleetautoscalers", "autoscaling.agones.dev", short=("fas",))
KINDS = (NAMESPACE, NODE, POD, EVENT, DEPLOYMENT, REPLICASET, HPA, FLEET, GAMESERVER, FLEET_AUTOSCALER)
_BY_NAME = {n.lower(): k for k in KINDS for n in (k.kind, k.plural, *k.short)}


def kind_of(name: str) -> Kind:
    """The Kind for "Deployment", "deployments" or "deploy"; raises KeyError for others."""
    try:
        return _BY_NAME[name.lower()]
    except KeyError:
        raise KeyError(f"fake-kube has no kind {name!r}") from None
