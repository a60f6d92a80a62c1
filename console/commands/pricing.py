"""`opsconsole pricing`: the Pricing area headless: every game's hourly price, live servers
and what they bring in; `set`, `enable` and `disable` through the same runbook actions as
the screen; `history`, newest first, or what the prices were `--as-of` a date."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from console.commands.common import (
    ConfigOption,
    ConfirmOption,
    DryRunOption,
    JsonOption,
    YesOption,
    echo,
    fail,
    run_action,
    settings_or_exit,
    with_services,
)
from console.commands.nodes import NegativeNumbersAreArguments

if TYPE_CHECKING:
    from services.pricing import PriceChange, PriceThen, Pricing

pricing_cli = typer.Typer(
    help="Game prices: list, set, enable, disable, history (AGIS pricing_config).", no_args_is_help=False
)

GameArgument = Annotated[str, typer.Argument(help="The game type (pricing_config.game_type), e.g. rust.")]
ReasonOption = Annotated[
    str, typer.Option("--reason", help="Why (kept in the price history).", show_default=False)
]


def _when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if at else "—"


def _checked_game(game: str) -> str:
    from services.pricing import parse_game

    try:
        return parse_game(game)
    except ValueError as exc:
        raise fail([f"pricing: {exc}"], 2) from None


@pricing_cli.callback(invoke_without_command=True)
def pricing_list(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every game: price per hour, on sale or not, live servers, credits/hour at the current
    price, and the last change (when, who)."""
    if ctx.invoked_subcommand is not None:
        return
    from services.pricing import pricing_json

    settings = settings_or_exit(ctx, config)
    pricing = with_services(settings, lambda s: s.pricing.games())
    if as_json:
        typer.echo(json.dumps(pricing_json(pricing), indent=2))
        return
    _print_games(pricing)


def _print_games(pricing: Pricing) -> None:
    echo(
        f"{'game':<16} {'name':<22} {'price/h':>8} {'on sale':<7} {'live':>5} {'credits/h':>10}  last change"
    )
    for g in pricing.games:
        last = f"{_when(g.changed_at)} by {g.changed_by}" if g.changed_at else "none recorded"
        if g.changed_outside:
            last += " · changed outside the console since"
        sale = "yes" if g.enabled else "NO"
        echo(f"{g.game_type:<16} {g.display_name[:22]:<22} {g.cost_per_hour:>8,} {sale:<7} "
             f"{g.live_servers:>5,} {g.credits_per_hour:>10,}  {last}")  # fmt: skip
    echo(f"{len(pricing.games)} games · {pricing.live_servers:,} live servers · "
         f"{pricing.credits_per_hour:,} credits/hour · prices below {pricing.ceiling:,}")  # fmt: skip


@pricing_cli.command("set", cls=NegativeNumbersAreArguments)
def pricing_set(
    ctx: typer.Context,
    game: GameArgument,
    credits: Annotated[str, typer.Argument(help="The new price in credits per hour (a whole number).")],
    reason: ReasonOption,
    config: ConfigOption = None,
    confirm: ConfirmOption = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Set a game's hourly price (the manual's UPDATE pricing_config), recorded with the
    reason in the price history; a change over ±25 % needs --confirm GAME. The bot's pricing
    cache picks it up within 5 minutes."""
    from services.actions import ALL_ACTIONS
    from services.pricing import parse_credits

    game = _checked_game(game)
    try:
        value = parse_credits(credits)
    except ValueError as exc:
        raise fail([f"pricing set: {exc}"], 2) from None
    ceiling = settings_or_exit(ctx, config).price_ceiling
    if value >= ceiling:
        raise fail([f"pricing set: {value:,} credits/hour is not below the ceiling of {ceiling:,} "
                    "(OPSCONSOLE_PRICE_CEILING); nothing was changed"], 2)  # fmt: skip
    run_action(ctx, ALL_ACTIONS["set_price"], game, {"credits": str(value), "reason": reason}, config=config,
               yes=yes, dry_run=dry_run, confirm=confirm, as_json=as_json)  # fmt: skip


def _toggle(enable: bool, doc: str):
    def command(
        ctx: typer.Context,
        game: GameArgument,
        reason: ReasonOption,
        config: ConfigOption = None,
        yes: YesOption = False,
        dry_run: DryRunOption = False,
    ) -> None:
        from services.actions import ALL_ACTIONS

        raw = {"enabled": "yes" if enable else "no", "reason": reason}
        run_action(ctx, ALL_ACTIONS["set_game_enabled"], _checked_game(game), raw, config=config, yes=yes,
                   dry_run=dry_run)  # fmt: skip

    command.__doc__ = doc
    return command


pricing_cli.command("enable")(_toggle(True, "Put a game on sale again (recorded in the price history)."))
pricing_cli.command("disable")(
    _toggle(False, "Take a game off sale; its live servers keep running (recorded in the price history).")
)


@pricing_cli.command("history")
def pricing_history(
    ctx: typer.Context,
    game: Annotated[str | None, typer.Argument(help="Only this game (default: every game).")] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Instead: what the prices were then (2025-01-31, '2025-01-31 14:00', 3d).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=10_000, help="At most this many changes.")
    ] = 200,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """The recorded price changes, newest first (who, when, old → new, why); with --as-of,
    what each game cost and whether it was on sale at that moment."""
    from services.pricing import change_json, parse_as_of, then_json

    game = _checked_game(game) if game is not None else None
    when = None
    if as_of is not None:
        try:
            when = parse_as_of(as_of)
        except ValueError as exc:
            raise fail([f"pricing history --as-of: {exc}"], 2) from None
    settings = settings_or_exit(ctx, config)

    async def read(services):
        pricing = services.pricing
        known = game is None or (await pricing.games()).game(game) is not None
        if not known:
            return None
        if when is not None:
            return [t for t in await pricing.as_of(when) if game is None or t.game_type == game]
        return await pricing.history(game, limit)

    found = with_services(settings, read)
    if found is None:
        raise fail([f"pricing history: there is no game {game!r} (opsconsole pricing lists them)"], 1)
    if as_json:
        rows = [then_json(t) for t in found] if when is not None else [change_json(c) for c in found]
        data = {"as_of": when.isoformat(), "games": rows} if when is not None else rows
        typer.echo(json.dumps(data, indent=2))
    elif when is not None:
        _print_then(found, when)
    else:
        _print_changes(found, game)


def _print_changes(changes: list[PriceChange], game: str | None) -> None:
    if not changes:
        echo(f"no price changes recorded{' for ' + game if game else ''}")
        return
    echo(f"{'when (UTC)':<16}  {'game':<16} {'change':<28} {'by':<12} why")
    for c in changes:
        echo(f"{_when(c.at):<16}  {c.game_type:<16} {c.what:<28} {c.operator[:12]:<12} {c.reason}")


def _print_then(rows: list[PriceThen], when: datetime) -> None:
    echo(f"prices as of {when.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC")
    echo(f"{'game':<16} {'price/h':>8} {'on sale':<7}  price set")
    for t in rows:
        said = {
            "changed": f"by {t.changed_by}, {_when(t.since)}",
            "before first change": f"before its first recorded change ({_when(t.next_change_at)})",
            "no change recorded": "no change recorded: the price now",
        }.get(t.source, t.source)
        echo(f"{t.game_type:<16} {t.cost_per_hour:>8,} {'yes' if t.enabled else 'NO':<7}  {said}")


def register(cli: typer.Typer) -> None:
    cli.add_typer(pricing_cli, name="pricing")
