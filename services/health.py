"""Backend reachability: the Ping every service's ping() returns, the shared HTTP probe,
and the AGIS bot's health endpoints (/health, /ready, /version)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from services.errors import BackendFailed, NotConfigured, Unreachable
from services.polling import Freshness
from services.text import mask_url, mask_urls_in


@dataclass(frozen=True)
class Ping:
    """A backend answered: who, which version, how fast, and where (never with secrets)."""

    backend: str
    version: str
    rtt_ms: float
    where: str = ""


async def http_probe(
    backend: str,
    label: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    timeout: float = 5.0,
    ok_statuses: range = range(200, 300),
) -> tuple[int, Any, float]:
    """(status, parsed JSON body or None, round-trip ms) of one request.

    Raises Unreachable when nothing answers and BackendFailed for a status outside
    `ok_statuses`, each naming `label` (never the headers, which carry keys, nor the
    credentials `url` may carry: give a `label` built with mask_url).
    """
    import httpx

    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.request(method, url, headers=headers)
    except httpx.ConnectError as exc:
        said = mask_urls_in(str(exc), url)
        raise Unreachable(f"{label} refused the connection or could not be resolved ({said})") from exc
    except httpx.TimeoutException as exc:
        raise Unreachable(f"{label} did not answer within {timeout:g} s") from exc
    except httpx.HTTPError as exc:
        raise Unreachable(f"{label}: {type(exc).__name__}: {mask_urls_in(str(exc), url)}") from exc
    rtt = (time.perf_counter() - started) * 1000
    if response.status_code in (401, 403):
        raise BackendFailed(f"{label} rejected the credentials (HTTP {response.status_code})")
    if response.status_code not in ok_statuses:
        raise BackendFailed(f"{label} answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        body = None
    return response.status_code, body, rtt


class BotHealthService:
    """The AGIS bot's HTTP endpoints: /health, /ready, /version."""

    backend = "bot"

    def __init__(self, base_url: str | None, timeout: float = 5.0):
        self.base_url = base_url
        self.timeout = timeout

    @property
    def configured(self) -> bool:
        return bool(self.base_url)

    async def ping(self) -> Ping:
        """The bot's /version and round-trip; raises ServiceError."""
        if not self.base_url:
            raise NotConfigured("bot health URL is not configured (OPSCONSOLE_BOT_URL)")
        _, body, rtt = await http_probe(
            self.backend, f"AGIS bot at {mask_url(self.base_url)}", f"{self.base_url}/version",
            timeout=self.timeout,
        )  # fmt: skip
        version = "unknown version"
        if isinstance(body, dict):
            version = str(body.get("version") or body.get("Version") or version)
        return Ping(self.backend, version, rtt, mask_url(self.base_url))

    async def endpoints(self) -> list[BotEndpoint]:
        """/health, /ready and /version as the bot answers them now (a 503 from /ready is
        an answer, not a failure); raises NotConfigured only."""
        if not self.base_url:
            raise NotConfigured("bot health URL is not configured (OPSCONSOLE_BOT_URL)")
        found = []
        for path in ("/health", "/ready", "/version"):
            try:
                status, body, _ = await http_probe(
                    self.backend, f"AGIS bot {path}", f"{self.base_url}{path}", timeout=self.timeout,
                    ok_statuses=range(200, 600),
                )  # fmt: skip
            except (Unreachable, BackendFailed) as exc:
                found.append(BotEndpoint(path, False, None, str(exc)))
                continue
            found.append(BotEndpoint(path, 200 <= status < 300, status, _short(body)))
        return found


@dataclass(frozen=True)
class BotEndpoint:
    """One of the bot's health endpoints as last read: its path, whether it said yes,
    and what it said (status and the body's short form, or why it did not answer)."""

    path: str
    ok: bool
    status: int | None
    said: str


def _short(body: Any) -> str:
    """What a health body says, briefly: the version and commit, why it is not ready, or
    its fields."""
    if isinstance(body, dict):
        if "version" in body:
            return " ".join(str(body[k]) for k in ("version", "commit") if k in body)
        if "reason" in body:
            return str(body["reason"])[:60]
        return ", ".join(f"{k}={v}" for k, v in body.items() if k != "ready")[:60]
    return "" if body is None else str(body)[:60]


@dataclass(frozen=True)
class Probe:
    """One backend as the doctor and the header badges see it."""

    name: str  # "postgres"
    short: str  # "pg": the badge label
    configured: bool
    hint: str  # how to configure it, for "not configured"
    ping: Callable[[], Awaitable[Ping]]


BackendState = Literal["ok", "stale", "down", "not configured"]


@dataclass(frozen=True)
class BackendStatus:
    """What a badge and the backends table show for one backend."""

    name: str
    short: str
    state: BackendState
    age: float | None = None  # seconds since the last good answer
    version: str = ""  # from the last good answer
    error: str = ""  # why the last check failed; the hint when not configured
    rtt_ms: float | None = None
    where: str = ""


def backend_status(
    probe: Probe, freshness: Freshness | None, last_ping: Ping | None, interval: float
) -> BackendStatus:
    """A badge's state from the probe's poll history.

    ok: answered recently. stale: the last check failed once, or the last answer is
    older than two intervals (a check is slow). down: never answered, or failed twice
    in a row.
    """
    if not probe.configured:
        return BackendStatus(probe.name, probe.short, "not configured", error=probe.hint)
    if freshness is None or (freshness.age is None and freshness.error is None):
        return BackendStatus(probe.name, probe.short, "stale", error="checking…")
    version = last_ping.version if last_ping else ""
    rtt = last_ping.rtt_ms if last_ping else None
    where = last_ping.where if last_ping else ""
    if freshness.error is not None:
        down = freshness.age is None or freshness.failures >= 2
        state: BackendState = "down" if down else "stale"
        return BackendStatus(
            probe.name, probe.short, state, freshness.age, version, freshness.error, None, where
        )
    state = "stale" if freshness.age is not None and freshness.age > 2 * interval + 1 else "ok"
    return BackendStatus(probe.name, probe.short, state, freshness.age, version, "", rtt, where)
