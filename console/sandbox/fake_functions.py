"""A loopback stand-in for the provisioning functions (servers-provision,
create-pterodactyl-user): aiohttp on 127.0.0.1 in its own thread, reading and writing the
same database the console uses, failing the ways the runbooks say it can."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections import Counter

import asyncpg
from aiohttp import web

from console.sandbox.loopback import LoopbackServer

LIVE = ("paid", "provisioning", "installing", "provisioned", "active")


class FakeFunctions(LoopbackServer):
    """`fail_next(kind)` queues one failure: 'no_nodes' or '422'. A user without a panel
    account always fails with "External account not found", as the real function does."""

    name = "fake-functions"

    def __init__(self, dsn: str, service_key: str = "fake-service-role-key", provision_delay: float = 2.0):
        super().__init__()
        self.dsn = dsn
        self.service_key = service_key
        self.provision_delay = provision_delay
        self.calls: Counter[str] = Counter()
        self._failures: list[str] = []
        self._pool: asyncpg.Pool | None = None

    def fail_next(self, kind: str) -> None:
        self._failures.append(kind)

    async def setup(self) -> None:
        self._pool = await asyncpg.create_pool(self.dsn, min_size=0, max_size=2)

    async def teardown(self) -> None:
        if self._pool:
            await self._pool.close()

    def routes(self, app: web.Application) -> None:
        app.router.add_route("OPTIONS", "/{name}", self._options)
        app.router.add_post("/servers-provision", self._provision)
        app.router.add_post("/create-pterodactyl-user", self._panel_user)

    # -- handlers -------------------------------------------------------------------

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.service_key}"

    async def _options(self, request: web.Request) -> web.Response:
        return web.Response(status=204, headers={"Access-Control-Allow-Origin": "*"})

    async def _body_id(self, request: web.Request, key: str) -> str | None:
        try:
            body = await request.json()
            return str(uuid.UUID(str(body[key])))
        except (ValueError, KeyError, TypeError):
            return None

    async def _provision(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"error": "Invalid JWT"}, status=401)
        order_id = await self._body_id(request, "order_id")
        if order_id is None:
            return web.json_response({"error": "order_id is required"}, status=400)
        self.calls[order_id] += 1
        assert self._pool is not None
        async with self._pool.acquire() as conn, conn.transaction():
            order = await conn.fetchrow(
                "SELECT o.status, o.pterodactyl_server_id, p.ram_gb,"
                " EXISTS (SELECT 1 FROM external_accounts x WHERE x.user_id = o.user_id) AS account"
                " FROM orders o JOIN plans p ON p.id = o.plan_id WHERE o.id = $1::uuid FOR UPDATE OF o",
                order_id,
            )
            if order is None:
                return web.json_response({"error": "Order not found"}, status=404)
            if order["status"] not in ("paid", "error") or order["pterodactyl_server_id"]:
                return web.json_response(
                    {"error": f"Order is not awaiting provisioning (status {order['status']})"}, status=409
                )
            error = None
            if not order["account"]:
                error = "External account not found"
            elif self._failures:
                error = {"no_nodes": "No available nodes"}.get(
                    self._failures.pop(0), "Failed to create server: 422"
                )
            node = None
            if error is None:
                node = await conn.fetchval(
                    "SELECT n.id FROM ptero_nodes n LEFT JOIN orders o ON o.node_id = n.id AND o.status = ANY($2)"
                    " LEFT JOIN plans p ON p.id = o.plan_id WHERE n.enabled GROUP BY n.id"
                    " HAVING n.max_ram_gb - n.reserved_headroom_gb - COALESCE(SUM(p.ram_gb), 0) >= $1"
                    " ORDER BY n.max_ram_gb - n.reserved_headroom_gb - COALESCE(SUM(p.ram_gb), 0) DESC LIMIT 1",
                    order["ram_gb"], list(LIVE),
                )  # fmt: skip
                if node is None:
                    error = "No available nodes"
            if error:
                await conn.execute(
                    "UPDATE orders SET status = 'error', error_message = $2, updated_at = now() WHERE id = $1::uuid",
                    order_id, error,
                )  # fmt: skip
                return web.json_response({"error": error}, status=500)
            await conn.execute(
                "UPDATE orders SET status = 'provisioning', node_id = $2, error_message = NULL, updated_at = now()"
                " WHERE id = $1::uuid",
                order_id, node,
            )  # fmt: skip
        asyncio.get_running_loop().create_task(self._finish(order_id))
        return web.json_response({"success": True, "order_id": order_id, "status": "provisioning"})

    async def _finish(self, order_id: str) -> None:
        await asyncio.sleep(self.provision_delay)
        assert self._pool is not None
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE orders SET status = 'provisioned', updated_at = now(),"
                " pterodactyl_server_id = (90000 + (SELECT count(*) FROM orders"
                "   WHERE pterodactyl_server_id IS NOT NULL))::text,"
                " pterodactyl_server_identifier = $2 WHERE id = $1::uuid AND status = 'provisioning'",
                order_id, secrets.token_hex(4),
            )  # fmt: skip
            await conn.execute('SELECT pg_notify(\'ops_events\', \'{"kind": "orders", "payload": {}}\')')

    async def _panel_user(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"error": "Invalid JWT"}, status=401)
        user_id = await self._body_id(request, "userId")
        if user_id is None:
            return web.json_response({"error": "userId is required"}, status=400)
        self.calls[f"user:{user_id}"] += 1
        assert self._pool is not None
        async with self._pool.acquire() as conn, conn.transaction():
            email = await conn.fetchval("SELECT email FROM users WHERE id = $1::uuid", user_id)
            if email is None:
                return web.json_response({"error": "User not found"}, status=404)
            if await conn.fetchval("SELECT 1 FROM external_accounts WHERE user_id = $1::uuid", user_id):
                return web.json_response({"error": "User already has a panel account"}, status=409)
            ptero_id = await conn.fetchval(
                "SELECT coalesce(max(pterodactyl_user_id), 5000) + 1 FROM external_accounts"
            )
            username = email.split("@")[0].replace(".", "_")
            await conn.execute(
                "INSERT INTO external_accounts (user_id, pterodactyl_user_id, panel_username) VALUES ($1::uuid, $2, $3)",
                user_id, ptero_id, username,
            )  # fmt: skip
        return web.json_response(
            {"success": True, "pterodactyl_user_id": ptero_id, "username": username,
             "password": secrets.token_urlsafe(12)}
        )  # fmt: skip
