"""The incident commander's board: one snapshot of eight tiles (alerts, incidents, orders, node
headroom, webhooks, backups, database, other consoles), each built from its own source polled
on its own, with its data age and state (ok, stale, down, not configured), so one source
failing never stops the others. BoardFeed polls; RemoteBoard reads a feed's snapshot over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from services.errors import NotConfigured, ServiceError, Unreachable
from services.incidents import response_clock, update_clock
from services.polling import Poller

if TYPE_CHECKING:
    from services.alerts import AlertsSnapshot
    from services.backup_model import BackupsStatus
    from services.bundle import Services
    from services.claims import Claim
    from services.dbcare_model import Connections, Session
    from services.incidents import Incident
    from services.nodes import Capacity
    from services.overview import Overview
    from services.payments_model import Deliveries

STATES = ("ok", "stale", "down", "off", "reading")  # off: not configured; reading: no answer yet
HOT_PCT = 80.0
SLOW_EVERY = 60.0  # backups (a bucket listing) and webhooks (every checkout event of a day)


@dataclass(frozen=True)
class Line:
    """One line of a tile; `level` colours it: '' plain, dim, ok, warn, crit."""

    text: str
    level: str = ""


@dataclass(frozen=True)
class Body:
    """What a source's data says on its tile."""

    value: str  # the big figure: digits, '-', ':' only (drawn large)
    caption: str
    level: str  # ok | warn | crit | '' (nothing to judge)
    lines: tuple[Line, ...] = ()
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Tile:
    id: str
    title: str
    state: str  # one of STATES
    age: float | None  # seconds since its data was read; None before the first read
    problem: str | None  # why it is stale, down or off
    body: Body | None  # None until the source first answered

    def as_json(self) -> dict[str, Any]:
        body = self.body
        return {
            "id": self.id, "title": self.title, "state": self.state,
            "age_seconds": None if self.age is None else round(self.age, 1), "problem": self.problem,
            "value": body.value if body else None, "caption": body.caption if body else None,
            "level": body.level if body else None,
            "lines": [asdict(line) for line in body.lines] if body else [],
            "figures": body.figures if body else {},
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tile:
        body = None
        if data.get("value") is not None:
            lines = tuple(Line(str(x.get("text", "")), str(x.get("level", ""))) for x in data["lines"])
            body = Body(str(data["value"]), str(data.get("caption") or ""), str(data.get("level") or ""),
                        lines, dict(data.get("figures") or {}))  # fmt: skip
        age = data.get("age_seconds")
        state = data.get("state")
        return cls(str(data["id"]), str(data.get("title", data["id"])), state if state in STATES else "down",
                   None if age is None else float(age), data.get("problem"), body)  # fmt: skip


@dataclass(frozen=True)
class BoardSnapshot:
    environment: str
    colour: str
    as_of: datetime
    tiles: tuple[Tile, ...]

    def tile(self, tile_id: str) -> Tile:
        return next(t for t in self.tiles if t.id == tile_id)

    def as_json(self) -> dict[str, Any]:
        return {"environment": self.environment, "colour": self.colour, "as_of": self.as_of.isoformat(),
                "tiles": [t.as_json() for t in self.tiles]}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BoardSnapshot:
        return cls(str(data["environment"]), str(data["colour"]), datetime.fromisoformat(data["as_of"]),
                   tuple(Tile.from_json(t) for t in data["tiles"]))  # fmt: skip

    def aged(self, seconds: float, problem: str) -> BoardSnapshot:
        """This snapshot `seconds` later, its feed unreachable meanwhile: every tile older,
        stale, and down once its data is over a minute old."""
        tiles = []
        for t in self.tiles:
            age = None if t.age is None else t.age + seconds
            state = "down" if age is None or age > 60 else "stale"
            tiles.append(replace(t, age=age, state=t.state if t.state == "off" else state, problem=problem))
        return replace(self, tiles=tuple(tiles))


# -- what each source's data says -------------------------------------------------------------


def hm(seconds: float) -> str:
    """'5:07' for 5 h 7 min (the board's big clock for ages)."""
    minutes = int(max(seconds, 0) // 60)
    return f"{minutes // 60}:{minutes % 60:02d}"


def ms(seconds: float) -> str:
    """'3:42' for 3 min 42 s; '74:05' past an hour (a query's run time)."""
    seconds = int(max(seconds, 0))
    return f"{seconds // 60}:{seconds % 60:02d}"


def ago(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "?"
    seconds = (now - at).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{max(int(seconds), 0)}s"


SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
SHORT = {"critical": "crit", "warning": "warn"}
# The incident clocks in words that fit a tile 16 columns wide (the JSON keeps the full ones).
CLOCK_WORDS = (
    ("responded in ", "resp took "),
    ("respond in ", "resp "),
    ("MISSED by ", "resp MISSED "),
    ("status update overdue by ", "update LATE "),
    ("next update in ", "update "),
)


def short_clock(text: str) -> str:
    for long, short in CLOCK_WORDS:
        if text.startswith(long):
            return short + text[len(long) :]
    return text


def alerts_body(snapshot: AlertsSnapshot, now: datetime) -> Body:
    firing = snapshot.firing()
    by = Counter(a.severity or "none" for a in firing)
    order = sorted(by.items(), key=lambda kv: SEVERITY_RANK.get(kv[0], 9))
    level = "crit" if by.get("critical") else "warn" if firing else "ok"
    lines = [Line(" · ".join(f"{n} {SHORT.get(sev, sev)}" for sev, n in order) or "none firing", level)]
    for a in firing[:8]:
        sev = a.severity or "none"
        said = f"{a.name} {ago(a.since, now)}" if a.since else a.name
        lines.append(Line(said, "crit" if sev == "critical" else "warn" if sev == "warning" else "dim"))
    if len(firing) > 8:
        lines.append(Line(f"… {len(firing) - 8} more", "dim"))
    figures = {"firing": len(firing), "by_severity": dict(order),
               "alerts": [{"name": a.name, "severity": a.severity, "source": a.source, "summary": a.summary,
                           "since": a.since.isoformat() if a.since else None} for a in firing],
               "failed_sources": list(snapshot.failed)}  # fmt: skip
    return Body(str(len(firing)), "firing", level, tuple(lines), figures)


def incidents_body(incidents: list[Incident], now: datetime) -> Body:
    lines: list[Line] = []
    rows = []
    missed = 0
    for i in sorted(incidents, key=lambda i: (i.severity, i.declared_at)):
        response, update = response_clock(i, now), update_clock(i, now)
        missed += response.missed + bool(update and update.missed)
        lines.append(Line(f"{i.ref} {i.severity} {i.title}", "crit" if i.severity in ("P0", "P1") else ""))
        lines.append(Line(short_clock(response.text), "crit" if response.missed else "dim"))
        if update:
            lines.append(Line(short_clock(update.text), "crit" if update.missed else "dim"))
        rows.append({"ref": i.ref, "severity": i.severity, "title": i.title, "status": i.status,
                     "commander": i.commander, "response": response.text, "response_missed": response.missed,
                     "update": update.text if update else None,
                     "update_missed": bool(update and update.missed)})  # fmt: skip
    worst = min((i.severity for i in incidents), default="")
    level = "crit" if missed or worst in ("P0", "P1") else "warn" if incidents else "ok"
    if not incidents:
        lines.append(Line("none open", "ok"))
    elif missed:
        lines.insert(0, Line(f"{missed} clock{'s' * (missed > 1)} missed", "crit"))
    return Body(str(len(incidents)), "open", level, tuple(lines),
                {"open": len(incidents), "clocks_missed": missed, "incidents": rows})  # fmt: skip


def orders_body(overview: Overview) -> Body:
    oldest = overview.oldest_stuck_minutes
    level = "crit" if overview.stuck or overview.errors >= 2 else "warn" if overview.errors else "ok"
    said = None if oldest is None else f"{oldest} min" if oldest < 90 else f"{oldest // 60} h"
    lines = [Line(f"oldest {said}" if said is not None else "none stuck",
                  "crit" if oldest is not None else "ok"),
             Line(f"{overview.errors} in error", "crit" if overview.errors >= 2 else
                  "warn" if overview.errors else "dim"),
             Line(f"{overview.created_24h} new in 24 h", "dim")]  # fmt: skip
    figures = {"stuck": overview.stuck, "oldest_stuck_minutes": oldest, "errors": overview.errors,
               "created_24h": overview.created_24h}  # fmt: skip
    return Body(str(overview.stuck), "stuck > 10 min", level, tuple(lines), figures)


def nodes_body(capacity: Capacity) -> Body:
    enabled = [n for n in capacity.nodes if n.enabled]
    levels = {n.name: capacity.level(n) for n in capacity.nodes}
    hot = [n for n in enabled if n.usage_pct >= HOT_PCT]
    full = [n for n in enabled if levels[n.name] == "critical"]
    free = capacity.available_ram_gb
    level = "crit" if full or not enabled else "warn" if hot else "ok"
    lines = [Line(f"{len(enabled)}/{len(capacity.nodes)} open, {len(hot)} hot", "warn" if hot else "dim")]
    smallest = min(capacity.plans, key=lambda p: p.ram_gb, default=None)
    if smallest is not None:
        fits = capacity.total_fits(smallest.id)
        lines.append(Line(f"fits {fits} x {smallest.ram_gb} GB", "crit" if not fits else "dim"))
    for n in sorted(enabled, key=lambda n: -n.usage_pct)[:6]:
        lv = levels[n.name]
        lines.append(Line(f"{n.usage_pct:.0f}% {n.name} {n.available_ram_gb} GB",
                          {"critical": "crit", "warning": "warn"}.get(lv, "")))  # fmt: skip
    figures = {"available_ram_gb": free, "open_nodes": len(enabled), "nodes": len(capacity.nodes),
               "hot": [n.name for n in hot], "full": [n.name for n in full],
               "smallest_plan_fits": capacity.total_fits(smallest.id) if smallest else None}  # fmt: skip
    return Body(str(free), "GB free", level, tuple(lines), figures)


def webhooks_body(deliveries: Deliveries) -> Body:
    rate = deliveries.success_rate
    undelivered = len(deliveries.failed)
    level = "ok" if not undelivered else "crit" if rate is not None and rate < 90 else "warn"
    lines = [Line(f"{undelivered}/{len(deliveries.events)} undelivered",
                  "crit" if level == "crit" else "warn" if undelivered else "dim")]  # fmt: skip
    oldest = deliveries.oldest_undelivered
    if oldest is not None:
        lines.append(Line(f"oldest {ago(oldest.created, deliveries.now)} ago", "warn"))
    if deliveries.failure_rate is not None:
        lines.append(Line(f"bot fail {deliveries.failure_rate:.2f}/s",
                          "warn" if deliveries.failure_rate > 0 else "dim"))  # fmt: skip
    figures = {"period": deliveries.period, "events": len(deliveries.events), "undelivered": undelivered,
               "success_rate_pct": None if rate is None else round(rate, 2),
               "oldest_undelivered": oldest.created.isoformat() if oldest else None,
               "webhook_failures_per_second": deliveries.failure_rate}  # fmt: skip
    value = "-" if rate is None else str(int(rate)) if rate < 100 else "100"
    return Body(value, "% delivered 24 h", level, tuple(lines), figures)


def backups_body(status: BackupsStatus) -> Body:
    good = status.last_good
    age = (status.now - good.finished_at).total_seconds() if good else None
    level = "crit" if not status.rpo_ok else "warn" if status.drill_due else "ok"
    rpo = Line("RPO 24 h: ok", "ok") if status.rpo_ok else Line("RPO 24 h BREACHED", "crit")
    lines = [rpo]
    if good is not None:
        lines.append(Line(f"at {good.finished_at:%m-%d %H:%M} UTC", "dim"))
    drill = status.last_drill
    if drill is None or drill.drilled_at is None:
        lines.append(Line("drill never done", "warn"))
    else:
        lines.append(
            Line(
                f"drill {ago(drill.drilled_at, status.now)} ago" + (": OVERDUE" if status.drill_due else ""),
                "warn" if status.drill_due else "dim",
            )
        )
    if status.catalog_problem:
        lines.append(Line(f"catalogue: {status.catalog_problem}", "warn"))
    figures = {"last_good": good.id if good else None,
               "last_good_at": good.finished_at.isoformat() if good else None,
               "age_seconds": None if age is None else int(age), "rpo_ok": status.rpo_ok,
               "drill_due": status.drill_due}  # fmt: skip
    return Body(hm(age) if age is not None else "-", "h:mm since good", level, tuple(lines), figures)


def database_body(data: tuple[list[Session], Connections]) -> Body:
    sessions, conns = data
    active = [s for s in sessions if s.state == "active" and s.query_seconds is not None]
    longest = max(active, key=lambda s: s.query_seconds or 0.0, default=None)
    seconds = (longest.query_seconds or 0.0) if longest else 0.0
    usable = max(conns.max_connections - conns.reserved, 1)
    pct = conns.used_pct
    level = "crit" if pct >= 90 or seconds >= 300 else "warn" if pct >= 75 or seconds >= 60 else "ok"
    lines = [Line(f"conns {conns.used}/{usable} {pct:.0f} %",
                  "crit" if pct >= 90 else "warn" if pct >= 75 else "dim")]  # fmt: skip
    if longest is not None:
        who = longest.application or longest.user or "?"
        lines.append(Line(f"{who} pid {longest.pid}", "dim"))
        lines.append(Line(" ".join(longest.query.split()), "dim"))
    else:
        lines.append(Line("no query running", "ok"))
    slow = sum(1 for s in active if (s.query_seconds or 0) >= 5)
    lines.append(Line(f"{slow} running > 5 s", "warn" if slow else "dim"))
    figures = {"longest_query_seconds": round(seconds, 1) if longest else None,
               "longest_query_pid": longest.pid if longest else None,
               "longest_query": longest.query if longest else None, "running_over_5s": slow,
               "connections_used": conns.used, "max_connections": conns.max_connections,
               "reserved_connections": conns.reserved, "connections_used_pct": round(pct, 1)}  # fmt: skip
    return Body(ms(seconds) if longest else "-", "longest query", level, tuple(lines), figures)


def consoles_body(claims: list[Claim]) -> Body:
    from services.actions import ALL_ACTIONS

    lines = []
    rows = []
    for c in claims:
        action = ALL_ACTIONS.get(c.action)
        doing = action.doing if action else c.action
        target = c.target if len(c.target) <= 12 else c.target[:8]
        lines.append(Line(f"{c.operator} {c.seconds:.0f} s", "warn"))
        lines.append(Line(f" {doing} {c.target_kind} {target}", ""))
        rows.append({"operator": c.operator, "action": c.action, "target_kind": c.target_kind,
                     "target": c.target, "seconds": round(c.seconds, 1)})  # fmt: skip
    if not claims:
        lines.append(Line("none running", "dim"))
    return Body(str(len(claims)), "actions running", "warn" if claims else "ok", tuple(lines),
                {"running": len(claims), "claims": rows})  # fmt: skip


# -- the feed -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    id: str
    title: str
    fetch: Callable[[], Awaitable[Any]]
    body: Callable[[Any, datetime], Body]
    interval: float
    partial: Callable[[Any], str | None] = lambda _data: None  # a part failed: why


def sources(services: Services, interval: float) -> list[Source]:
    """The board's tiles in order, each with what it reads and how often."""
    dbcare = services.dbcare

    async def database() -> tuple[list[Session], Connections]:
        activity, conns = await asyncio.gather(dbcare.activity(), dbcare.connections())
        return activity, conns

    async def webhooks() -> Deliveries:
        if not services.reconcile.configured:
            raise NotConfigured("Stripe is not configured (STRIPE_SECRET_KEY)", backend="stripe")
        return await services.reconcile.deliveries("24h")

    slow = max(interval, SLOW_EVERY)
    return [
        Source("alerts", "Alerts", services.alerts.snapshot, alerts_body, interval,
               lambda s: "; ".join(s.failed) or None),
        Source("incidents", "Incidents", services.incidents.open_incidents, incidents_body, interval),
        Source("orders", "Orders", services.overview.overview, lambda o, _now: orders_body(o), interval),
        Source("nodes", "Node headroom", services.nodes.capacity, lambda c, _now: nodes_body(c), interval),
        Source("webhooks", "Webhooks", webhooks, lambda d, _now: webhooks_body(d), slow),
        Source("backups", "Backups", services.backups.status, lambda b, _now: backups_body(b), slow),
        Source("database", "Database", database, lambda d, _now: database_body(d), interval),
        Source("consoles", "Consoles", services.claims.live, lambda c, _now: consoles_body(c), interval),
    ]  # fmt: skip


class BoardFeed:
    """One poller per tile's source; `snapshot()` says what each tile shows now. The only
    thing that reads the backends, however many viewers look at the board."""

    def __init__(self, services: Services, *, environment: str = "development", colour: str = "green",
                 interval: float = 5.0, clock: Callable[[], float] = time.monotonic):  # fmt: skip
        self.services = services
        self.environment, self.colour = environment, colour
        self._clock = clock
        self._data: dict[str, Any] = {}
        self.sources = sources(services, interval)
        self.pollers: dict[str, Poller[Any]] = {
            s.id: Poller(
                f"board.{s.id}",
                s.fetch,
                s.interval,
                on_result=self._keeper(s.id),
                clock=clock,
                max_backoff=max(s.interval * 4, 30.0),
            )
            for s in self.sources
        }

    def _keeper(self, source_id: str) -> Callable[[Any], None]:
        def keep(data: Any) -> None:
            self._data[source_id] = data

        return keep

    async def run(self) -> None:
        """Poll every source until cancelled."""
        await asyncio.gather(*(p.run() for p in self.pollers.values()))

    async def once(self) -> BoardSnapshot:
        """Every source read once (each failing alone), then the snapshot: `board --json`."""
        await asyncio.gather(*(p.poll_once() for p in self.pollers.values()))
        return self.snapshot()

    def trigger(self) -> None:
        for poller in self.pollers.values():
            poller.trigger()

    async def read(self) -> BoardSnapshot:
        """The snapshot now (what a board screen shows every second)."""
        return self.snapshot()

    def snapshot(self, now: datetime | None = None) -> BoardSnapshot:
        now = now or datetime.now(UTC)
        tiles = tuple(self._tile(s, now) for s in self.sources)
        return BoardSnapshot(self.environment, self.colour, now, tiles)

    def _tile(self, source: Source, now: datetime) -> Tile:
        poller = self.pollers[source.id]
        data = self._data.get(source.id)
        age = None if poller.last_ok is None else self._clock() - poller.last_ok
        error = poller.last_error
        body = None
        if data is not None:
            try:
                body = source.body(data, now)
            except Exception as exc:  # a surprise in one source's data must not blank the board
                error = error or Unreachable(f"cannot show it: {type(exc).__name__}: {exc}")
        state, problem = tile_state(age, error, source.interval)
        if state == "ok" and data is not None and (partly := source.partial(data)):
            state, problem = "stale", partly
        return Tile(source.id, source.title, state, age, problem, body)


def tile_state(age: float | None, error: ServiceError | None, interval: float) -> tuple[str, str | None]:
    """(state, problem) of a tile from its data's age and its source's last failure: off when
    not configured; down when failing with no data or data older than 3 intervals (at least
    30 s), or with nothing read for that long; stale when failing with younger data, or read
    longer ago than 2 intervals; reading before the first answer; else ok."""
    down_after = max(3 * interval, 30.0)
    if isinstance(error, NotConfigured):
        return "off", str(error)
    if error is not None:
        return ("down" if age is None or age > down_after else "stale"), str(error)
    if age is None:
        return "reading", None
    if age > down_after:
        return "down", f"no answer for {int(age)} s"
    if age > 2 * interval + 1:
        return "stale", f"no answer for {int(age)} s"
    return "ok", None


class RemoteBoard:
    """A board feed's snapshot read over loopback HTTP (what a served viewer shows): the
    viewers never touch a database. `token` goes in a header, never in the URL."""

    def __init__(self, url: str, token: str, timeout: float = 3.0):
        self.url = url
        self._token = token
        self.timeout = timeout
        self._client = None

    def trigger(self) -> None:
        """Nothing to do: the data process polls on its own; the next read is the news."""

    async def read(self) -> BoardSnapshot:
        """The feed's snapshot now; raises Unreachable when the feed cannot be read."""
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout, trust_env=False)
        try:
            reply = await self._client.get(self.url, headers={"Authorization": f"Bearer {self._token}"})
            reply.raise_for_status()
            return BoardSnapshot.from_json(reply.json())
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise Unreachable(f"the board's data process did not answer ({type(exc).__name__})",
                              backend="board") from None  # fmt: skip

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
