"""AlertsService: what is firing, from three sources that each degrade alone: Prometheus'
`ALERTS` series (prometheus-api-client, synchronous, so run in a thread), Alertmanager's
v2 API (silenced and inhibited alerts, silences), and the runbooks' own alert conditions
evaluated in SQL. Also the last hour of the AGIS metrics for the charts."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from services.errors import BackendFailed, NotConfigured, ServiceError, Unreachable
from services.http import error_text, request_json
from services.isotime import parse_iso
from services.postgres import PostgresService
from services.text import mask_url, mask_urls_in

# The charts: title -> PromQL over the AGIS bot's metrics (the manual's Key Panels).
CHARTS = {
    "errors/s": "sum(rate(agis_bot_errors_total[5m]))",
    "commands/s": "sum(rate(agis_bot_commands_total[5m]))",
    "webhook failures/s": "sum(rate(agis_bot_stripe_webhook_failures_total[5m]))",
    "active servers": "sum(agis_bot_servers_total)",
}
MIN_ERRORS = 2  # "multiple orders in error status"

SLOW_CHECK_EVERY = 60.0  # seconds between reads of the backup bucket and of Stripe's endpoints
BACKUP_RPO = timedelta(hours=24)


@dataclass(frozen=True)
class Alert:
    """One alert, wherever it comes from."""

    name: str
    state: str  # firing | pending (Prometheus); active | suppressed (Alertmanager); firing (console)
    severity: str
    labels: dict[str, str]
    since: datetime | None
    source: str  # prometheus | alertmanager | console
    summary: str = ""
    fingerprint: str = ""
    silenced_by: tuple[str, ...] = ()
    inhibited_by: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Stable identity across polls: source, name and the labels that tell it apart."""
        rest = ",".join(
            f"{k}={v}" for k, v in sorted(self.labels.items()) if k not in ("alertname", "alertstate")
        )
        return f"{self.source}:{self.name}:{rest}"

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "state": self.state, "severity": self.severity, "labels": self.labels,
            "since": self.since.isoformat() if self.since else None, "source": self.source,
            "summary": self.summary, "fingerprint": self.fingerprint,
            "silenced_by": list(self.silenced_by), "inhibited_by": list(self.inhibited_by),
        }  # fmt: skip


@dataclass(frozen=True)
class Silence:
    id: str
    state: str  # active | pending | expired
    matchers: tuple[str, ...]  # "alertname=HighErrorRate"
    created_by: str
    comment: str
    starts_at: datetime | None
    ends_at: datetime | None


@dataclass(frozen=True)
class Series:
    """One chart's points over the last hour (values only, evenly spaced)."""

    title: str
    query: str
    values: list[float] = field(default_factory=list)

    @property
    def last(self) -> float | None:
        return self.values[-1] if self.values else None


def _matcher_text(m: dict[str, Any]) -> str:
    """'alertname=HighErrorRate', 'job!=x', 'node=~fsn.*' as amtool writes them."""
    op = ("=" if m.get("isEqual", True) else "!") + ("~" if m.get("isRegex") else "")
    op = "!=" if op == "!" else op
    return f"{m['name']}{op}{m['value']}"


