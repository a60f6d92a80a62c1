"""PricingService: the games of pricing_config (the AGIS manual's 16 game types) with their
hourly price, live servers and what those bring in per hour; the console's price history
(ops.pricing_history) and what a price was on a date. The changes themselves are runbook
actions (services.pricing_actions)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from services.postgres import PostgresService

DEFAULT_CEILING = 10_000  # credits/hour: a price at or above it is a typo (OPSCONSOLE_PRICE_CEILING)
MAX_CREDITS = 2_147_483_647  # what pricing_config.cost_per_hour (integer) can hold
TYPED_OVER_PCT = 25.0  # a change bigger than this (either way) is confirmed by typing the game
CACHE_MINUTES = 5  # the bot's pricing cache (AGIS manual: "updates within 5 minutes")
HISTORY_LIMIT = 500


@dataclass(frozen=True)
class GamePrice:
    """One game as the pricing area lists it: its price, whether it is on sale, its live
    servers, and the last change the console recorded for it."""

    game_type: str
    display_name: str
    cost_per_hour: int
    enabled: bool
    updated_at: datetime
    live_servers: int
    changed_at: datetime | None = None
    changed_by: str | None = None
    change: str | None = None
    old_cost: int | None = None
    recorded_cost: int | None = None
    recorded_enabled: bool | None = None
    reason: str | None = None

    @property
    def credits_per_hour(self) -> int:
        """What its live servers cost per hour at the current price."""
        return self.live_servers * self.cost_per_hour

    @property
    def changed_outside(self) -> bool:
        """The price or availability is not what the console last recorded: someone changed
        it another way (the bot's admin command, psql)."""
        return self.recorded_cost is not None and (
            self.recorded_cost != self.cost_per_hour or self.recorded_enabled != self.enabled
        )


@dataclass(frozen=True)
class Pricing:
    games: list[GamePrice]
    now: datetime
    ceiling: int

    @property
    def live_servers(self) -> int:
        return sum(g.live_servers for g in self.games)

    @property
    def credits_per_hour(self) -> int:
        return sum(g.credits_per_hour for g in self.games)

    def game(self, game_type: str) -> GamePrice | None:
        return next((g for g in self.games if g.game_type == game_type), None)


@dataclass(frozen=True)
class PriceChange:
    """One recorded change: who, when, the state before and after, and why."""

    id: int
    at: datetime
    game_type: str
    operator: str
    change: str  # price | enable | disable
    old_cost: int
    new_cost: int
    old_enabled: bool
    new_enabled: bool
    reason: str

    @property
    def what(self) -> str:
        """'250 → 300 (+20.0 %)', 'disabled', 'enabled'."""
        if self.change == "price":
            return f"{self.old_cost:,} → {self.new_cost:,} ({percent_text(self.old_cost, self.new_cost)})"
        return "enabled" if self.new_enabled else "disabled"


@dataclass(frozen=True)
class PriceThen:
    """What a game cost at a moment, and where the answer comes from: 'changed' (the last
    change before it, made `since` by `changed_by`), 'before first change' (the first change
    after it, at `next_change_at`, says what it was), 'no change recorded' (the price now)."""

    game_type: str
    display_name: str
    cost_per_hour: int
    enabled: bool
    source: str
    since: datetime | None = None
    changed_by: str | None = None
    next_change_at: datetime | None = None


def change_pct(old: int, new: int) -> float | None:
    """The change from `old` to `new` in percent; None from a price of 0 (any rise is
    infinitely many percent)."""
    if old == 0:
        return 0.0 if new == 0 else None
    return (new - old) * 100.0 / old


def percent_text(old: int, new: int) -> str:
    """'+20.0 %', '-12.5 %', 'from free'."""
    pct = change_pct(old, new)
    return "from free" if pct is None else f"{pct:+.1f} %"


def needs_typed(old: int | None, new: int) -> bool:
    """Whether a change from `old` to `new` is big enough (over ±25 %, or from free, or from a
    price nobody saw) to be confirmed by typing the game's name."""
    if old is None:
        return True
    pct = change_pct(old, new)
    return pct is None or abs(pct) > TYPED_OVER_PCT


def parse_credits(text: str | int) -> int:
    """A price in credits per hour: a whole number, 0 or more (the configured ceiling is
    checked by the action, which knows it). Raises ValueError saying why not."""
    raw = str(text).strip().replace("_", "").replace(",", "")
    if not raw:
        raise ValueError("give the price in credits per hour (a whole number)")
    if not re.fullmatch(r"[+-]?\d+", raw):
        if re.fullmatch(r"[+-]?\d*\.\d+", raw):
            raise ValueError(f"{text!r} is not a whole number of credits")
        raise ValueError(f"{str(text)[:40]!r} is not a number of credits")
    value = int(raw)
    if value < 0:
        raise ValueError(f"a price cannot be negative ({value:,})")
    if value > MAX_CREDITS:
        raise ValueError(f"{raw[:20]}{'…' if len(raw) > 20 else ''} credits is more than a price can be")
    return value


def parse_game(text: str) -> str:
    """A game type as pricing_config names it (lower-case letters, digits, '-' and '_')."""
    value = text.strip()
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", value):
        raise ValueError(f"{value[:40]!r} is not a game type (lower-case, like rust or 7dtd)")
    return value


AS_OF_FORMATS = "a date (2025-01-31: as the day ended, UTC), a time (2025-01-31 14:00, UTC unless " \
    "it says +02:00), or how long ago (3d, 12h, 2w)"  # fmt: skip


def parse_as_of(text: str, now: datetime | None = None) -> datetime:
    """The moment an `as of` answer is for: a date means the end of that day (UTC), so the
    changes made that day count; a time is UTC unless it has an offset; 3d / 12h / 2w are
    that long before now. Raises ValueError naming the forms it takes."""
    value = text.strip()
    now = now or datetime.now(UTC)
    ago = re.fullmatch(r"(\d{1,5})\s*([hdw])", value.lower())
    if ago:
        amount, unit = int(ago.group(1)), ago.group(2)
        return now - timedelta(hours=amount * {"h": 1, "d": 24, "w": 168}[unit])
    if value.lower() in ("now", "today"):
        return now
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            day = date.fromisoformat(value)
            return datetime.combine(day, time.max, tzinfo=UTC)
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value[:40]!r} is not {AS_OF_FORMATS}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class PricingService:
    def __init__(self, postgres: PostgresService, ceiling: int = DEFAULT_CEILING):
        self.postgres = postgres
        self.ceiling = ceiling

    async def games(self) -> Pricing:
        """Every game with its price, live servers and last recorded change; raises
        ServiceError."""
        rows = await self.postgres.run("pricing_games")
        now = datetime.now(UTC)
        return Pricing([GamePrice(**dict(r)) for r in rows], now, self.ceiling)

    async def history(self, game_type: str | None = None, limit: int = HISTORY_LIMIT) -> list[PriceChange]:
        """The recorded changes, newest first (one game's when `game_type` is given)."""
        rows = await self.postgres.run("pricing_history", game_type=game_type, limit=limit)
        return [PriceChange(**dict(r)) for r in rows]

    async def as_of(self, when: datetime) -> list[PriceThen]:
        """What every game cost, and whether it was on sale, at `when`."""
        rows = await self.postgres.run("pricing_as_of", at=when)
        return [PriceThen(**dict(r)) for r in rows]


