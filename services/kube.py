"""KubeService: the cluster through kubernetes-asyncio (KUBECONFIG and its contexts): the
contexts, a one-off summary, the scaling and restart calls the runbooks make, pod logs.
Live lists come from services.kube_watch. kubernetes_asyncio is imported where first
used: it costs ~150 ms at start-up."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services import kube_model as km
from services.errors import BackendFailed, NotConfigured, ServiceError, Unreachable
from services.health import Ping

AGONES = ("agones.dev", "v1")
AGONES_AUTOSCALING = ("autoscaling.agones.dev", "v1")
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


@dataclass(frozen=True)
class KubeContext:
    name: str
    namespace: str
    cluster: str


@dataclass(frozen=True)
class Resource:
    """One kind the console lists and watches: how to call its list function, and the row
    it becomes."""

    kind: str
    label: str  # "pods", for messages
    namespaced: bool
    row: Callable[[dict[str, Any]], Any]
    custom: tuple[str, str, str] | None = None  # (group, version, plural) for custom objects


RESOURCES = {
    "nodes": Resource("nodes", "nodes", False, km.cluster_node),
    "pods": Resource("pods", "pods", True, km.pod),
    "deployments": Resource("deployments", "deployments", True, km.deployment),
    "hpas": Resource("hpas", "horizontal pod autoscalers", True, km.hpa),
    "fleets": Resource("fleets", "Agones fleets", True, km.fleet, (*AGONES, "fleets")),
    "gameservers": Resource("gameservers", "gameservers", True, km.game_server, (*AGONES, "gameservers")),
    "fleetautoscalers": Resource(
        "fleetautoscalers",
        "fleet autoscalers",
        True,
        km.fleet_autoscaler,
        (*AGONES_AUTOSCALING, "fleetautoscalers"),
    ),
}


def list_call(api, resource: Resource, namespace: str) -> tuple[Callable[..., Awaitable[Any]], tuple]:
    """(list function, positional args) of `resource` in `namespace` for `api`."""
    from kubernetes_asyncio import client

    if resource.custom:
        return client.CustomObjectsApi(api).list_namespaced_custom_object, (*resource.custom[:2], namespace,
                                                                            resource.custom[2])  # fmt: skip
    if resource.kind == "nodes":
        return client.CoreV1Api(api).list_node, ()
    if resource.kind == "pods":
        return client.CoreV1Api(api).list_namespaced_pod, (namespace,)
    if resource.kind == "deployments":
        return client.AppsV1Api(api).list_namespaced_deployment, (namespace,)
    return client.AutoscalingV2Api(api).list_namespaced_horizontal_pod_autoscaler, (namespace,)


def api_error(exc: Exception, what: str, host: str) -> ServiceError:
    """The ServiceError an operator can act on for a failed call about `what`."""
    from kubernetes_asyncio.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        reason = exc.reason or ""
        try:
            reason = json.loads(exc.body).get("message") or reason
        except (TypeError, ValueError, AttributeError):
            pass
        if exc.status == 404:
            return BackendFailed(f"{what}: not found ({reason})", backend="kube")
        if exc.status in (401, 403):
            return BackendFailed(f"Kubernetes API at {host} refused {what} (HTTP {exc.status}: {reason})",
                                 backend="kube")  # fmt: skip
        message = f"{what}: Kubernetes API at {host} answered {exc.status} {reason}"
        return BackendFailed(message, backend="kube")
    if isinstance(exc, TimeoutError):
        return Unreachable(f"Kubernetes API at {host} did not answer ({what})", backend="kube")
    return Unreachable(f"Kubernetes API at {host} cannot be reached ({what}): {exc}", backend="kube")


async def read_json(response) -> dict[str, Any]:
    """The JSON body of a raw (un-preloaded) response; raises ApiException for a non-2xx."""
    from kubernetes_asyncio.client.exceptions import ApiException

    try:
        body = await response.read()
    finally:
        response.release()
    if not 200 <= response.status <= 299:
        try:
            reason = json.loads(body).get("message") or response.reason
        except (ValueError, AttributeError):
            reason = response.reason
        raise ApiException(status=response.status, reason=reason) from None
    return json.loads(body)


_imported = False


def _config_error(path: str, exc: Exception) -> str:
    """Why the kubeconfig at `path` cannot be used, without quoting its content: a YAML
    error's snippet could be the line holding a token."""
    import yaml

    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        return f"kubeconfig {path} is not valid YAML (line {exc.problem_mark.line + 1}: {exc.problem})"
    if isinstance(exc, yaml.YAMLError):
        return f"kubeconfig {path} is not valid YAML"
    return f"kubeconfig {path}: {exc}"


