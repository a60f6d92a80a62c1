"""MetricsService: Prometheus (prometheus-api-client, run in a thread) and Alertmanager
(API v2 over httpx)."""

from __future__ import annotations

from services.errors import NotConfigured
from services.health import Ping, http_probe
from services.text import mask_url


class MetricsService:
    backend = "prometheus"

    def __init__(self, prometheus_url: str | None, alertmanager_url: str | None, timeout: float = 5.0):
        self.prometheus_url = prometheus_url
        self.alertmanager_url = alertmanager_url
        self.timeout = timeout

    async def ping_prometheus(self) -> Ping:
        """Prometheus' build version and round-trip; raises ServiceError."""
        if not self.prometheus_url:
            raise NotConfigured("Prometheus is not configured (PROMETHEUS_URL)")
        url = f"{self.prometheus_url}/api/v1/status/buildinfo"
        _, body, rtt = await http_probe(
            "prometheus", f"Prometheus at {mask_url(self.prometheus_url)}", url, timeout=self.timeout
        )
        version = (body or {}).get("data", {}).get("version", "unknown version")
        return Ping("prometheus", f"Prometheus {version}", rtt, mask_url(self.prometheus_url))

    async def ping_alertmanager(self) -> Ping:
        """Alertmanager's version (API v2 /status) and round-trip; raises ServiceError."""
        if not self.alertmanager_url:
            raise NotConfigured("Alertmanager is not configured (ALERTMANAGER_URL)")
        url = f"{self.alertmanager_url}/api/v2/status"
        _, body, rtt = await http_probe(
            "alertmanager", f"Alertmanager at {mask_url(self.alertmanager_url)}", url, timeout=self.timeout
        )
        version = (body or {}).get("versionInfo", {}).get("version", "unknown version")
        return Ping("alertmanager", f"Alertmanager {version}", rtt, mask_url(self.alertmanager_url))
