"""PanelService: the Pterodactyl application API (httpx, PTERO_APP_KEY bearer)."""

from __future__ import annotations

from services.errors import BackendFailed, NotConfigured
from services.health import Ping, http_probe
from services.http import error_text, request_json
from services.text import mask_url


class PanelService:
    backend = "panel"

    def __init__(self, base_url: str | None, app_key: str | None, timeout: float = 5.0):
        self.base_url = base_url
        self._app_key = app_key
        self.timeout = timeout

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self._app_key)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._app_key}", "Accept": "application/json"}

    def delete_call_text(self, server_id: str) -> str:
        base = mask_url(self.base_url or "<PANEL_URL>").rstrip("/")
        return f"DELETE {base}/api/application/servers/{server_id}\nAuthorization: Bearer ptla_****"

    async def delete_server(self, server_id: str) -> bool:
        """Delete the panel server; True when deleted now, False when it was already gone.
        Raises NotConfigured, Unreachable or BackendFailed."""
        if not self.configured:
            raise NotConfigured("the panel is not configured (PANEL_URL and PTERO_APP_KEY)", backend="panel")
        url = f"{self.base_url.rstrip('/')}/api/application/servers/{int(server_id)}"
        status, body = await request_json(
            self.backend, f"Pterodactyl panel at {mask_url(self.base_url)}", "DELETE", url,
            headers=self._headers(), timeout=self.timeout,
        )  # fmt: skip
        if status == 404:
            return False
        if not 200 <= status < 300:
            raise BackendFailed(
                f"the panel refused to delete server {server_id}: {error_text(status, body)}", backend="panel"
            )
        return True

    async def ping(self) -> Ping:
        """Lists one node to prove the key works; raises ServiceError."""
        if not self.configured:
            raise NotConfigured("the panel is not configured (PANEL_URL and PTERO_APP_KEY)")
        _, body, rtt = await http_probe(
            self.backend, f"Pterodactyl panel at {mask_url(self.base_url)}",
            f"{self.base_url}/api/application/nodes?per_page=1",
            headers=self._headers(), timeout=self.timeout,
        )  # fmt: skip
        total = (body or {}).get("meta", {}).get("pagination", {}).get("total")
        version = "application API" + (f", {total} nodes" if total is not None else "")
        return Ping(self.backend, version, rtt, mask_url(self.base_url))
