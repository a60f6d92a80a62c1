"""Game-day scenarios: the seeds' incidents replayed on a running sandbox so a team can
rehearse them, each driven from one background thread through the fakes' public controls
(FakeKube, FakeBot), the embedded cluster's stop/start and, for full nodes, the database."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from typing import Any, ClassVar

from console.sandbox.backends import say
from console.sandbox.stripe_seed import add_paid_sessions, bot_endpoint, set_endpoint, user_ids

log = logging.getLogger(__name__)

NAMESPACE = "production"
BOT = "agis-bot"
FLEET = "agis-fleet"
FILLER = "gameday-fill-"  # server_name prefix of the orders node-full adds (and removes)
# The calm bot: a few commands a second, an error now and then, no webhook failure.
CALM_RATES = {"commands": 3.0, "errors": 0.05, "webhook_failures": 0.0}


class Scenario:
    """A clock of ticks (one a second, `speed` times faster) on the sandbox's backends.
    Every scenario keeps players taking and leaving game servers and tells the bot how many
    of its pods are ready; subclasses add their incident in setup(), step() and teardown()."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""

    def __init__(self, sandbox: Any, *, speed: float = 1.0, seed: int = 11):
        if speed <= 0:
            raise ValueError(f"speed must be above 0, not {speed}")
        self.sandbox = sandbox
        self.speed = speed
        self.rng = random.Random(seed)
        self.ticks = 0
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._shutdown: dict[str, int] = {}  # game server -> tick it was shut down

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Set the scene (at once) and start the clock in a daemon thread."""
        for counter, rate in CALM_RATES.items():
            self.sandbox.bot.set_rate(counter, rate)
        remove_fillers(self.sandbox.owner_dsn)  # a node-full run killed before it cleaned up
        self.setup()
        self._sync_bot()
        self._thread = threading.Thread(target=self._run, name=f"scenario-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the clock and undo what must not outlive the run; idempotent."""
        self._halt.set()
        if self._thread:
            self._thread.join(60)
            self._thread = None
            self.teardown()

    def _run(self) -> None:
        failing = False
        while not self._halt.wait(1.0 / self.speed):
            self.ticks += 1
            try:
                self.step(self.ticks)
                self.players(self.ticks)
                self._sync_bot()
                failing = False
            except Exception as exc:  # a backend away (the database, mid-outage): try next tick
                if not failing:
                    log.warning("scenario %s, tick %d: %s", self.name, self.ticks, exc)
                failing = True

    def every(self, tick: int, seconds: float) -> bool:
        """Whether `tick` is one of every `seconds` (of scenario time)."""
        return tick % max(1, round(seconds)) == 0

    # ---- what subclasses add -------------------------------------------------------------

    def setup(self) -> None:
        """The incident's first moment (runs before the clock starts)."""

    def step(self, tick: int) -> None:
        """One tick of the incident."""

    def teardown(self) -> None:
        """Undo what must not stay in the reused database."""

    # ---- the world moving on its own -----------------------------------------------------

    def players(self, tick: int) -> None:
        """Players take a Ready game server every 3 s and leave one every 4 s (every 2 s once
        30 are taken); a server shut down goes 3 s later (the fleet makes another); the fleet
        grows to keep 5 Ready."""
        kube = self.sandbox.kube
        if not (self.every(tick, 3) or self.every(tick, 4) or self._shutdown):
            return
        servers = kube.objects("GameServer", NAMESPACE)
        by_state: dict[str, list[dict]] = {}
        for gs in servers:
            by_state.setdefault(gs.get("status", {}).get("state", ""), []).append(gs)
        if self.every(tick, 3) and by_state.get("Ready"):
            _set_state(kube, self.rng.choice(by_state["Ready"]), "Allocated")
        busy = len(by_state.get("Allocated", ()))
        if (self.every(tick, 4) or (busy > 30 and self.every(tick, 2))) and busy:
            _set_state(kube, self.rng.choice(by_state["Allocated"]), "Shutdown")
        for gs in by_state.get("Shutdown", []):
            name = gs["metadata"]["name"]
            since = self._shutdown.setdefault(name, tick)
            if tick - since >= 3:
                self._shutdown.pop(name, None)
                kube.delete("GameServer", NAMESPACE, name)
        ready = len(by_state.get("Ready", ())) - (1 if self.every(tick, 3) else 0)
        fleet = kube.get("Fleet", NAMESPACE, FLEET)
        if fleet and ready < 5 and fleet["spec"]["replicas"] < 100:
            fleet["spec"]["replicas"] = min(100, fleet["spec"]["replicas"] + 5 - ready)
            kube.apply(fleet)

    def bot_pods(self) -> list[dict]:
        return [p for p in self.sandbox.kube.objects("Pod", NAMESPACE)
                if p["metadata"].get("labels", {}).get("app") == BOT]  # fmt: skip

    def _sync_bot(self) -> None:
        deployment = self.sandbox.kube.get("Deployment", NAMESPACE, BOT)
        if deployment is None:
            self.sandbox.bot.pods = (0, 0)
            return
        status = deployment.get("status") or {}
        self.sandbox.bot.pods = (status.get("readyReplicas", 0), deployment["spec"].get("replicas", 0))