def pricing_json(pricing: Pricing) -> dict:
    """What `opsconsole pricing --json` prints."""
    return {
        "ceiling": pricing.ceiling,
        "live_servers": pricing.live_servers,
        "credits_per_hour": pricing.credits_per_hour,
        "games": [
            {
                "game_type": g.game_type,
                "display_name": g.display_name,
                "cost_per_hour": g.cost_per_hour,
                "enabled": g.enabled,
                "live_servers": g.live_servers,
                "credits_per_hour": g.credits_per_hour,
                "changed_at": g.changed_at.isoformat() if g.changed_at else None,
                "changed_by": g.changed_by,
                "changed_outside_console": g.changed_outside,
            }
            for g in pricing.games
        ],
    }


def change_json(change: PriceChange) -> dict:
    return {
        "id": change.id, "at": change.at.isoformat(), "game_type": change.game_type,
        "operator": change.operator, "change": change.change, "old_cost": change.old_cost,
        "new_cost": change.new_cost, "old_enabled": change.old_enabled, "new_enabled": change.new_enabled,
        "reason": change.reason,
    }  # fmt: skip


def then_json(then: PriceThen) -> dict:
    return {
        "game_type": then.game_type, "display_name": then.display_name,
        "cost_per_hour": then.cost_per_hour, "enabled": then.enabled, "source": then.source,
        "since": then.since.isoformat() if then.since else None, "changed_by": then.changed_by,
        "next_change_at": then.next_change_at.isoformat() if then.next_change_at else None,
    }  # fmt: skip
