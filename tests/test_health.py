"""Backend probes (what the doctor and the badges show) against loopback HTTP servers,
and the badge state derived from a probe's history."""

from __future__ import annotations

import pytest
from aiohttp import web

from services.errors import BackendFailed, Unreachable
from services.health import BotHealthService, Ping, Probe, backend_status
from services.metrics import MetricsService
from services.panel import PanelService
from services.polling import Freshness
from services.provisioner import ProvisionerService

PANEL_KEY = "ptla_test_key_never_shown"


@pytest.fixture
async def backend_server():
    """One aiohttp server on 127.0.0.1 answering like the panel, the bot, Prometheus,
    Alertmanager and the functions do, for their probe endpoints."""

    async def nodes(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {PANEL_KEY}":
            return web.json_response({"errors": [{"code": "AuthenticationException"}]}, status=401)
        return web.json_response({"data": [], "meta": {"pagination": {"total": 7}}})

    def answer(body: dict | None = None, status: int = 200):
        async def handler(_request: web.Request) -> web.Response:
            return web.json_response(body, status=status) if body is not None else web.Response(status=status)

        return handler

    app = web.Application()
    app.router.add_get("/api/application/nodes", nodes)
    app.router.add_get("/version", answer({"version": "v1.7.0", "commit": "abc"}))
    app.router.add_get(
        "/api/v1/status/buildinfo", answer({"status": "success", "data": {"version": "2.42.0"}})
    )
    app.router.add_get("/api/v2/status", answer({"versionInfo": {"version": "0.25.0"}}))
    app.router.add_route("OPTIONS", "/functions/v1/servers-provision", answer(status=200))
    app.router.add_get("/broken/version", answer(status=503))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_panel_probe_proves_the_key_and_never_shows_it(backend_server):
    ping = await PanelService(backend_server, PANEL_KEY).ping()
    assert ping.version == "application API, 7 nodes"
    with pytest.raises(BackendFailed, match="rejected the credentials") as caught:
        await PanelService(backend_server, "ptla_wrong").ping()
    assert "ptla_wrong" not in str(caught.value)


async def test_bot_prometheus_alertmanager_and_functions_report_versions(backend_server):
    assert (await BotHealthService(backend_server).ping()).version == "v1.7.0"
    metrics = MetricsService(backend_server, backend_server)
    assert (await metrics.ping_prometheus()).version == "Prometheus 2.42.0"
    assert (await metrics.ping_alertmanager()).version == "Alertmanager 0.25.0"
    ping = await ProvisionerService(f"{backend_server}/functions/v1", "key").ping()
    assert "HTTP 200" in ping.version


async def test_a_server_error_and_a_closed_port_are_told_apart(backend_server, unused_tcp_port):
    with pytest.raises(BackendFailed, match="answered HTTP 503"):
        await BotHealthService(f"{backend_server}/broken").ping()
    with pytest.raises(Unreachable, match="refused the connection"):
        await BotHealthService(f"http://127.0.0.1:{unused_tcp_port}").ping()


async def _never() -> Ping:
    raise AssertionError("not called")


PROBE = Probe("postgres", "pg", True, "set DATABASE_URL", _never)
PING = Ping("postgres", "PostgreSQL 15.18", 3.0, "db:5432/agis")


def fresh(age, error=None, failures=0) -> Freshness:
    return Freshness(age=age, stale=error is not None, error=error, failures=failures, polling=False)


@pytest.mark.parametrize(
    ("freshness", "state"),
    [
        (None, "stale"),  # never checked yet: "checking..."
        (fresh(2.0), "ok"),
        (fresh(50.0), "stale"),  # the last answer is older than two intervals
        (fresh(20.0, "refused", failures=1), "stale"),
        (fresh(40.0, "refused", failures=2), "down"),
        (fresh(None, "refused", failures=1), "down"),  # never answered
    ],
)
def test_badge_state(freshness, state):
    assert backend_status(PROBE, freshness, PING, interval=15).state == state


def test_unconfigured_backend_is_not_an_error():
    probe = Probe("kube", "k8s", False, "set KUBECONFIG", _never)
    status = backend_status(probe, None, None, interval=15)
    assert status.state == "not configured" and status.error == "set KUBECONFIG"