def _set_state(kube: Any, gs: dict, state: str) -> None:
    gs["status"]["state"] = state
    kube.apply(gs)


class Calm(Scenario):
    name = "calm"
    summary = "nothing on fire: the bot healthy, players come and go, nodes with room, no alert"


class CrashLoop(Scenario):
    name = "crash-loop"
    summary = (
        "a bad config: every production agis-bot pod crash-loops (again every ~15 s), the bot's "
        "/health says 0/N pods ready, AGISBotDown fires"
    )
    period = 15.0  # seconds between crashes

    def setup(self) -> None:
        self.sandbox.bot.set_rate("errors", 2.0)
        self.crash()

    def step(self, tick: int) -> None:
        if self.every(tick, self.period):
            self.crash()

    def crash(self) -> None:
        """Every production bot pod crashes (a restarted one too: the config is still bad)."""
        for pod in self.bot_pods():
            self.sandbox.kube.crashloop(NAMESPACE, pod["metadata"]["name"])


class NodeFull(Scenario):
    name = "node-full"
    summary = (
        'a rush of orders fills every enabled game node: retries fail with "No available nodes" '
        "until a node is enabled or room is made"
    )

    def setup(self) -> None:
        added = asyncio.run(_fill_nodes(self.sandbox.owner_dsn))
        say(f"node-full: {added} new orders fill every enabled node (removed when the sandbox stops)")

    def teardown(self) -> None:
        try:
            remove_fillers(self.sandbox.owner_dsn)
        except Exception as exc:  # the database is away: the next sandbox start removes them
            log.warning("node-full: the filling orders stay until the next start: %s", exc)


