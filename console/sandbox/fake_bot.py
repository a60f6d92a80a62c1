"""A loopback AGIS bot: its health, readiness and version endpoints, with readiness the
sandbox can switch off (`fake.ready = False`) to show a bot that lost its database."""

from __future__ import annotations

from aiohttp import web

from console.sandbox.loopback import LoopbackServer


class FakeBot(LoopbackServer):
    name = "fake-bot"

    def __init__(self, version: str = "v1.7.3", commit: str = "3f2c1ab", built: str = "2026-11-02T10:00:00Z"):
        super().__init__()
        self.ready = True
        self.version = {"version": version, "commit": commit, "built": built}

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/health", self._health)
        app.router.add_get("/ready", self._ready)
        app.router.add_get("/version", self._version)

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "database": "connected", "discord": "connected"})

    async def _ready(self, request: web.Request) -> web.Response:
        if self.ready:
            return web.json_response({"ready": True})
        return web.json_response({"ready": False, "reason": "database not connected"}, status=503)

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response(self.version)
