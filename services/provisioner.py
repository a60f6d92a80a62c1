"""ProvisionerService: the provisioning functions (servers-provision,
create-pterodactyl-user) over httpx with the service-role bearer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.errors import NotConfigured
from services.health import Ping, http_probe
from services.http import error_text, request_json
from services.text import mask_url

PROVISION = "servers-provision"
PANEL_USER = "create-pterodactyl-user"


@dataclass(frozen=True)
class FunctionReply:
    """What a function answered: ok or the error it gave, and its JSON body."""

    status: int
    ok: bool
    error: str | None
    body: dict[str, Any] = field(repr=False, default_factory=dict)  # may hold a password


class ProvisionerService:
    backend = "provisioner"

    def __init__(self, base_url: str | None, service_key: str | None, timeout: float = 20.0):
        self.base_url = base_url
        self._service_key = service_key
        self.timeout = timeout

    @property
    def configured(self) -> bool:
        return bool(self.base_url)

    def _require(self) -> str:
        if not self.base_url:
            raise NotConfigured(
                "the provisioning functions are not configured (PROVISIONER_URL)", backend=self.backend
            )
        return self.base_url.rstrip("/")

    def call_text(self, function: str, body: dict[str, Any]) -> str:
        """The exact call, as the preview shows it (the bearer masked)."""
        import json

        return (
            f"POST {mask_url(self.base_url or '<PROVISIONER_URL>').rstrip('/')}/{function}\n"
            f"Authorization: Bearer ****(service role)\n{json.dumps(body)}"
        )

    async def invoke(self, function: str, body: dict[str, Any]) -> FunctionReply:
        """POST one function with the service-role bearer. Raises Unreachable /
        BackendFailed (credentials); a function's own error comes back in the reply."""
        url = f"{self._require()}/{function}"
        status, parsed = await request_json(
            self.backend, f"{function} at {mask_url(self.base_url)}", "POST", url,
            headers={"Authorization": f"Bearer {self._service_key}"}, body=body, timeout=self.timeout,
        )  # fmt: skip
        parsed = parsed if isinstance(parsed, dict) else {}
        ok = 200 <= status < 300
        return FunctionReply(status, ok, None if ok else error_text(status, parsed), parsed)

    async def ping(self) -> Ping:
        """A CORS preflight on servers-provision: proves the functions answer without
        invoking one. Raises ServiceError."""
        if not self.base_url:
            raise NotConfigured("the provisioning functions are not configured (PROVISIONER_URL)")
        status, _, rtt = await http_probe(
            self.backend, f"provisioning functions at {mask_url(self.base_url)}",
            f"{self.base_url}/servers-provision", method="OPTIONS", timeout=5.0,
            ok_statuses=range(200, 500),
        )  # fmt: skip
        return Ping(self.backend, f"functions answer (HTTP {status})", rtt, mask_url(self.base_url))
