"""OrdersService: the orders area's reads (stuck, errors, recent pages, search, detail,
header figures) from sql/queries/orders.sql, as frozen dataclasses."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from services.postgres import PostgresService, named_queries

PAGE_SIZE = 200
VIEWS = ("stuck", "errors", "recent", "search")
MIN_PREFIX = 6  # hex digits of an id prefix (the tables show 8)
# Matches read off a prefix index before walking all orders newest first instead: orders
# for a server name (index entries), customers for an email (each costs an index probe).
SEARCH_CAP = {"server_name": (15_000, "orders"), "email": (1000, "customers")}


@dataclass(frozen=True)
class OrderFigures:
    stuck: int
    errors: int
    provisioned_1h: int
    considered_1h: int
    success_rate: float | None  # None: no orders in the last hour
    avg_provision_minutes: float | None  # None: nothing provisioned in 24 h
    as_of: datetime


@dataclass(frozen=True)
class Order:
    id: str
    user_id: str
    plan_id: str
    server_name: str
    status: str
    pterodactyl_server_id: str | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    email: str
    minutes_waiting: float | None = None

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "plan_id": self.plan_id,
            "server_name": self.server_name,
            "status": self.status,
            "pterodactyl_server_id": self.pterodactyl_server_id,
            "error_message": self.error_message,
            "email": self.email,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            **({"minutes_waiting": round(self.minutes_waiting, 1)} if self.minutes_waiting else {}),
        }


@dataclass(frozen=True)
class OrderPage:
    view: str
    orders: tuple[Order, ...]
    more: bool  # another page follows (recent view)

    @property
    def cursor(self) -> tuple[datetime, str] | None:
        if not self.orders:
            return None
        last = self.orders[-1]
        return (last.created_at, last.id)


@dataclass(frozen=True)
class OrderDetail:
    id: str
    user_id: str
    plan_id: str
    server_name: str
    status: str
    node_id: int | None
    pterodactyl_server_id: str | None
    pterodactyl_server_identifier: str | None
    stripe_subscription_id: str | None
    stripe_payment_intent_id: str | None
    amount_cents: int | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    plan_name: str
    game: str
    ram_gb: int
    egg_id: int
    price_monthly: Decimal
    node_name: str | None
    node_enabled: bool | None
    email: str
    display_name: str | None
    pterodactyl_user_id: int | None
    panel_username: str | None

    @property
    def has_panel_account(self) -> bool:
        return self.pterodactyl_user_id is not None


def _order(row) -> Order:
    values = dict(row)
    values["id"] = str(values["id"])
    values["user_id"] = str(values["user_id"])
    if values["minutes_waiting"] is not None:
        values["minutes_waiting"] = float(values["minutes_waiting"])
    return Order(**values)


def uuid_prefix_span(text: str) -> tuple[str, str] | None:
    """(lowest, highest) uuid starting with `text`, the start of a uuid as the tables show
    it (at least MIN_PREFIX hex digits, with or without its dashes); None for other text.
    PostgreSQL orders uuids by their bytes, so a prefix is one range of the primary key."""
    digits: list[str] = []
    dashes: set[int] = set()
    for char in text.strip().lower():
        if char == "-" and len(digits) in {8, 12, 16, 20} - dashes:
            dashes.add(len(digits))
            continue
        if char not in "0123456789abcdef":
            return None
        digits.append(char)
    if not MIN_PREFIX <= len(digits) < 32:
        return None
    hexed = "".join(digits)
    return str(uuid.UUID(hexed.ljust(32, "0"))), str(uuid.UUID(hexed.ljust(32, "f")))


def parse_uuid(text: str) -> str | None:
    """The canonical uuid in `text`, or None when it is not one."""
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        return None


class OrdersService:
    def __init__(self, postgres: PostgresService):
        self.postgres = postgres

    async def figures(self) -> OrderFigures:
        """The header figures; raises ServiceError."""
        row = await self.postgres.run("orders_figures")
        values = dict(row)
        for key in ("success_rate", "avg_provision_minutes"):
            if values[key] is not None:
                values[key] = float(values[key])
        return OrderFigures(**values)

    async def page(
        self,
        view: str,
        *,
        query: str = "",
        after: tuple[datetime, str] | None = None,
        limit: int = PAGE_SIZE,
    ) -> OrderPage:
        """One page of `view` (stuck, errors, recent, search). `after` is the keyset cursor
        of the previous page (recent only). Raises ValueError for an unknown view."""
        if view == "stuck":
            rows = await self.postgres.run("stuck_orders", limit=limit + 1)
        elif view == "errors":
            rows = await self.postgres.run("error_orders", limit=limit + 1)
        elif view == "recent":
            created, last_id = after if after else (None, None)
            rows = await self.postgres.run(
                "recent_orders", before_created=created, before_id=last_id, limit=limit + 1
            )
        elif view == "search":
            rows = await self._search(query, limit + 1)
        else:
            raise ValueError(f"unknown orders view {view!r}; one of {', '.join(VIEWS)}")
        orders = tuple(_order(r) for r in rows[:limit])
        return OrderPage(view=view, orders=orders, more=len(rows) > limit)

    async def _search(self, query: str, limit: int) -> list:
        """Newest first, one indexed query per form (an OR across forms made PostgreSQL
        filter every order): a uuid (order or user id); a uuid prefix as the tables show
        it; a server name or an email prefix, case-insensitive (no wildcards: `%` and `_`
        are text)."""
        text = query.strip()
        if not text:
            return []
        key = parse_uuid(text)
        if key is not None:
            return await self.postgres.run("search_orders_by_uuid", key=key, limit=limit)
        found = []
        span = uuid_prefix_span(text)
        if span is not None:
            low, high = span
            found += await self.postgres.run("search_orders_by_id_prefix", low=low, high=high, limit=limit)
        for form in ("server_name", "email"):
            found += await self._by_prefix(form, text, limit)
        unique = {row["id"]: row for row in found}.values()
        return sorted(unique, key=lambda r: (r["created_at"], str(r["id"])), reverse=True)[:limit]

    async def _by_prefix(self, form: str, text: str, limit: int) -> list:
        """Orders whose `form` (server_name, email) starts with `text`, newest first. A
        prefix that fewer than its SEARCH_CAP orders (customers) share is answered from its
        prefix index; a broader one is common enough that walking all orders newest first
        finds `limit` of them soon (within limit * orders / matches rows)."""
        cap, what = SEARCH_CAP[form]
        matches = await self.postgres.run(f"count_{what}_by_{form}", prefix=text, cap=cap)
        if matches == 0:
            return []
        if matches < cap:
            return await self.postgres.run(f"search_orders_by_{form}", prefix=text, cap=cap, limit=limit)
        return await self.postgres.run(f"search_orders_by_{form}_newest", prefix=text, limit=limit)

    async def detail(self, order_id: str) -> OrderDetail | None:
        """Every field of one order, or None when there is no such order."""
        key = parse_uuid(order_id)
        if key is None:
            return None
        row = await self.postgres.run("order_detail", id=key)
        if row is None:
            return None
        values = dict(row)
        values["id"] = str(values["id"])
        values["user_id"] = str(values["user_id"])
        return OrderDetail(**values)


# -- what the order runbooks read: typed, never raw records ---------------------------


@dataclass(frozen=True)
class LockedOrder:
    """An order as its action's precondition sees it, locked for the rest of the transaction."""

    id: str
    user_id: str
    status: str
    pterodactyl_server_id: str | None
    stripe_subscription_id: str | None
    stripe_payment_intent_id: str | None
    amount_cents: int | None
    has_panel_account: bool


@dataclass(frozen=True)
class OrderState:
    """An order's provisioning state right now (what a retry waits on)."""

    id: str
    status: str
    pterodactyl_server_id: str | None
    pterodactyl_server_identifier: str | None
    error_message: str | None
    updated_at: datetime | None


@dataclass(frozen=True)
class PanelAccount:
    user_id: str
    pterodactyl_user_id: str | None
    panel_username: str | None
    created_at: datetime | None


def _typed(cls, row):
    if row is None:
        return None
    values = {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in dict(row).items()}
    return cls(**{k: values[k] for k in cls.__dataclass_fields__})


async def lock_order(conn, order_id: str) -> LockedOrder | None:
    """The order, locked FOR UPDATE in `conn`'s transaction; None when there is none."""
    return _typed(LockedOrder, await named_queries().order_for_update(conn, id=order_id))


async def order_state(conn, order_id: str) -> OrderState | None:
    return _typed(OrderState, await named_queries().order_state(conn, id=order_id))


async def panel_account(conn, user_id: str) -> PanelAccount | None:
    """The customer's panel account, or None."""
    return _typed(PanelAccount, await named_queries().panel_account(conn, user_id=user_id))
