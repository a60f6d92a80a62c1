"""Every item of both seeds' checklists: GIVRWRLD's morning and weekly checklists, AGIS's
daily, weekly, monthly and quarterly maintenance. An automatic item runs its query or call
and says what it saw (the figure, the threshold, the rows, pass/warn/fail); a manual item is
answered by the operator, and one done once a period (a rotation, a drill) is satisfied by
its last recorded answer until the period runs out. A check whose source is not configured
or cannot be reached says "not available", never pass."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from services.errors import NotConfigured, ServiceError
from services.text import human_age

if TYPE_CHECKING:
    from services.bundle import Services

CHECKLISTS = ("daily", "weekly", "monthly", "quarterly")
PERIOD = {
    "daily": timedelta(days=1),
    "weekly": timedelta(days=7),
    "monthly": timedelta(days=31),
    "quarterly": timedelta(days=92),
}
STATES = ("pass", "warn", "fail", "not available", "open")
WEBHOOK_PASS, WEBHOOK_WARN = 99.0, 95.0  # webhook success rate, percent
PROVISIONING_PASS, PROVISIONING_WARN = 95.0, 90.0  # provisioning success rate over 7 days
USAGE_WARN = 80.0  # the runbooks' "capacity > 80%"
ERROR_RATE_ALERT = 1.0  # errors/s: the AGIS manual's HighErrorRate rule


@dataclass(frozen=True)
class Seen:
    """What an automatic item saw: its verdict, the figure, the threshold, the rows."""

    state: str
    figure: str
    threshold: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)


Check = Callable[["Services"], Awaitable[Seen]]


@dataclass(frozen=True)
class Item:
    id: str
    title: str
    source: str  # which seed and list it comes from
    kind: str  # auto | manual
    check: Check | None = None
    every: timedelta | None = None  # a manual item done once a period: its last record satisfies it
    context: Check | None = None  # what helps answer a manual item (shown, never a verdict)
    fix: tuple[str, str] | None = None  # (area, what to do there) when it fails


def _rows(rows: list[Any], limit: int = 20) -> list[dict[str, Any]]:
    """Rows as JSON-safe dicts (times as ISO text), at most `limit`."""
    return [json.loads(json.dumps(dict(r), default=str)) for r in rows[:limit]]


def _ago(when: datetime | None, now: datetime | None = None) -> str:
    if when is None:
        return "never"
    return f"{human_age((now or datetime.now(UTC)) - when)} ago"


# -- daily (AGIS daily, GIVRWRLD morning) ---------------------------------------------------


async def stuck_paid(s: Services) -> Seen:
    rows = await s.postgres.run("check_stuck_paid")
    figure = f"{len(rows)} orders paid over 10 min ago without a server" if rows else "no order stuck in paid"
    return Seen("fail" if rows else "pass", figure, "0 stuck", {"orders": _rows(rows)})


async def error_orders(s: Services) -> Seen:
    rows = await s.postgres.run("check_error_orders")
    state = "pass" if not rows else "warn" if len(rows) < 2 else "fail"
    figure = f"{len(rows)} orders went to error in the last 24 h"
    return Seen(state, figure, "0 (2 or more: the runbooks' critical alert)", {"orders": _rows(rows)})


async def node_capacity(s: Services) -> Seen:
    cap = await s.nodes.capacity()
    enabled = [n for n in cap.nodes if n.enabled]
    full = [n.name for n in enabled if cap.level(n) == "critical"]
    hot = [n.name for n in enabled if cap.level(n) == "warning"]
    state = "fail" if full or not enabled else "warn" if hot else "pass"
    figure = (
        f"{len(full)} of {len(enabled)} enabled nodes cannot take the smallest plan"
        if full
        else f"{len(hot)} of {len(enabled)} enabled nodes over {USAGE_WARN:g} %"
        if hot
        else f"all {len(enabled)} enabled nodes have room"
        if enabled
        else "no node is enabled"
    )
    rows = [
        {
            "node": n.name,
            "used_gb": n.used_ram_gb,
            "max_gb": n.max_ram_gb,
            "available_gb": n.available_ram_gb,
            "usage_pct": round(n.usage_pct, 1),
            "level": cap.level(n),
        }
        for n in enabled
    ]
    return Seen(state, figure, f"room for the smallest plan; warn over {USAGE_WARN:g} %", {"nodes": rows})


async def webhook_rate(s: Services) -> Seen:
    d = await s.reconcile.deliveries("24h")
    rate = d.success_rate
    if rate is None:
        return Seen("pass", "no checkout events in the last 24 h", f"≥ {WEBHOOK_PASS:g} %")
    state = "pass" if rate >= WEBHOOK_PASS else "warn" if rate >= WEBHOOK_WARN else "fail"
    figure = f"{rate:.1f} % of {len(d.events)} checkout events delivered ({len(d.failed)} undelivered)"
    return Seen(
        state,
        figure,
        f"pass ≥ {WEBHOOK_PASS:g} %, warn ≥ {WEBHOOK_WARN:g} %",
        {"undelivered": [f.as_json() for f in d.failed[:20]]},
    )


async def health_endpoints(s: Services) -> Seen:
    from services.doctor import run_doctor

    found = await run_doctor(s.probes(), timeout=8.0)
    configured = [f for f in found if f.state != "not configured"]
    failing = [f for f in configured if f.state == "failing"]
    rows = [{"backend": f.backend, "state": f.state, "why": f.reason} for f in found]
    figure = (
        f"{len(failing)} of {len(configured)} backends failing: {', '.join(f.backend for f in failing)}"
        if failing
        else f"all {len(configured)} configured backends answer"
    )
    return Seen("fail" if failing else "pass", figure, "every configured backend answers", {"backends": rows})


async def bot_errors(s: Services) -> Seen:
    total = await s.alerts.scalar("sum(increase(agis_bot_errors_total[24h]))", "the bot's errors")
    rate = "sum(rate(agis_bot_errors_total[5m]))"
    # The subquery's steps are whole minutes: the rate now covers the minute not in it yet.
    peaks = [
        await s.alerts.scalar(f"max_over_time({rate}[24h:1m])", "the error peak"),
        await s.alerts.scalar(rate, "the error rate"),
    ]
    peak = max((p for p in peaks if p is not None), default=None)
    if total is None:
        return Seen("not available", "Prometheus has no agis_bot_errors_total series")
    state = "warn" if (peak or 0) > ERROR_RATE_ALERT else "pass"
    figure = f"{total:,.0f} bot errors in 24 h, peak {peak or 0:.2f}/s"
    return Seen(
        state,
        figure,
        f"peak under {ERROR_RATE_ALERT:g}/s (HighErrorRate)",
        {"errors_24h": total, "peak_per_second": peak},
    )


async def subscriptions(s: Services) -> Seen:
    row = await s.postgres.run("check_subscriptions")
    figure = (
        f"{row['live']:,} live subscriptions · {row['new_24h']:,} new, "
        f"{row['canceled_24h']:,} canceled in 24 h"
    )
    state = "warn" if row["canceled_24h"] > max(row["new_24h"], 0) and row["canceled_24h"] >= 3 else "pass"
    return Seen(state, figure, "warn when cancellations outnumber new ones (3 or more)", dict(row))


# -- weekly ---------------------------------------------------------------------------------


async def vacuum(s: Services) -> Seen:
    now = datetime.now(UTC)
    rows = await s.postgres.run("check_last_vacuum")
    stale = [r for r in rows if r["vacuumed_at"] is None or now - r["vacuumed_at"] > PERIOD["weekly"]]
    last = await s.postgres.run("check_last_action", action="db_maintenance", command="vacuum")
    by_hand = f"; last VACUUM from the console {_ago(last['at'], now)} by {last['operator']}" if last else ""
    figure = (
        f"{len(stale)} of the {len(rows)} largest tables not vacuumed in 7 days "
        f"({', '.join(r['table'] for r in stale[:3])}){by_hand}"
        if stale
        else f"the {len(rows)} largest tables vacuumed within 7 days{by_hand}"
    )
    return Seen(
        "fail" if stale else "pass",
        figure,
        "every large table vacuumed (or autovacuumed) weekly",
        {"tables": _rows(rows)},
    )


async def alerts_review(s: Services) -> Seen:
    snap = await s.alerts.snapshot()
    firing = snap.firing()
    critical = [a.name for a in firing if a.severity == "critical"]
    warning = [a.name for a in firing if a.severity != "critical"]
    state = "fail" if critical else "warn" if warning else "pass"
    figure = f"{len(critical)} critical, {len(warning)} other alerts firing" if firing else "no alert firing"
    if snap.failed:
        figure += f" ({len(snap.failed)} sources unreadable)"
    rows = [{"alert": a.name, "severity": a.severity, "summary": a.summary} for a in firing[:20]]
    return Seen(state, figure, "no critical alert firing", {"firing": rows, "unreadable": list(snap.failed)})


async def backup_success(s: Services) -> Seen:
    status = await s.backups.status()
    newest = status.entries[0] if status.entries else None
    damaged = newest is not None and newest.state() == "DAMAGED"
    state = "pass" if status.rpo_ok and not damaged else "fail"
    figure = status.rpo_line + (f"; the newest backup {newest.id} is DAMAGED" if damaged else "")
    return Seen(state, figure, "a good backup within 24 h (the RPO)")


async def resource_usage(s: Services) -> Seen:
    row = await s.postgres.run("db_connections")
    cap = await s.nodes.capacity()
    usable = max(row["max_connections"] - row["reserved"], 1)
    conn_pct = 100.0 * row["used"] / usable
    enabled = [n for n in cap.nodes if n.enabled]
    ram = sum(n.used_ram_gb for n in enabled)
    ram_max = sum(n.max_ram_gb for n in enabled) or 1
    ram_pct = 100.0 * ram / ram_max
    state = "warn" if max(conn_pct, ram_pct) > USAGE_WARN else "pass"
    figure = (
        f"database connections {row['used']}/{usable} ({conn_pct:.0f} %), game nodes {ram}/{ram_max} GB "
        f"RAM ({ram_pct:.0f} %), database {row['database_bytes'] / 2**30:.1f} GiB"
    )
    return Seen(state, figure, f"under {USAGE_WARN:g} %", {"connections": row["used"], "ram_gb": ram})


async def provisioning_rate(s: Services) -> Seen:
    row = await s.postgres.run("check_provisioning_rate")
    if row["rate"] is None:
        return Seen("pass", "no orders in the last 7 days", f"≥ {PROVISIONING_PASS:g} %")
    rate = float(row["rate"])
    state = "pass" if rate >= PROVISIONING_PASS else "warn" if rate >= PROVISIONING_WARN else "fail"
    figure = f"{rate:.1f} % provisioned ({row['provisioned']:,} of {row['considered']:,} orders in 7 days)"
    return Seen(state, figure, f"pass ≥ {PROVISIONING_PASS:g} %, warn ≥ {PROVISIONING_WARN:g} %", dict(row))


async def node_utilisation(s: Services) -> Seen:
    cap = await s.nodes.capacity()
    enabled = [n for n in cap.nodes if n.enabled]
    hot = [n for n in enabled if n.usage_pct > USAGE_WARN]
    rows = [
        {"node": n.name, "usage_pct": round(n.usage_pct, 1), "live_servers": n.live_servers} for n in enabled
    ]
    mean = sum(n.usage_pct for n in enabled) / len(enabled) if enabled else 0.0
    figure = f"mean {mean:.0f} % used; {len(hot)} nodes over {USAGE_WARN:g} %"
    return Seen("warn" if hot else "pass", figure, f"each node under {USAGE_WARN:g} %", {"nodes": rows})


# -- monthly and quarterly ------------------------------------------------------------------


async def reindex(s: Services) -> Seen:
    last = await s.postgres.run("check_last_action", action="db_maintenance", command="reindex")
    when = last["at"] if last else None
    done = when is not None and datetime.now(UTC) - when <= PERIOD["monthly"]
    figure = (
        f"last REINDEX {_ago(when)} by {last['operator']} ({last['target']})"
        if last
        else "no REINDEX recorded in the audit log"
    )
    return Seen("pass" if done else "fail", figure + ("" if done else ": due"), "a REINDEX within 31 days")


async def restore_drill(s: Services) -> Seen:
    status = await s.backups.status()
    return Seen(
        "fail" if status.drill_due else "pass", status.drill_line, "a passed restore drill within 31 days"
    )


async def last_price_change(s: Services) -> Seen:
    row = await s.postgres.run("check_last_price_change")
    if row is None:
        return Seen("open", "no price change recorded by the console")
    return Seen("open", f"last price change {_ago(row['at'])} by {row['operator']} ({row['game_type']})")


async def slow_queries(s: Services) -> Seen:
    if not await s.postgres.run("db_statements_installed"):
        return Seen("open", "pg_stat_statements is not installed: no query statistics")
    rows = await s.postgres.run("db_statements", limit=5)
    return Seen(
        "open", f"the {len(rows)} slowest statements by mean time are below", "", {"statements": _rows(rows)}
    )


G_MORNING, G_WEEKLY = "GIVRWRLD morning checklist", "GIVRWRLD weekly checklist"
A_DAILY, A_WEEKLY, A_MONTHLY, A_QUARTERLY = (
    "AGIS daily maintenance",
    "AGIS weekly maintenance",
    "AGIS monthly maintenance",
    "AGIS quarterly maintenance",
)

ITEMS: dict[str, tuple[Item, ...]] = {
    "daily": (
        Item(
            "stuck-paid",
            "Orders stuck in paid overnight",
            G_MORNING,
            "auto",
            stuck_paid,
            fix=("orders", "the stuck view: R retries provisioning"),
        ),
        Item(
            "error-orders",
            "Errors of the previous 24 hours (orders in error)",
            G_MORNING,
            "auto",
            error_orders,
            fix=("orders", "the error view: read the error, R retries"),
        ),
        Item(
            "node-capacity",
            "Every node has available capacity",
            G_MORNING,
            "auto",
            node_capacity,
            fix=("nodes", "E enables a node; the headroom forecast"),
        ),
        Item(
            "webhook-rate",
            "Webhook event success rate",
            G_MORNING,
            "auto",
            webhook_rate,
            fix=("payments", "reconcile: resend under 50, else credit"),
        ),
        Item(
            "health-endpoints",
            "Health endpoints answer",
            A_DAILY,
            "auto",
            health_endpoints,
            fix=("backends", "which backend fails and why"),
        ),
        Item(
            "bot-errors",
            "Review error logs (the bot's error counter)",
            A_DAILY,
            "auto",
            bot_errors,
            fix=("incidents", "the last hour's metrics and firing alerts"),
        ),
        Item("subscriptions", "Monitor subscription stats", A_DAILY, "auto", subscriptions),
    ),
    "weekly": (
        Item(
            "vacuum",
            "Database VACUUM",
            A_WEEKLY,
            "auto",
            vacuum,
            fix=("database", "Tables: H runs VACUUM (ANALYZE)"),
        ),
        Item(
            "alerts-review",
            "Review Prometheus alerts",
            A_WEEKLY,
            "auto",
            alerts_review,
            fix=("incidents", "firing alerts: silence, declare an incident"),
        ),
        Item(
            "backup-success",
            "Check backup success",
            A_WEEKLY,
            "auto",
            backup_success,
            fix=("backups", "K backs up now; V verifies"),
        ),
        Item(
            "resource-usage",
            "Review resource usage",
            A_WEEKLY,
            "auto",
            resource_usage,
            fix=("database", "connections and sessions"),
        ),
        Item(
            "provisioning-rate",
            "Review provisioning success rate",
            G_WEEKLY,
            "auto",
            provisioning_rate,
            fix=("orders", "the error view"),
        ),
        Item(
            "node-utilisation",
            "Check node capacity utilisation",
            G_WEEKLY,
            "auto",
            node_utilisation,
            fix=("nodes", "capacity and headroom"),
        ),
        Item("support-tickets", "Review customer support tickets", G_WEEKLY, "manual"),
        Item("docs", "Update documentation if needed", G_WEEKLY, "manual"),
    ),
    "monthly": (
        Item(
            "reindex",
            "Database REINDEX",
            A_MONTHLY,
            "auto",
            reindex,
            fix=("database", "H: REINDEX CONCURRENTLY"),
        ),
        Item("db-password", "Rotate the database password", A_MONTHLY, "manual", every=PERIOD["monthly"]),
        Item("pricing-review", "Review and update pricing", A_MONTHLY, "manual", context=last_price_change),
        Item(
            "restore-drill",
            "Verify backup restoration",
            A_MONTHLY,
            "auto",
            restore_drill,
            fix=("backups", "L runs a restore drill"),
        ),
        Item("dependencies", "Update dependencies", A_MONTHLY, "manual"),
    ),
    "quarterly": (
        Item("discord-token", "Rotate the Discord token", A_QUARTERLY, "manual", every=PERIOD["quarterly"]),
        Item("query-review", "Review and optimise queries", A_QUARTERLY, "manual", context=slow_queries),
        Item("load-test", "Load testing", A_QUARTERLY, "manual"),
        Item("dr-drill", "Disaster recovery drill", A_QUARTERLY, "manual", every=PERIOD["quarterly"]),
    ),
}


def find_item(checklist: str, item_id: str) -> Item | None:
    return next((i for i in ITEMS.get(checklist, ()) if i.id == item_id), None)


async def evaluate(item: Item, services: Services) -> Seen:
    """Run an automatic item's check (or a manual item's context); never raises: a source
    that is not configured, down or broken is "not available" with why."""
    check = item.check or item.context
    if check is None:
        return Seen("open", "")
    try:
        seen = await check(services)
    except NotConfigured as exc:
        return Seen("not available", f"not available: {exc}")
    except ServiceError as exc:
        return Seen("not available", f"not available: {exc}")
    except Exception as exc:  # a bug is still an answer, never a pass
        return Seen("not available", f"not available: {type(exc).__name__}: {exc}")
    if item.kind == "manual":
        return Seen("open", seen.figure, seen.threshold, seen.evidence)
    return seen
