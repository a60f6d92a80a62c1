"""What the pricing area draws, as pure functions of PricingService's dataclasses: a game's
row, the same game as it was at an `as of` moment, the area's status line and the
selected game's detail with its history. Game names and reasons come from the database:
shown inert (screens.shown), never read as markup."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text

from screens.backups_render import Row, grid
from screens.shown import fill, plain
from screens.widgets import short_age
from services.pricing import GamePrice, PriceChange, PriceThen, Pricing, percent_text

__all__ = ["grid"]

COLUMNS = ("game", "price/h", "sale", "live", "credits/h", "changed")
AS_OF_COLUMNS = ("game", "then/h", "sale", "now/h", "since", "price set")


def _sale(enabled: bool) -> Text:
    return Text("yes", style="green") if enabled else Text("no", style="bold yellow")


def last_change_cell(game: GamePrice, now: datetime) -> Text:
    """'35d dana' (how long ago, by whom), '—' when none is recorded; a '!' in yellow when
    the price was changed outside the console since."""
    if game.changed_at is None:
        return Text("—", style="dim")
    cell = fill("{} {}", short_age(game.changed_at, now), game.changed_by or "?", limit=12)
    if game.changed_outside:
        cell.append(" !", style="bold yellow")
    return cell


def _number(value: int, width: int, style: str = "") -> Text:
    """A figure right-aligned under its column's header (`width` is the header's length)."""
    return Text(f"{value:>{width},}", style=style)


def game_row(game: GamePrice, now: datetime) -> tuple:
    """One row: game, price per hour, on sale, live servers, credits/hour, last change."""
    dim = "" if game.enabled else "dim"
    return (
        plain(game.game_type, dim, limit=24),
        _number(game.cost_per_hour, 7, "bold" if game.enabled else "dim"),
        _sale(game.enabled),
        _number(game.live_servers, 4, dim),
        _number(game.credits_per_hour, 9, dim),
        last_change_cell(game, now),
    )


def price_set_text(then: PriceThen) -> Text:
    """Where an `as of` answer comes from: '10-02 by dana' (the change in force then),
    'before 11-13' (before the first change recorded, which says what it was), 'none
    recorded' (the price now: the console recorded no change of it)."""
    if then.source == "changed" and then.since is not None:
        return fill("{} by {}", f"{then.since.astimezone(UTC):%m-%d}", then.changed_by or "?", limit=12)
    if then.next_change_at is not None:
        return Text(f"before {then.next_change_at.astimezone(UTC):%m-%d}", style="dim")
    return Text("none recorded", style="dim")


def then_row(then: PriceThen, game: GamePrice | None) -> tuple:
    """One row of the `as of` table: the price then, on sale then, the price now and the
    change since, and where the answer comes from."""
    now_cost = game.cost_per_hour if game else None
    same = now_cost is None or now_cost == then.cost_per_hour
    since = "—" if same else percent_text(then.cost_per_hour, now_cost)
    return (
        plain(then.game_type, "" if then.enabled else "dim", limit=24),
        _number(then.cost_per_hour, 6, "bold"),
        _sale(then.enabled),
        Text("?") if now_cost is None else _number(now_cost, 5),
        Text(since, style="" if since == "—" else "yellow"),
        price_set_text(then),
    )


def servers(n: int) -> str:
    """'1 server', '42 servers'."""
    return f"{n:,} server{'' if n == 1 else 's'}"


def when_text(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def status_text(pricing: Pricing, as_of: datetime | None = None) -> Text:
    """The area's status line: games on sale, live servers, what they bring in per hour at the
    current prices, the ceiling; then which moment the table shows, when not now."""
    on_sale = sum(1 for g in pricing.games if g.enabled)
    line = fill(
        "[b]{}[/b] games, {} on sale · [b]{}[/b] live servers · [b]{}[/b] credits/hour · ceiling {}",
        f"{len(pricing.games)}", f"{on_sale}", f"{pricing.live_servers:,}", f"{pricing.credits_per_hour:,}",
        f"{pricing.ceiling:,}",
    )  # fmt: skip
    outside = [g.game_type for g in pricing.games if g.changed_outside]
    if outside:
        said = "\n[yellow]! changed outside the console since its last recorded change: {}[/]"
        line.append_text(fill(said, ", ".join(outside), limit=200))
    if as_of is not None:
        said = "\n[b reverse] AS OF {} [/] [dim]prices then · a another moment · n back to now[/]"
        line.append_text(fill(said, when_text(as_of)))
    return line


def change_text(change: PriceChange, now: datetime, *, with_game: bool = False) -> Text:
    """'01-10 14:02 (35d) dana: 220 → 250 (+13.6 %) · why' for the history list."""
    stamp = f"{change.at.astimezone(UTC):%Y-%m-%d %H:%M} ({short_age(change.at, now)})"
    style = {"disable": "yellow", "enable": "green"}.get(change.change, "")
    game = fill("[b]{}[/b] ", change.game_type) if with_game else Text("")
    text = Text(stamp + " ", style="dim")
    text.append_text(game)
    text.append_text(fill("{}: ", change.operator, limit=24))
    text.append(change.what, style=style)
    text.append_text(fill("[dim] · {}[/]", change.reason, limit=300))
    return text


def detail_rows(game: GamePrice, now: datetime, then: PriceThen | None = None) -> list[Row]:
    """The selected game: price, on sale, live servers and their credits/hour, the last
    change (who, when, why), an outside change, and its price at the `as of` moment."""
    rows: list[Row] = [
        ("Game", fill("[b]{}[/b] ({})", game.display_name, game.game_type, limit=60)),
        ("price", fill("[b]{}[/b] credits/hour", f"{game.cost_per_hour:,}")),
        ("on sale", _sale(game.enabled)),
        (
            "live",
            fill("{} → {} credits/hour", servers(game.live_servers), f"{game.credits_per_hour:,}"),
        ),
    ]
    if game.changed_at is not None:
        rows.append(("changed", fill("{} ago by {}", short_age(game.changed_at, now), game.changed_by or "?",
                                     limit=40)))  # fmt: skip
    else:
        rows.append(("changed", fill("[dim]no change recorded by the console[/]")))
    if game.changed_outside:
        rows.append(("", fill("[yellow]changed outside the console since: recorded {}, now {}[/]",
                              f"{game.recorded_cost:,}", f"{game.cost_per_hour:,}")))  # fmt: skip
    if then is not None:
        sale = "on sale" if then.enabled else "off sale"
        said = fill(
            "[b]{}[/b] credits/hour, {} (price set: {})",
            f"{then.cost_per_hour:,}",
            sale,
            price_set_text(then),
        )
        rows.append(("then", said))
    return rows


def history_text(
    changes: list[PriceChange], now: datetime, *, with_game: bool = False, limit: int = 50
) -> Text:
    """The changes, newest first, one per line; 'none' when there are none."""
    if not changes:
        return Text("no change recorded" if with_game else "", style="dim")
    lines = [change_text(c, now, with_game=with_game) for c in changes[:limit]]
    if len(changes) > limit:
        lines.append(Text(f"… and {len(changes) - limit} older (opsconsole pricing history)", style="dim"))
    return Text("\n").join(lines)
