"""A loopback AGIS bot: its health, readiness and version endpoints, with readiness the
sandbox can switch off (`fake.ready = False`) to show a bot that lost its database, its
Prometheus metrics (the manual's `agis_bot_*`) growing at rates the sandbox sets, and a
`fake.down = True` that makes every endpoint answer 503 (Prometheus then sees `up == 0`).
`fake.pods = (ready, desired)` is the bot's deployment as the sandbox sees it: /health and
/ready say so, and with no pod ready nothing scrapes /metrics."""

from __future__ import annotations

import threading
import time

from aiohttp import web

from console.sandbox.loopback import LoopbackServer

# Prometheus' text exposition format, as client libraries label it.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
COMMAND_SHARES = (("servers", 0.5), ("status", 0.3), ("export", 0.2))


def _rate_property(counter: str) -> property:
    def get(self: FakeBot) -> float:
        with self._lock:
            return self._rates[counter]

    def set_(self: FakeBot, per_second: float) -> None:
        self.set_rate(counter, per_second)

    return property(get, set_, doc=f"How many `{counter}` the bot counts per second.")


class FakeBot(LoopbackServer):
    name = "fake-bot"

    commands_per_second = _rate_property("commands")
    errors_per_second = _rate_property("errors")
    webhook_failures_per_second = _rate_property("webhook_failures")

    def __init__(self, version: str = "v1.7.3", commit: str = "3f2c1ab", built: str = "2026-11-02T10:00:00Z"):
        super().__init__()
        self.ready = True
        self.down = False
        self.version = {"version": version, "commit": commit, "built": built}
        self.database_connected = True
        self.pods: tuple[int, int] | None = None  # (ready, desired) pods; None: not watched
        self.active_servers = {"minecraft": 14, "rust": 9, "valheim": 6, "ark": 5, "cs2": 4}
        self.users = 1843
        self._lock = threading.Lock()
        self._at = time.monotonic()
        self._rates = {"commands": 3.0, "errors": 0.05, "webhook_failures": 0.0}
        self._totals = dict.fromkeys(self._rates, 0.0)

    def set_rate(self, counter: str, per_second: float) -> None:
        """Change how fast `commands`, `errors` or `webhook_failures` grow (counters stay
        monotonic: what accrued at the old rate is kept). Raises KeyError for another name."""
        if per_second < 0:
            raise ValueError(f"a counter cannot shrink ({counter} at {per_second}/s)")
        with self._lock:
            if counter not in self._rates:
                raise KeyError(counter)
            self._accrue()
            self._rates[counter] = float(per_second)

    def _accrue(self) -> dict[str, float]:
        now = time.monotonic()
        for name, rate in self._rates.items():
            self._totals[name] += rate * (now - self._at)
        self._at = now
        return dict(self._totals)

    def routes(self, app: web.Application) -> None:
        app.middlewares.append(self._unless_down)
        app.router.add_get("/health", self._health)
        app.router.add_get("/ready", self._ready)
        app.router.add_get("/version", self._version)
        app.router.add_get("/metrics", self._metrics)

    @web.middleware
    async def _unless_down(self, request: web.Request, handler) -> web.StreamResponse:
        if self.down:
            return web.json_response({"error": "bot is down"}, status=503)
        if request.path == "/metrics" and self.pods is not None and self.pods[0] == 0:
            # No pod behind the service: the scrape fails, as Prometheus would see it.
            return web.json_response({"error": "no ready agis-bot pod"}, status=503)
        return await handler(request)

    def _pods_problem(self) -> str:
        if self.pods is None:
            return ""
        ready, desired = self.pods
        if ready >= desired and ready > 0:
            return ""
        return f"agis-bot {ready}/{desired} pods ready"

    async def _health(self, request: web.Request) -> web.Response:
        database = "connected" if self.database_connected else "disconnected"
        body = {"status": "ok", "database": database, "discord": "connected"}
        problem = self._pods_problem()
        reasons = [r for r in (problem, "" if self.database_connected else "database not connected") if r]
        if problem:
            body["pods"] = f"{self.pods[0]}/{self.pods[1]} ready"
        if not self.database_connected or (self.pods is not None and self.pods[0] == 0):
            return web.json_response(
                {**body, "status": "unhealthy", "reason": "; ".join(reasons)}, status=503
            )
        if reasons:
            return web.json_response({**body, "status": "degraded", "reason": "; ".join(reasons)})
        return web.json_response(body)

    async def _ready(self, request: web.Request) -> web.Response:
        if self.pods and self.pods[0] == 0:
            return web.json_response({"ready": False, "reason": self._pods_problem()}, status=503)
        if self.ready and self.database_connected:
            return web.json_response({"ready": True})
        return web.json_response({"ready": False, "reason": "database not connected"}, status=503)

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response(self.version)

    async def _metrics(self, request: web.Request) -> web.Response:
        with self._lock:
            totals = self._accrue()
        commands = totals["commands"]
        servers = list(self.active_servers.items())
        lines = [
            "# HELP agis_bot_commands_total Total commands executed (by command name)",
            "# TYPE agis_bot_commands_total counter",
            *(
                f'agis_bot_commands_total{{command="{c}"}} {commands * share:.3f}'
                for c, share in COMMAND_SHARES
            ),
            "# HELP agis_bot_errors_total Total errors encountered",
            "# TYPE agis_bot_errors_total counter",
            f"agis_bot_errors_total {totals['errors']:.3f}",
            "# HELP agis_bot_stripe_webhook_failures_total Stripe webhook deliveries that failed",
            "# TYPE agis_bot_stripe_webhook_failures_total counter",
            f"agis_bot_stripe_webhook_failures_total {totals['webhook_failures']:.3f}",
            "# HELP agis_bot_servers_total Active game servers (by game type)",
            "# TYPE agis_bot_servers_total gauge",
            *(f'agis_bot_servers_total{{game="{g}"}} {n}' for g, n in servers),
            "# HELP agis_bot_users_total Registered users",
            "# TYPE agis_bot_users_total gauge",
            f"agis_bot_users_total {self.users}",
            "# HELP agis_bot_database_connected Whether the bot reaches PostgreSQL (1) or not (0)",
            "# TYPE agis_bot_database_connected gauge",
            f"agis_bot_database_connected {1 if self.database_connected else 0}",
        ]
        body = ("\n".join(lines) + "\n").encode()
        return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})