async def _import_client() -> None:
    """Import kubernetes_asyncio (~0.5 s) in a thread the first time, so the console's
    event loop keeps drawing meanwhile."""
    global _imported
    if not _imported:
        import importlib

        await asyncio.to_thread(importlib.import_module, "kubernetes_asyncio.watch")
        _imported = True


async def _client_module():  # -> the kubernetes_asyncio.client module
    await _import_client()
    from kubernetes_asyncio import client

    return client


class KubeService:
    backend = "kube"

    def __init__(self, kubeconfig: str | None, context: str | None = None, timeout: float = 5.0):
        self.kubeconfig = kubeconfig
        self.context = context
        self.timeout = timeout

    @property
    def configured(self) -> bool:
        return bool(self.kubeconfig)

    def contexts(self) -> tuple[list[KubeContext], str | None]:
        """The kubeconfig's contexts and the one in use; raises ServiceError. Read with
        PyYAML: the screen asks on mount, and importing kubernetes_asyncio takes ~0.5 s."""
        import yaml

        if not self.kubeconfig:
            raise NotConfigured("Kubernetes is not configured (KUBECONFIG)", backend="kube")
        try:
            with open(self.kubeconfig, encoding="utf-8") as handle:
                data = yaml.safe_load(handle) or {}
            contexts = data.get("contexts") or []
            found = [
                KubeContext(c["name"], (c.get("context") or {}).get("namespace") or "default",
                            (c.get("context") or {}).get("cluster") or "")
                for c in contexts
            ]  # fmt: skip
        except (OSError, yaml.YAMLError, AttributeError, KeyError, TypeError) as exc:
            raise BackendFailed(_config_error(self.kubeconfig, exc), backend="kube") from exc
        if not found:
            raise BackendFailed(f"kubeconfig {self.kubeconfig} has no contexts", backend="kube")
        return found, self.context or data.get("current-context")

    def where(self, context: str | None = None) -> tuple[str | None, str]:
        """(the context in use: `context`, else the configured or current one; its default
        namespace), from one read of the kubeconfig; ("default" when it cannot be read)."""
        try:
            found, current = self.contexts()
        except ServiceError:
            return context or self.context, "default"
        wanted = context or current
        return wanted, next((c.namespace for c in found if c.name == wanted), "default")

    async def api_client(self, context: str | None = None):  # -> kubernetes_asyncio.client.ApiClient
        if not self.kubeconfig:
            raise NotConfigured("Kubernetes is not configured (KUBECONFIG)", backend="kube")
        await _import_client()
        from kubernetes_asyncio import client, config

        configuration = client.Configuration()
        try:
            await config.load_kube_config(
                config_file=self.kubeconfig, context=context or self.context,
                client_configuration=configuration,
            )  # fmt: skip
        except Exception as exc:  # unreadable file, bad YAML, missing context or user
            raise BackendFailed(_config_error(self.kubeconfig, exc), backend="kube") from exc
        return client.ApiClient(configuration)

    async def ping(self) -> Ping:
        """The API server's gitVersion and round-trip; raises ServiceError."""
        client = await _client_module()

        api = await self.api_client()
        host = api.configuration.host
        started = time.perf_counter()
        try:
            async with api:
                info = await asyncio.wait_for(client.VersionApi(api).get_code(), self.timeout)
        except Exception as exc:
            raise api_error(exc, "the version", host) from exc
        rtt = (time.perf_counter() - started) * 1000
        return Ping(self.backend, f"Kubernetes {info.git_version}", rtt, host)

    async def list_rows(self, api, kind: str, namespace: str) -> tuple[dict[str, Any], str]:
        """Every object of `kind` as rows keyed "namespace/name", and the list's
        resourceVersion (where a watch starts). Raises ApiException / OSError / TimeoutError."""
        resource = RESOURCES[kind]
        call, args = list_call(api, resource, namespace)
        response = await asyncio.wait_for(call(*args, _preload_content=False), self.timeout * 4)
        body = await read_json(response)
        rows = {km.object_key(item): resource.row(item) for item in body.get("items") or []}
        return rows, str((body.get("metadata") or {}).get("resourceVersion") or "")

    async def summary(self, context: str | None = None, namespace: str | None = None) -> km.KubeSummary:
        """Every kind listed once (what `opsconsole kube --json` prints). A kind that cannot
        be read is named in `errors`; raises ServiceError only when nothing can be read."""
        context, default = self.where(context)
        namespace = namespace or default
        api = await self.api_client(context)
        host = api.configuration.host
        rows: dict[str, dict[str, Any]] = {}
        errors: dict[str, str] = {}
        async with api:
            for kind, resource in RESOURCES.items():
                try:
                    rows[kind], _ = await self.list_rows(api, kind, namespace)
                except Exception as exc:  # each kind degrades alone (Agones may not be installed)
                    errors[kind] = str(api_error(exc, resource.label, host))
                    rows[kind] = {}
        if len(errors) == len(RESOURCES):
            raise Unreachable(next(iter(errors.values())), backend="kube")
        return km.KubeSummary(
            context=context or "",
            namespace=namespace,
            nodes=km.node_loads(rows["nodes"], rows["pods"]),
            pods=sorted(rows["pods"].values(), key=lambda p: (not p.problem, p.name)),
            deployments=list(rows["deployments"].values()),
            hpas=list(rows["hpas"].values()),
            fleets=list(rows["fleets"].values()),
            gameserver_states={f: dict(c) for f, c in km.fleet_states(rows["gameservers"]).items()},
            autoscalers=list(rows["fleetautoscalers"].values()),
            errors=errors,
        )

    # -- the runbooks' calls --------------------------------------------------------------

    def scale_call_text(self, kind: str, namespace: str, name: str, replicas: int) -> str:
        """The exact request a scale sends, as the action preview shows it."""
        if kind == "deployment":
            path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"
            content_type = "application/strategic-merge-patch+json"
        else:
            path = f"/apis/agones.dev/v1/namespaces/{namespace}/fleets/{name}/scale"
            content_type = "application/merge-patch+json"
        body = json.dumps({"spec": {"replicas": replicas}})
        return f"PATCH {path}\nContent-Type: {content_type}\n{body}"

    def restart_call_text(self, namespace: str, name: str, at: str = "<now>") -> str:
        body = json.dumps({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}})
        return (
            f"PATCH /apis/apps/v1/namespaces/{namespace}/deployments/{name}\n"
            f"Content-Type: application/strategic-merge-patch+json\n{body}"
        )

    async def _call(self, context: str | None, what: str, work: Callable[[Any], Awaitable[Any]]) -> Any:
        api = await self.api_client(context)
        host = api.configuration.host
        try:
            async with api:
                return await asyncio.wait_for(work(api), self.timeout * 2)
        except ServiceError:
            raise
        except Exception as exc:
            raise api_error(exc, what, host) from exc

    async def read_deployment(
        self, namespace: str, name: str, context: str | None = None
    ) -> km.Deployment | None:
        """The deployment now, or None when it does not exist; raises ServiceError."""
        client = await _client_module()

        async def read(api):
            response = await client.AppsV1Api(api).read_namespaced_deployment(
                name, namespace, _preload_content=False
            )
            if response.status == 404:
                response.release()
                return None
            return km.deployment(await read_json(response))

        return await self._call(context, f"deployment {namespace}/{name}", read)

    async def namespace_exists(self, namespace: str, context: str | None = None) -> bool:
        """Whether the namespace exists in the cluster (a missing one lists as empty, which
        looks like "no pods"); raises ServiceError."""
        client = await _client_module()

        async def read(api):
            response = await client.CoreV1Api(api).read_namespace(namespace, _preload_content=False)
            found = response.status != 404
            response.release()
            return found

        return await self._call(context, f"namespace {namespace}", read)

    async def read_fleet(self, namespace: str, name: str, context: str | None = None) -> km.Fleet | None:
        """The fleet now, or None when it does not exist; raises ServiceError."""
        client = await _client_module()

        async def read(api):
            response = await client.CustomObjectsApi(api).get_namespaced_custom_object(
                *AGONES, namespace, "fleets", name, _preload_content=False
            )
            if response.status == 404:
                response.release()
                return None
            return km.fleet(await read_json(response))

        return await self._call(context, f"fleet {namespace}/{name}", read)

    async def autoscalers_of(self, namespace: str, name: str, context: str | None = None) -> list[km.Hpa]:
        """The HPAs that scale deployment `name` (they may undo a manual scale)."""

        async def read(api):
            rows, _ = await self.list_rows(api, "hpas", namespace)
            return [h for h in rows.values() if h.target == f"Deployment/{name}"]

        return await self._call(context, f"autoscalers in {namespace}", read)

    async def scale_deployment(
        self, namespace: str, name: str, replicas: int, context: str | None = None
    ) -> int:
        """Patch the deployment's scale subresource; returns the replicas it now asks for."""
        client = await _client_module()

        async def scale(api):
            result = await client.AppsV1Api(api).patch_namespaced_deployment_scale(
                name, namespace, {"spec": {"replicas": replicas}}
            )
            return result.spec.replicas

        return await self._call(context, f"scale deployment {namespace}/{name}", scale)

    async def restart_deployment(self, namespace: str, name: str, context: str | None = None) -> str:
        """`kubectl rollout restart`: stamp the pod template's restartedAt annotation;
        returns the stamp."""
        client = await _client_module()

        at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}}

        async def restart(api):
            await client.AppsV1Api(api).patch_namespaced_deployment(name, namespace, body)
            return at

        return await self._call(context, f"restart deployment {namespace}/{name}", restart)

    async def scale_fleet(self, namespace: str, name: str, replicas: int, context: str | None = None) -> int:
        """Patch the Agones fleet's scale subresource; returns the replicas it now asks for."""
        client = await _client_module()

        async def scale(api):
            # A dict body would go out labelled as a JSON patch, which API servers refuse.
            result = await client.CustomObjectsApi(api).patch_namespaced_custom_object_scale(
                *AGONES, namespace, "fleets", name, {"spec": {"replicas": replicas}},
                _content_type="application/merge-patch+json",
            )  # fmt: skip
            return int(((result or {}).get("spec") or {}).get("replicas", replicas))

        return await self._call(context, f"scale fleet {namespace}/{name}", scale)

    async def pod_log(
        self, namespace: str, name: str, *, tail: int = 100, follow: bool = True, context: str | None = None
    ) -> AsyncIterator[str]:
        """The pod's last `tail` log lines, then (with `follow`) new lines as they come,
        until the caller stops iterating or the stream ends. Raises ServiceError."""
        client = await _client_module()

        api = await self.api_client(context)
        host = api.configuration.host
        async with api:
            try:
                response = await client.CoreV1Api(api).read_namespaced_pod_log(
                    name, namespace, tail_lines=tail, follow=follow, _preload_content=False,
                    _request_timeout=(self.timeout, None),
                )  # fmt: skip
                if not 200 <= response.status <= 299:
                    await read_json(response)  # raises with the status
            except Exception as exc:
                raise api_error(exc, f"logs of pod {namespace}/{name}", host) from exc
            try:
                while True:
                    try:
                        line = await response.content.readline()
                    except Exception as exc:
                        raise api_error(exc, f"logs of pod {namespace}/{name}", host) from exc
                    if not line:
                        return
                    yield line.decode("utf-8", "replace").rstrip("\n")
            finally:
                response.release()