def matchers_for(alert: Alert) -> list[dict[str, Any]]:
    """Equality matchers on every label of `alert`: a silence for this alert and no other."""
    labels = {k: v for k, v in alert.labels.items() if k != "alertstate"}
    labels.setdefault("alertname", alert.name)
    return [{"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in sorted(labels.items())]


class AlertsService:
    def __init__(self, prometheus_url: str | None, alertmanager_url: str | None, postgres: PostgresService,
                 timeout: float = 5.0):  # fmt: skip
        self.prometheus_url = prometheus_url
        self.alertmanager_url = alertmanager_url
        self.postgres = postgres
        self.timeout = timeout
        # The backups' status (BackupsService.status), set by the wiring: the RPO and the
        # monthly drill are alerts too. Listing the bucket is read at most once a minute.
        self.backup_status: Callable[[], Awaitable[Any]] | None = None
        self._read_at: dict[str, tuple[float, Any]] = {}  # source -> (when read, what it said)
        # Stripe's webhook endpoints (ReconcileService.endpoints), set by the wiring: a disabled
        # endpoint is an alert (Stripe delivers nothing to it). Read at most once a minute.
        self.webhook_endpoints: Callable[[], Awaitable[list[Any]]] | None = None

    # -- Prometheus ---------------------------------------------------------------------

    def _prometheus(self):  # -> PrometheusConnect, in the worker thread
        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        # No retries: a Prometheus that is down should say so now, not after 7 s of backoff.
        return PrometheusConnect(self.prometheus_url, disable_ssl=True, retry=Retry(total=0),
                                 timeout=self.timeout)  # fmt: skip

    async def _in_thread(self, work, what: str):
        if not self.prometheus_url:
            raise NotConfigured("Prometheus is not configured (PROMETHEUS_URL)", backend="prometheus")
        try:
            return await asyncio.wait_for(asyncio.to_thread(work), self.timeout * 2)
        except TimeoutError as exc:
            raise Unreachable(f"Prometheus at {mask_url(self.prometheus_url)} did not answer ({what})",
                              backend="prometheus") from exc  # fmt: skip
        except Exception as exc:  # requests' and the client's errors
            name = type(exc).__name__
            if "Connection" in name or "MaxRetry" in name or "Timeout" in name:
                raise Unreachable(f"Prometheus at {mask_url(self.prometheus_url)} cannot be reached ({what})",
                                  backend="prometheus") from exc  # fmt: skip
            said = mask_urls_in(str(exc), self.prometheus_url)  # requests' messages quote the URL
            raise BackendFailed(f"Prometheus at {mask_url(self.prometheus_url)}: {what} failed: {said}",
                                backend="prometheus") from exc  # fmt: skip

    async def prometheus_alerts(self) -> list[Alert]:
        """Firing and pending alerts from the `ALERTS` series, with since when (from
        `ALERTS_FOR_STATE`); raises ServiceError."""

        def read() -> tuple[list[dict], list[dict]]:
            client = self._prometheus()
            return client.custom_query("ALERTS"), client.custom_query("ALERTS_FOR_STATE")

        alerts, states = await self._in_thread(read, "the ALERTS series")
        since: dict[str, float] = {}
        for row in states:
            labels = dict(row.get("metric") or {})
            labels.pop("__name__", None)
            since[json.dumps(labels, sort_keys=True)] = float(row["value"][1])
        found = []
        for row in alerts:
            labels = dict(row.get("metric") or {})
            labels.pop("__name__", None)
            state = labels.pop("alertstate", "firing")
            started = since.get(json.dumps(labels, sort_keys=True))
            found.append(Alert(
                name=labels.get("alertname", "?"), state=state, severity=labels.get("severity", ""),
                labels=labels, since=datetime.fromtimestamp(started, UTC) if started else None,
                source="prometheus",
            ))  # fmt: skip
        return sorted(found, key=lambda a: (a.state != "firing", a.name))

    async def scalar(self, query: str, what: str) -> float | None:
        """One PromQL instant query's value (the sum over its series); None when it has no
        series (nothing scraped yet). Raises ServiceError."""

        def read() -> float | None:
            rows = self._prometheus().custom_query(query)
            return sum(float(r["value"][1]) for r in rows) if rows else None

        return await self._in_thread(read, what)

    async def series(self, minutes: int = 60, points: int = 60) -> list[Series]:
        """The last `minutes` of each chart's query; raises ServiceError."""
        end = datetime.now(UTC)
        start = end - timedelta(minutes=minutes)
        step = f"{max(1, minutes * 60 // points)}s"

        def read() -> list[Series]:
            client = self._prometheus()
            out = []
            for title, query in CHARTS.items():
                result = client.custom_query_range(query, start_time=start, end_time=end, step=step)
                values = [float(v) for _, v in result[0]["values"]] if result else []
                out.append(Series(title, query, values))
            return out

        return await self._in_thread(read, "the AGIS metrics")

    # -- Alertmanager -------------------------------------------------------------------

    async def _am(self, method: str, path: str, body: Any = None) -> Any:
        if not self.alertmanager_url:
            raise NotConfigured("Alertmanager is not configured (ALERTMANAGER_URL)", backend="alertmanager")
        label = f"Alertmanager at {mask_url(self.alertmanager_url)}"
        status, parsed = await request_json("alertmanager", label, method, f"{self.alertmanager_url}{path}",
                                            body=body, timeout=self.timeout)  # fmt: skip
        if not 200 <= status < 300:
            raise BackendFailed(f"{label}: {method} {path} answered {status}: {error_text(status, parsed)}",
                                backend="alertmanager")  # fmt: skip
        return parsed

    async def alertmanager_alerts(self) -> list[Alert]:
        """Alerts as Alertmanager holds them: active, or suppressed by a silence or an
        inhibition (named); raises ServiceError."""
        body = await self._am("GET", "/api/v2/alerts?active=true&silenced=true&inhibited=true")
        found = []
        for a in body or []:
            status = a.get("status") or {}
            labels = dict(a.get("labels") or {})
            found.append(Alert(
                name=labels.get("alertname", "?"), state=status.get("state", "active"),
                severity=labels.get("severity", ""), labels=labels, since=parse_iso(a.get("startsAt")),
                source="alertmanager", summary=(a.get("annotations") or {}).get("summary", ""),
                fingerprint=a.get("fingerprint", ""), silenced_by=tuple(status.get("silencedBy") or ()),
                inhibited_by=tuple(status.get("inhibitedBy") or ()),
            ))  # fmt: skip
        return sorted(found, key=lambda a: (a.state != "active", a.name))

    async def silences(self) -> list[Silence]:
        """Every silence Alertmanager knows, active first; raises ServiceError."""
        body = await self._am("GET", "/api/v2/silences")
        found = []
        for s in body or []:
            matchers = tuple(_matcher_text(m) for m in s.get("matchers") or [])
            found.append(Silence(
                s["id"], (s.get("status") or {}).get("state", ""), matchers, s.get("createdBy", ""),
                s.get("comment", ""), parse_iso(s.get("startsAt")), parse_iso(s.get("endsAt")),
            ))  # fmt: skip
        order = {"active": 0, "pending": 1, "expired": 2}
        return sorted(
            found,
            key=lambda s: (
                order.get(s.state, 3),
                -(s.ends_at or datetime.min.replace(tzinfo=UTC)).timestamp(),
            ),
        )

    def silence_call_text(
        self, matchers: list[dict[str, Any]], minutes: int, comment: str, created_by: str
    ) -> str:
        body = {"matchers": matchers, "startsAt": "<now>", "endsAt": f"<now + {minutes} min>",
                "createdBy": created_by, "comment": comment}  # fmt: skip
        return f"POST {mask_url(self.alertmanager_url)}/api/v2/silences\n{json.dumps(body, indent=1)}"

    async def create_silence(
        self, matchers: list[dict[str, Any]], minutes: int, comment: str, created_by: str
    ) -> str:
        """Silence what `matchers` match for `minutes`; returns the silence id."""
        now = datetime.now(UTC)
        body = {
            "matchers": matchers, "startsAt": now.isoformat(), "createdBy": created_by, "comment": comment,
            "endsAt": (now + timedelta(minutes=minutes)).isoformat(),
        }  # fmt: skip
        reply = await self._am("POST", "/api/v2/silences", body)
        return str((reply or {}).get("silenceID", ""))

    async def expire_silence(self, silence_id: str) -> None:
        await self._am("DELETE", f"/api/v2/silence/{silence_id}")

    async def silence(self, silence_id: str) -> Silence | None:
        return next((s for s in await self.silences() if s.id == silence_id), None)

    # -- the runbooks' own conditions ---------------------------------------------------

    async def snapshot(self) -> AlertsSnapshot:
        """Prometheus, Alertmanager and the runbooks' conditions, each failing alone;
        raises ServiceError only when every configured source failed."""
        sources = {"prometheus": self.prometheus_alerts, "alertmanager": self.alertmanager_alerts,
                   "console": self.business_alerts, "backups": self.backup_alerts,
                   "payments": self.webhook_alerts}  # fmt: skip
        found: dict[str, list[Alert]] = {}
        failed: list[str] = []
        errors: list[ServiceError] = []
        for name, fetch in sources.items():
            try:
                found[name] = await fetch()
            except NotConfigured:
                continue
            except ServiceError as exc:
                failed.append(f"{name}: {exc}")
                errors.append(exc)
        if errors and not found:
            raise errors[0]
        console = found.get("console", []) + found.get("backups", []) + found.get("payments", [])
        merged = merge(found.get("prometheus", []), found.get("alertmanager", []), console)
        return AlertsSnapshot(tuple(merged), tuple(failed), len(found) + len(failed))

    async def _at_most_every_minute(self, source: str, read: Callable[[], Awaitable[Any]]) -> Any:
        """What `read()` said, read again only once SLOW_CHECK_EVERY has passed (a bucket
        listing or a Stripe call on every alerts poll would be too much)."""
        if (last := self._read_at.get(source)) and time.monotonic() - last[0] < SLOW_CHECK_EVERY:
            return last[1]
        value = await read()
        self._read_at[source] = (time.monotonic(), value)
        return value

    async def backup_alerts(self) -> list[Alert]:
        """The AGIS manual's backup targets as alerts: no good backup in 24 h (critical), the
        newest backup damaged, the monthly restore drill overdue. Raises NotConfigured
        without a bucket, ServiceError when it cannot be listed."""
        if self.backup_status is None:
            raise NotConfigured("backups are not wired")
        status = await self._at_most_every_minute("backups", self.backup_status)
        found = []
        if not status.rpo_ok:
            since = status.last_good.finished_at + BACKUP_RPO if status.last_good else None
            found.append(Alert("BackupTooOld", "firing", "critical", {"alertname": "BackupTooOld"}, since,
                               "console", status.rpo_line))  # fmt: skip
        newest = status.entries[0] if status.entries else None
        if newest is not None and newest.state() == "DAMAGED":
            found.append(Alert("BackupDamaged", "firing", "warning",
                               {"alertname": "BackupDamaged", "backup": newest.id}, newest.verified_at,
                               "console", f"the newest backup {newest.id} failed its check"))  # fmt: skip
        if status.drill_due:
            labels = {"alertname": "RestoreDrillOverdue"}
            found.append(Alert("RestoreDrillOverdue", "firing", "warning", labels, None, "console",
                               status.drill_line))  # fmt: skip
        return found

    async def webhook_alerts(self) -> list[Alert]:
        """GIVRWRLD's "verify the endpoint is Active": a disabled Stripe webhook endpoint is
        critical (no payment credits anyone), no endpoint at all too. Raises NotConfigured
        without Stripe, ServiceError when Stripe cannot be read."""
        if self.webhook_endpoints is None:
            raise NotConfigured("payments are not wired")
        endpoints = await self._at_most_every_minute("payments", self.webhook_endpoints)
        if not endpoints:
            labels = {"alertname": "StripeWebhookMissing"}
            said = "Stripe has no webhook endpoint: payments credit no one"
            return [Alert("StripeWebhookMissing", "firing", "critical", labels, None, "console", said)]
        return [
            Alert("StripeWebhookDisabled", "firing", "critical",
                  {"alertname": "StripeWebhookDisabled", "endpoint": e.id}, None, "console",
                  f"Stripe disabled the webhook endpoint {e.url}: payments are not credited")
            for e in endpoints if e.disabled
        ]  # fmt: skip

    async def business_alerts(self) -> list[Alert]:
        """The GIVRWRLD runbooks' alert conditions, evaluated in SQL now; raises ServiceError."""
        row = await self.postgres.run("business_alerts")
        found = []
        if row["stuck_15m"]:
            found.append(Alert(
                "OrdersStuckInPaid", "firing", "critical", {"alertname": "OrdersStuckInPaid"},
                row["oldest_stuck_at"], "console",
                f"{row['stuck_15m']} orders paid over 15 minutes ago have no server",
            ))  # fmt: skip
        if row["errors"] >= MIN_ERRORS:
            found.append(Alert(
                "OrdersInError", "firing", "critical", {"alertname": "OrdersInError"},
                row["first_error_at"], "console", f"{row['errors']} orders are in error",
            ))  # fmt: skip
        for node in json.loads(row["hot_nodes"]):
            found.append(Alert(
                "NodeCapacityHigh", "firing", "warning", {"alertname": "NodeCapacityHigh", "node": node},
                None, "console", f"node {node} uses over 80% of its RAM",
            ))  # fmt: skip
        return found


@dataclass(frozen=True)
class AlertsSnapshot:
    """Every alert the sources gave, merged, and which sources failed (each fails alone)."""

    alerts: tuple[Alert, ...]
    failed: tuple[str, ...]  # "prometheus: <why>" per failing source
    configured: int  # how many sources were configured (the runbooks' own always are)

    def firing(self) -> list[Alert]:
        """Alerts firing now and not silenced or inhibited."""
        return [
            a
            for a in self.alerts
            if a.state in ("firing", "active") and not (a.silenced_by or a.inhibited_by)
        ]


def _identity(alert: Alert) -> str:
    return json.dumps({k: v for k, v in alert.labels.items() if k != "alertstate"}, sort_keys=True)


def merge(prometheus: list[Alert], alertmanager: list[Alert], console: list[Alert]) -> list[Alert]:
    """One row per alert: Prometheus' state and since, with Alertmanager's view (silenced,
    inhibited, fingerprint, summary) joined on the labels; Alertmanager-only alerts (from
    another Prometheus) and the console's own after them. Firing and critical first."""
    from dataclasses import replace

    held = {_identity(a): a for a in alertmanager}
    rows = []
    for alert in prometheus:
        am = held.pop(_identity(alert), None)
        if am is not None:
            alert = replace(alert, fingerprint=am.fingerprint, summary=am.summary, silenced_by=am.silenced_by,
                            inhibited_by=am.inhibited_by)  # fmt: skip
        rows.append(alert)
    rows.extend(held.values())
    rows.extend(console)
    rank = {"critical": 0, "warning": 1}
    return sorted(rows, key=lambda a: (a.state == "pending", bool(a.silenced_by or a.inhibited_by),
                                       rank.get(a.severity, 2), a.name))  # fmt: skip