class WebhookFailure(Scenario):
    name = "webhook-failure"
    summary = (
        "Stripe webhook deliveries fail (a wrong signing secret): the endpoint is disabled, ~60 paid "
        "checkout sessions of the last 2 hours have no credits and another comes every 30 s; the bot's "
        "failure counter rises, PaymentWebhookFailures fires, the bot's log says why; after 10 minutes "
        "the secret is fixed, new payments are credited, the outage's stay owed until credited"
    )
    backlog = 60  # paid sessions the outage left undelivered: over the runbook's 50, so credit them
    backlog_over = 7200.0  # seconds back they were paid over
    checkout_every = 30.0  # seconds of scenario time between new paid sessions
    outage = 600.0  # seconds of scenario time until the secret is fixed and the endpoint enabled

    def __init__(self, sandbox: Any, *, outage: float | None = None, **kwargs: Any):
        super().__init__(sandbox, **kwargs)
        if outage is not None:
            self.outage = outage
        self.failing = True
        self.endpoint: str | None = None  # the bot's webhook endpoint at the fake Stripe
        self.users: list[str] = []  # who buys credit packs

    @property
    def payments(self) -> Any:
        return getattr(self.sandbox, "payments", None)  # a stand-in with only the bot has none

    def setup(self) -> None:
        self.sandbox.bot.set_rate("webhook_failures", 0.2)
        self.sandbox.bot.set_rate("errors", 0.3)
        if self.payments is None:
            return
        self.endpoint = bot_endpoint(self.payments, self.sandbox.bot.url)
        set_endpoint(self.payments, self.endpoint, enabled=False)
        self.users = user_ids(self.payments)
        if not self.users:
            return
        buyers = self.rng.choices(self.users, k=self.backlog)
        made = add_paid_sessions(self.payments, buyers, self.rng, within=self.backlog_over)
        say(f"webhook-failure: endpoint {self.endpoint} disabled, {len(made)} paid checkout sessions of the "
            f"last 2 hours undelivered; fixed after {self.outage:g} s of scenario time")  # fmt: skip

    def step(self, tick: int) -> None:
        if self.failing and tick >= round(self.outage):
            self.recover()
        if self.failing and self.every(tick, 5):
            event = f"evt_{self.rng.getrandbits(64):016x}"
            said = (f"stripe webhook {event}: signature verification failed (No signatures found "
                    "matching the expected signature for payload); answered 400")  # fmt: skip
            self.bot_log("ERROR", said)
        if self.users and self.every(tick, self.checkout_every):
            ((session, event),) = add_paid_sessions(self.payments, [self.rng.choice(self.users)], self.rng)
            if not event.pending:
                meta = session["metadata"]
                self.bot_log("INFO", f"stripe webhook {event.id}: {session['id']} paid, credited "
                                     f"{meta['credits']} credits to user {meta['user_id']}")  # fmt: skip

    def recover(self) -> None:
        """The signing secret is fixed: the endpoint is enabled, the bot's failures stop."""
        if self.endpoint:
            set_endpoint(self.payments, self.endpoint, enabled=True)
        self.sandbox.bot.set_rate("webhook_failures", CALM_RATES["webhook_failures"])
        self.sandbox.bot.set_rate("errors", CALM_RATES["errors"])
        self.failing = False
        say("webhook-failure: the signing secret is fixed and the endpoint enabled: new payments are "
            "credited; the outage's sessions stay owed until credited (Payments, reconcile)")  # fmt: skip

    def bot_log(self, level: str, message: str) -> None:
        pods = self.bot_pods()
        if pods:
            pod = self.rng.choice(pods)["metadata"]["name"]
            self.sandbox.kube.log(NAMESPACE, pod, _log_line(level, message))

    def teardown(self) -> None:
        if self.endpoint:
            try:
                set_endpoint(self.payments, self.endpoint, enabled=True)
            except Exception as exc:  # the fake Stripe stopped first: it goes with the sandbox
                log.warning("webhook-failure: the endpoint stays disabled: %s", exc)


class DbOutage(Scenario):
    name = "db-outage"
    summary = (
        "PostgreSQL goes away 20 s in and comes back 60 s later: the console's panels and the bot "
        "lose it, DatabaseConnectionFailed fires, then everything recovers"
    )
    after = 20.0  # seconds before the server stops (the console has connected by then)
    duration = 60.0

    def __init__(self, sandbox: Any, **kwargs: Any):
        super().__init__(sandbox, **kwargs)
        self.began = self.down = False

    def step(self, tick: int) -> None:
        if not self.began and tick >= round(self.after):
            self.began = True
            self.outage()
        elif self.down and tick >= round(self.after + self.duration):
            self.recover()  # raises while the server cannot start: tried again next tick

    def outage(self) -> None:
        sandbox = self.sandbox
        sandbox.bot.database_connected = False
        sandbox.bot.set_rate("errors", 5.0)
        self.down = True
        sandbox.cluster.stop()
        say(f"db-outage: PostgreSQL stopped; it comes back in {self.duration:g} s of scenario time")
        for pod in sandbox.kube.objects("Pod", NAMESPACE):
            if pod["metadata"].get("labels", {}).get("app") == "postgres":
                sandbox.kube.crashloop(NAMESPACE, pod["metadata"]["name"])

    def recover(self) -> None:
        sandbox = self.sandbox
        sandbox.cluster.start()
        self.down = False
        say("db-outage: PostgreSQL is back")
        sandbox.bot.database_connected = True
        sandbox.bot.set_rate("errors", CALM_RATES["errors"])
        for pod in sandbox.kube.objects("Pod", NAMESPACE):
            if pod["metadata"].get("labels", {}).get("app") == "postgres":
                # Its replacement starts healthy, as a pod rescheduled after the fix would.
                sandbox.kube.delete("Pod", NAMESPACE, pod["metadata"]["name"])


