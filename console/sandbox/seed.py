"""The demo business: 16 games with hourly prices, plans, nodes (one hot, one disabled with
live servers, one empty), users with and without panel accounts, 90 days of orders
with stuck, failed and freshly provisioned ones, credit transactions, and the console's
price history of a few games (ops.pricing_history).
Deterministic for a given (seed, now); written with COPY so a million orders is quick."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

MIN_ORDERS = 200
LIVE = ("paid", "provisioning", "installing", "provisioned", "active")
ERRORS = ("No available nodes", "Failed to create server: 422", "External account not found")

# game_type, display name, credits per hour, enabled (rust = 250 as the AGIS manual sets it)
GAMES = (
    ("minecraft", "Minecraft", 100, True),
    ("rust", "Rust", 250, True),
    ("ark", "ARK: Survival Evolved", 300, True),
    ("valheim", "Valheim", 150, True),
    ("palworld", "Palworld", 280, True),
    ("terraria", "Terraria", 80, True),
    ("factorio", "Factorio", 120, True),
    ("cs2", "Counter-Strike 2", 180, True),
    ("gmod", "Garry's Mod", 110, True),
    ("satisfactory", "Satisfactory", 260, True),
    ("7dtd", "7 Days to Die", 200, True),
    ("enshrouded", "Enshrouded", 220, True),
    ("project-zomboid", "Project Zomboid", 160, True),
    ("vrising", "V Rising", 190, True),
    ("conan", "Conan Exiles", 240, True),
    ("unturned", "Unturned", 90, False),
)
# The console's price history before the demo starts (ops.pricing_history): days ago,
# game, operator, change, old and new price, enabled after, why. Each game's last row
# agrees with GAMES.
PRICE_HISTORY = (
    (60, "rust", "dana", "price", 200, 220, True, "Wipe-day demand: rust servers sell out on Thursdays"),
    (50, "minecraft", "ines", "price", 90, 100, True, "Node costs went up 10 % this quarter"),
    (35, "rust", "dana", "price", 220, 250, True, "AGIS pricing update: rust 250 (ops manual)"),
    (25, "palworld", "ines", "price", 320, 280, True, "Match competitors' Palworld pricing"),
    (18, "enshrouded", "dana", "price", 180, 220, True, "Launch-week demand"),
    (12, "unturned", "dana", "disable", 90, 90, False, "Low demand: off sale until the new egg ships"),
)
RAM_CHOICES = (2, 4, 6, 8, 12, 16)
EGGS = {game[0]: egg for egg, game in enumerate(GAMES, start=1)}  # the panel egg per game

# name, location, max RAM, reserved headroom, enabled, share of RAM used by live servers
NODES = (
    ("fsn1-node-01", "Falkenstein", 256, 16, True, 0.88),  # the hot one, above 80%
    ("fsn1-node-02", "Falkenstein", 256, 16, True, 0.62),
    ("nbg1-node-01", "Nuremberg", 256, 16, True, 0.48),
    ("hel1-node-01", "Helsinki", 128, 8, True, 0.70),
    ("ash1-node-01", "Ashburn", 256, 16, True, 0.40),
    ("sin1-node-01", "Singapore", 128, 8, True, 0.34),
    ("fsn1-node-03", "Falkenstein", 128, 8, False, 0.55),  # disabled, still hosting servers
    ("hel1-node-02", "Helsinki", 128, 8, True, 0.0),  # new, nothing on it yet
)
WORDS = (
    "frost",
    "ember",
    "iron",
    "lunar",
    "moss",
    "storm",
    "cedar",
    "onyx",
    "amber",
    "nova",
    "raven",
    "tide",
)
NAMES = ("alex", "sam", "jo", "kai", "mia", "noah", "lea", "finn", "zoe", "max", "ivy", "leo", "ada", "eli")


@dataclass(frozen=True)
class SeedSummary:
    users: int
    orders: int
    nodes: int
    plans: int
    games: int
    external_accounts: int
    credit_transactions: int
    now: datetime


@dataclass
class _Plan:
    id: str
    game: str
    ram_gb: int
    price: Decimal


class _Gen:
    def __init__(self, seed: int, now: datetime):
        self.rng = random.Random(seed)
        self.now = now
        self.server_seq = 20000

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def hex(self, n: int) -> str:
        return f"{self.rng.getrandbits(n * 4):0{n}x}"

    def ago(self, low: timedelta, high: timedelta) -> datetime:
        return self.now - timedelta(seconds=self.rng.uniform(low.total_seconds(), high.total_seconds()))

    def server(self) -> tuple[str, str]:
        self.server_seq += 1
        return str(self.server_seq), self.hex(8)


def _plans(gen: _Gen) -> list[_Plan]:
    plans = []
    for game, _display, per_hour, _enabled in GAMES:
        sizes = sorted(
            gen.rng.sample(RAM_CHOICES[:5] if per_hour < 150 else RAM_CHOICES[1:], gen.rng.randint(2, 4))
        )
        if game == "minecraft":
            sizes = [2, 4, 8, 16]  # the smallest plan anywhere: 2 GB
        for ram in sizes:
            price = (Decimal(ram) * Decimal("2.50") + Decimal(per_hour) / 100).quantize(Decimal("0.01"))
            plans.append(_Plan(f"{game}-{ram}gb", game, ram, price))
    return plans


async def seed_business(
    conn: asyncpg.Connection, *, orders: int = 6000, seed: int = 42, now: datetime | None = None
) -> SeedSummary:
    """Fill the (migrated, empty) reference tables with the demo business.

    Raises ValueError when the tables already hold data or `orders` is below 200;
    nothing is written then."""
    if orders < MIN_ORDERS:
        raise ValueError(f"the demo needs at least {MIN_ORDERS} orders, not {orders}")
    if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM orders) OR EXISTS (SELECT 1 FROM users)"):
        raise ValueError("this database already holds orders or users: seed only an empty one (demo --reset)")
    gen = _Gen(seed, now or datetime.now(UTC))
    rng = gen.rng
    plans = _plans(gen)
    by_ram = sorted(plans, key=lambda p: p.ram_gb)
    smallest = by_ram[0].ram_gb

    # -- users and panel accounts ---------------------------------------------------
    n_users = max(50, orders // 3)
    users = []
    for i in range(n_users):
        name = rng.choice(NAMES)
        users.append(
            (
                gen.uuid(),
                f"{name}.{i}@example.net",
                f"{name.title()} {i}",
                gen.ago(timedelta(days=91), timedelta(days=400)),
            )
        )
    with_account = [u for u in users if rng.random() < 0.85]
    account_ids = {u[0] for u in with_account}
    without_account = [u for u in users if u[0] not in account_ids]
    if not without_account:  # a tiny seed still needs a customer without a panel account
        without_account.append(with_account.pop())
        account_ids.discard(without_account[0][0])
    accounts = [
        (u[0], 1000 + i, u[1].split("@")[0].replace(".", "_"), u[3] + timedelta(minutes=5))
        for i, u in enumerate(with_account)
    ]
    account_user_ids = [u[0] for u in with_account]
    no_account_ids = [u[0] for u in without_account]
    all_user_ids = [u[0] for u in users]

    rows: list[tuple] = []

    def order(user, plan: _Plan, status, created, updated, node=None, server=None, error=None) -> None:
        sid, ident = server if server else (None, None)
        rows.append(
            (
                gen.uuid(),
                user,
                plan.id,
                f"{rng.choice(WORDS)}-{plan.game}-{rng.randint(1, 999)}",
                status,
                node,
                sid,
                ident,
                f"sub_{gen.hex(14)}",
                f"pi_{gen.hex(24)}",
                int(plan.price * 100),
                error,
                created,
                updated,
            )
        )

    # -- live servers, node by node, never above a node's capacity ------------------
    live_rows: list[int] = []
    for node_id, (_n, _loc, max_ram, headroom, _enabled, share) in enumerate(NODES, start=1):
        budget = min(int(max_ram * share), max_ram - headroom)
        used = 0
        while budget - used >= smallest:
            fitting = [p for p in by_ram if p.ram_gb <= budget - used]
            plan = rng.choice(fitting)
            created = gen.ago(timedelta(days=2), timedelta(days=89))
            live_rows.append(len(rows))
            order(
                rng.choice(account_user_ids),
                plan,
                "active",
                created,
                created + timedelta(minutes=rng.uniform(1, 8)),
                node_id,
                gen.server(),
            )
            used += plan.ram_gb
    # Some live servers are fresh: provisioned in the last 24 h (12 in the last hour),
    # and a few are still provisioning or installing. Their RAM is already counted.
    fresh = [i for i in live_rows if NODES[rows[i][5] - 1][4]]
    rng.shuffle(fresh)
    for n, i in enumerate(fresh[:40]):
        window = (
            (timedelta(minutes=9), timedelta(minutes=55))
            if n < 12
            else (timedelta(hours=1), timedelta(hours=23))
        )
        created = gen.ago(*window)
        if n in (12, 13):
            status, updated, server = (
                ("provisioning", "installing")[n - 12],
                created + timedelta(minutes=1),
                (None, None),
            )
        else:
            status, updated, server = (
                "provisioned",
                created + timedelta(minutes=rng.uniform(1, 8)),
                (rows[i][6], rows[i][7]),
            )
        r = list(rows[i])
        r[4], r[6], r[7], r[12], r[13] = status, server[0], server[1], created, updated
        rows[i] = tuple(r)

    # -- orders waiting or failed ---------------------------------------------------
    for n in range(10):  # stuck in paid for more than 10 minutes, no server
        created = (
            gen.ago(timedelta(minutes=12), timedelta(hours=14))
            if n
            else gen.ago(timedelta(minutes=11), timedelta(minutes=40))
        )
        # Two belong to customers with no panel account: their retry fails until a sync.
        owner = rng.choice(no_account_ids if n in (2, 5) else account_user_ids)
        order(owner, rng.choice(plans), "paid", created, created)
    for _ in range(3):  # just paid: still inside the 10 minutes
        created = gen.ago(timedelta(minutes=1), timedelta(minutes=8))
        order(rng.choice(account_user_ids), rng.choice(plans), "paid", created, created)
    for n in range(9):  # failed provisioning with the seed's three errors
        error = ERRORS[n % 3]
        user = rng.choice(no_account_ids if error == "External account not found" else account_user_ids)
        window = (
            (timedelta(minutes=15), timedelta(minutes=50))
            if n == 0
            else (timedelta(hours=1), timedelta(hours=22))
        )
        created = gen.ago(*window)
        order(
            user,
            rng.choice(plans),
            "error",
            created,
            created + timedelta(seconds=rng.uniform(5, 90)),
            error=error,
        )

    # -- history: canceled, expired and refunded servers over 90 days ---------------
    enabled_nodes = [i for i, n in enumerate(NODES, start=1) if n[5] > 0]
    for _ in range(max(0, orders - len(rows))):
        created = gen.ago(timedelta(days=1), timedelta(days=90))
        status = rng.choices(("canceled", "expired", "refunded"), (6, 3, 1))[0]
        order(
            rng.choice(all_user_ids),
            rng.choice(plans),
            status,
            created,
            created
            + (
                timedelta(days=rng.uniform(0.1, 30))
                if status != "refunded"
                else timedelta(hours=rng.uniform(1, 48))
            ),
            rng.choice(enabled_nodes),
            gen.server() if status != "refunded" else None,
        )
    rows = [r if r[13] <= gen.now else (*r[:13], gen.now) for r in rows]

    # -- credits ---------------------------------------------------------------------
    credits = []
    for user in rng.sample(all_user_ids, k=max(10, n_users // 3)):
        start = gen.ago(timedelta(days=1), timedelta(days=90))
        pi = f"pi_{gen.hex(24)}"
        credits.append((user, rng.choice((1000, 2500, 5000, 10000)), "purchase", "Credit pack", pi, start))
        for _ in range(rng.randint(0, 4)):
            spent_at = start + timedelta(hours=rng.uniform(1, 200))
            credits.append(
                (
                    user,
                    -rng.choice((100, 250, 500, 1200)),
                    "spend",
                    "Server hours",
                    None,
                    min(spent_at, gen.now),
                )
            )
        if rng.random() < 0.1:
            credits.append((user, 500, "bonus", "Welcome bonus", None, start))
        if rng.random() < 0.03:
            credits.append(
                (
                    user,
                    1000,
                    "refund",
                    "Refund of unused credits",
                    pi,
                    min(start + timedelta(days=2), gen.now),
                )
            )
    for _ in range(6):  # purchases in the last 24 h (the webhook-failure runbook's query)
        credits.append(
            (
                rng.choice(all_user_ids),
                2500,
                "purchase",
                "Credit pack",
                f"pi_{gen.hex(24)}",
                gen.ago(timedelta(minutes=5), timedelta(hours=23)),
            )
        )

    async with conn.transaction():
        await conn.copy_records_to_table(
            "pricing_config",
            records=[(g, d, c, e, gen.now) for g, d, c, e in GAMES],
            columns=("game_type", "display_name", "cost_per_hour", "enabled", "updated_at"),
        )
        await conn.copy_records_to_table(
            "plans",
            records=[
                (
                    p.id,
                    p.game,
                    f"{p.ram_gb} GB",
                    p.ram_gb,
                    max(2, p.ram_gb // 4),
                    p.ram_gb * 5,
                    p.price,
                    EGGS[p.game],
                    gen.now - timedelta(days=400),
                )
                for p in plans
            ],
            columns=(
                "id",
                "game",
                "name",
                "ram_gb",
                "cpu_cores",
                "disk_gb",
                "price_monthly",
                "egg_id",
                "created_at",
            ),
        )
        await conn.copy_records_to_table(
            "ptero_nodes",
            records=[
                (
                    i,
                    n[0],
                    f"{n[0]}.nodes.example.net",
                    n[1],
                    100 + i,
                    n[2],
                    n[3],
                    n[4],
                    gen.now - timedelta(days=500 - 30 * i),
                )
                for i, n in enumerate(NODES, start=1)
            ],
            columns=(
                "id",
                "name",
                "fqdn",
                "location",
                "pterodactyl_node_id",
                "max_ram_gb",
                "reserved_headroom_gb",
                "enabled",
                "created_at",
            ),
        )
        await conn.execute(
            "SELECT setval(pg_get_serial_sequence('ptero_nodes', 'id'), (SELECT max(id) FROM ptero_nodes))"
        )
        await conn.copy_records_to_table(
            "users", records=users, columns=("id", "email", "display_name", "created_at")
        )
        await conn.copy_records_to_table(
            "external_accounts",
            records=accounts,
            columns=("user_id", "pterodactyl_user_id", "panel_username", "created_at"),
        )
        await conn.copy_records_to_table(
            "orders",
            records=rows,
            columns=(
                "id",
                "user_id",
                "plan_id",
                "server_name",
                "status",
                "node_id",
                "pterodactyl_server_id",
                "pterodactyl_server_identifier",
                "stripe_subscription_id",
                "stripe_payment_intent_id",
                "amount_cents",
                "error_message",
                "created_at",
                "updated_at",
            ),
        )
        await conn.copy_records_to_table(
            "credit_transactions",
            records=credits,
            columns=(
                "user_id",
                "amount",
                "transaction_type",
                "description",
                "stripe_payment_intent_id",
                "created_at",
            ),
        )
        if await conn.fetchval("SELECT to_regclass('ops.pricing_history') IS NOT NULL"):
            await conn.copy_records_to_table(
                "pricing_history",
                schema_name="ops",
                records=[
                    (gen.now - timedelta(days=days), game, who, change, old, new,
                     enabled if change == "price" else not enabled, enabled, why)
                    for days, game, who, change, old, new, enabled, why in PRICE_HISTORY
                ],
                columns=("at", "game_type", "operator", "change", "old_cost", "new_cost", "old_enabled",
                         "new_enabled", "reason"),
            )  # fmt: skip
    await conn.execute("ANALYZE users, plans, ptero_nodes, orders, external_accounts, credit_transactions")
    return SeedSummary(
        users=len(users),
        orders=len(rows),
        nodes=len(NODES),
        plans=len(plans),
        games=len(GAMES),
        external_accounts=len(accounts),
        credit_transactions=len(credits),
        now=gen.now,
    )
