"""A loopback Pterodactyl application API for what the console uses: list nodes (the
ping), read and delete servers, with the panel's bearer check and error shape."""

from __future__ import annotations

import secrets

from aiohttp import web

from console.sandbox.loopback import LoopbackServer


def _errors(status: int, code: str, detail: str) -> web.Response:
    return web.json_response(
        {"errors": [{"code": code, "status": str(status), "detail": detail}]}, status=status
    )


class FakePanel(LoopbackServer):
    name = "fake-panel"

    def __init__(self, app_key: str = "ptla_fake_application_key"):
        super().__init__()
        self.app_key = app_key
        self.deleted: set[int] = set()

    def routes(self, app: web.Application) -> None:
        app.middlewares.append(self._auth)
        app.router.add_get("/api/application/nodes", self._nodes)
        app.router.add_get("/api/application/servers/{id:\\d+}", self._server)
        app.router.add_delete("/api/application/servers/{id:\\d+}", self._delete)

    @web.middleware
    async def _auth(self, request: web.Request, handler):
        if request.headers.get("Authorization") != f"Bearer {self.app_key}":
            return _errors(401, "AuthenticationException", "Unauthenticated.")
        return await handler(request)

    async def _nodes(self, request: web.Request) -> web.Response:
        nodes = [
            {"object": "node", "attributes": {"id": i, "name": f"node-{i}", "memory": 262144}} for i in (1, 2)
        ]
        pagination = {"total": 2, "count": 2, "per_page": 50, "current_page": 1, "total_pages": 1}
        return web.json_response({"object": "list", "data": nodes, "meta": {"pagination": pagination}})

    async def _server(self, request: web.Request) -> web.Response:
        server_id = int(request.match_info["id"])
        if server_id in self.deleted:
            return _errors(404, "NotFoundHttpException", "The requested resource could not be found.")
        attributes = {"id": server_id, "identifier": secrets.token_hex(4), "name": f"server-{server_id}",
                      "suspended": False}  # fmt: skip
        return web.json_response({"object": "server", "attributes": attributes})

    async def _delete(self, request: web.Request) -> web.Response:
        server_id = int(request.match_info["id"])
        if server_id in self.deleted:
            return _errors(404, "NotFoundHttpException", "The requested resource could not be found.")
        self.deleted.add(server_id)
        return web.Response(status=204)