SCENARIOS: dict[str, type[Scenario]] = {
    cls.name: cls for cls in (Calm, CrashLoop, NodeFull, WebhookFailure, DbOutage)
}


def scenario(name: str, sandbox: Any, *, speed: float = 1.0) -> Scenario:
    """The scenario called `name` on `sandbox`; raises KeyError naming the known ones."""
    try:
        cls = SCENARIOS[name]
    except KeyError:
        raise KeyError(f"no scenario {name!r} (known: {', '.join(SCENARIOS)})") from None
    return cls(sandbox, speed=speed)


def _log_line(level: str, message: str) -> str:
    from datetime import UTC, datetime

    return f"{datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z {level} {message}"


# ---- full nodes, in the database the fakes and the console share ---------------------------

_LIVE = ("paid", "provisioning", "installing", "provisioned", "active")
_FREE_BY_NODE = """
SELECT n.id, n.name,
       n.max_ram_gb - n.reserved_headroom_gb - COALESCE(SUM(p.ram_gb), 0) AS free
FROM ptero_nodes n
LEFT JOIN orders o ON o.node_id = n.id AND o.status = ANY($1::text[])
LEFT JOIN plans p ON p.id = o.plan_id
WHERE n.enabled
GROUP BY n.id
"""
_PLANS = "SELECT id, ram_gb FROM plans WHERE is_active ORDER BY ram_gb DESC, id"
_CUSTOMER = "SELECT user_id FROM external_accounts ORDER BY created_at, user_id LIMIT 1"
_ADD = """
INSERT INTO orders (user_id, plan_id, server_name, status, node_id, pterodactyl_server_id,
                    pterodactyl_server_identifier, amount_cents)
SELECT $1::uuid, $2, $3, 'active', $4, $5, $6, (price_monthly * 100)::int FROM plans WHERE id = $2
"""
_REMOVE = "DELETE FROM orders WHERE server_name LIKE $1 || '%'"
_NOTIFY = """SELECT pg_notify('ops_events', '{"kind": "orders", "payload": {}}')"""


async def _fill_nodes(dsn: str) -> int:
    """Add live orders on every enabled node until not even the smallest plan fits; returns how many."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            plans = [(r["id"], r["ram_gb"]) for r in await conn.fetch(_PLANS)]
            customer = await conn.fetchval(_CUSTOMER)
            if not plans or customer is None:
                return 0
            added = 0
            for node in await conn.fetch(_FREE_BY_NODE, list(_LIVE)):
                free = node["free"]
                while True:
                    plan = next(((pid, ram) for pid, ram in plans if ram <= free), None)
                    if plan is None:
                        break
                    added += 1
                    await conn.execute(_ADD, customer, plan[0], f"{FILLER}{node['name']}-{added}", node["id"],
                                       str(80000 + added), f"gd{added:06x}")  # fmt: skip
                    free -= plan[1]
            await conn.execute(_NOTIFY)
            return added
    finally:
        await conn.close()


def remove_fillers(dsn: str) -> int:
    """Delete the orders node-full added; returns how many."""

    async def run() -> int:
        import asyncpg

        conn = await asyncpg.connect(dsn)
        try:
            status = await conn.execute(_REMOVE, FILLER)
            removed = int(status.split()[-1])
            if removed:
                await conn.execute(_NOTIFY)
            return removed
        finally:
            await conn.close()

    return asyncio.run(run())
