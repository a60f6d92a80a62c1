"""ProvisionerService: the provisioning functions (servers-provision,
create-pterodactyl-user) over httpx with the service-role bearer."""

from __future__ import annotations

from services.errors import NotConfigured
from services.health import Ping, http_probe


class ProvisionerService:
    backend = "provisioner"

    def __init__(self, base_url: str | None, service_key: str | None, timeout: float = 20.0):
        self.base_url = base_url
        self._service_key = service_key
        self.timeout = timeout

    @property
    def configured(self) -> bool:
        return bool(self.base_url)

    async def ping(self) -> Ping:
        """A CORS preflight on servers-provision: proves the functions answer without
        invoking one. Raises ServiceError."""
        if not self.base_url:
            raise NotConfigured("the provisioning functions are not configured (PROVISIONER_URL)")
        status, _, rtt = await http_probe(
            self.backend, f"provisioning functions at {self.base_url}",
            f"{self.base_url}/servers-provision", method="OPTIONS", timeout=5.0,
            ok_statuses=range(200, 500),
        )  # fmt: skip
        return Ping(self.backend, f"functions answer (HTTP {status})", rtt, self.base_url)
