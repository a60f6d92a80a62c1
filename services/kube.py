"""KubeService: the cluster through kubernetes-asyncio (KUBECONFIG and its contexts).
kubernetes_asyncio is imported where first used: it costs ~150 ms at start-up."""

from __future__ import annotations

import asyncio
import time

from services.errors import BackendFailed, NotConfigured, Unreachable
from services.health import Ping


class KubeService:
    backend = "kube"

    def __init__(self, kubeconfig: str | None, context: str | None = None, timeout: float = 5.0):
        self.kubeconfig = kubeconfig
        self.context = context
        self.timeout = timeout

    @property
    def configured(self) -> bool:
        return bool(self.kubeconfig)

    async def _api_client(self):  # -> kubernetes_asyncio.client.ApiClient
        from kubernetes_asyncio import client, config

        if not self.kubeconfig:
            raise NotConfigured("Kubernetes is not configured (KUBECONFIG)")
        configuration = client.Configuration()
        try:
            await config.load_kube_config(
                config_file=self.kubeconfig, context=self.context,
                client_configuration=configuration,
            )  # fmt: skip
        except (OSError, config.ConfigException) as exc:
            raise BackendFailed(f"kubeconfig {self.kubeconfig}: {exc}") from exc
        return client.ApiClient(configuration)

    async def ping(self) -> Ping:
        """The API server's gitVersion and round-trip; raises ServiceError."""
        from kubernetes_asyncio import client
        from kubernetes_asyncio.client.exceptions import ApiException

        api = await self._api_client()
        host = api.configuration.host
        started = time.perf_counter()
        try:
            async with api:
                info = await asyncio.wait_for(client.VersionApi(api).get_code(), self.timeout)
        except ApiException as exc:
            raise BackendFailed(f"Kubernetes API at {host} answered {exc.status} {exc.reason}") from exc
        except TimeoutError as exc:
            raise Unreachable(f"Kubernetes API at {host} did not answer within {self.timeout:g} s") from exc
        except OSError as exc:
            raise Unreachable(f"Kubernetes API at {host} cannot be reached: {exc}") from exc
        rtt = (time.perf_counter() - started) * 1000
        return Ping(self.backend, f"Kubernetes {info.git_version}", rtt, host)
