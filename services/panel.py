"""PanelService: the Pterodactyl application API (httpx, PTERO_APP_KEY bearer)."""

from __future__ import annotations

from services.errors import NotConfigured
from services.health import Ping, http_probe


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

    async def ping(self) -> Ping:
        """Lists one node to prove the key works; raises ServiceError."""
        if not self.configured:
            raise NotConfigured("the panel is not configured (PANEL_URL and PTERO_APP_KEY)")
        _, body, rtt = await http_probe(
            self.backend, f"Pterodactyl panel at {self.base_url}",
            f"{self.base_url}/api/application/nodes?per_page=1",
            headers=self._headers(), timeout=self.timeout,
        )  # fmt: skip
        total = (body or {}).get("meta", {}).get("pagination", {}).get("total")
        version = "application API" + (f", {total} nodes" if total is not None else "")
        return Ping(self.backend, version, rtt, self.base_url or "")
