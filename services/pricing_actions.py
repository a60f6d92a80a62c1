"""The pricing runbook actions (the AGIS manual's "Pricing Updates"): set a game's hourly
price, put a game on sale or take it off. Each locks the game's row, re-reads it, refuses
when it changed since the preview, and writes the change and its ops.pricing_history row
in one transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.postgres import named_queries, query_text
from services.pricing import (
    CACHE_MINUTES,
    TYPED_OVER_PCT,
    GamePrice,
    needs_typed,
    parse_credits,
    percent_text,
)
from services.runbook import (
    Action,
    ActionEnv,
    Confirmation,
    Input,
    Preview,
    Progress,
    Result,
    Suggestion,
    text,
    yes_no,
)

CACHE_NOTE = f"the bot's pricing cache picks it up within {CACHE_MINUTES} minutes (no restart)"


async def _game(env: ActionEnv, target: str) -> GamePrice | None:
    return (await env.services.pricing.games()).game(target)


async def _suggest_price(env: ActionEnv, target: str, given: Mapping[str, str]) -> Suggestion:
    """The price now: pre-filled for the new price, and what the preview is of (`was`)."""
    game = await _game(env, target)
    return Suggestion(None if game is None else str(game.cost_per_hour))


async def _suggest_toggle(env: ActionEnv, target: str, given: Mapping[str, str]) -> Suggestion:
    """The other state than now: a disabled game is enabled, an enabled one disabled."""
    game = await _game(env, target)
    return Suggestion(None if game is None else ("no" if game.enabled else "yes"))


def _no_game(target: str) -> str:
    return f"there is no game {target!r} in pricing_config (opsconsole pricing lists them)"


def _credits(value: int) -> str:
    return f"{value:,} credits/hour"


async def _locked(conn, target: str) -> Any:
    return await named_queries().game_for_update(conn, game_type=target)


async def _last_change_by(env: ActionEnv, conn, target: str) -> str:
    rows = await env.services.postgres.run("pricing_history", conn=conn, game_type=target, limit=1)
    return f" (last change by {rows[0]['operator']})" if rows else ""


def _history_call(env: ActionEnv, target: str, change: str, old_cost: int, new_cost: int, old_enabled: bool,
                  new_enabled: bool, reason: str) -> str:  # fmt: skip
    return query_text("record_pricing_change", game_type=target, operator=env.actor.operator, change=change,
                      old_cost=old_cost, new_cost=new_cost, old_enabled=old_enabled, new_enabled=new_enabled,
                      reason=reason)  # fmt: skip


async def _record(env: ActionEnv, conn, target: str, change: str, row, new_cost: int, new_enabled: bool,
                  reason: str) -> Any:  # fmt: skip
    return await named_queries().record_pricing_change(
        conn, game_type=target, operator=env.actor.operator, change=change, old_cost=row["cost_per_hour"],
        new_cost=new_cost, old_enabled=row["enabled"], new_enabled=new_enabled, reason=reason,
    )  # fmt: skip


# -- set a price ---------------------------------------------------------------------------


async def _price_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    game = await _game(env, target)
    new, reason = params["credits"], params["reason"]
    ceiling = env.services.pricing.ceiling
    if game is None:
        return Preview(f"Set the price of {target} to {_credits(new)}: {_no_game(target)}.", ())
    old = params.get("was", game.cost_per_hour)
    after, before = game.live_servers * new, game.live_servers * old
    effect = (
        f"Its {game.live_servers:,} live servers: {before:,} → {after:,} credits/hour ({after - before:+,})."
        if game.live_servers
        else "It has no live servers: nothing changes for running servers."
    )
    summary = (
        f"Set the price of {game.display_name} ({target}) from {old:,} to {_credits(new)} "
        f"({percent_text(old, new)}). {effect} Once committed, {CACHE_NOTE}."
    )
    warnings = []
    if new >= ceiling:
        warnings.append(f"{new:,} is not below the ceiling of {_credits(ceiling)} "
                        "(OPSCONSOLE_PRICE_CEILING): it will be refused")  # fmt: skip
    if needs_typed(old, new):
        warnings.append(f"a change of {percent_text(old, new)} (over ±{TYPED_OVER_PCT:g} %): "
                        f"confirm by typing {target}")  # fmt: skip
    if new == 0:
        warnings.append(f"{game.display_name} becomes free: its servers cost nothing per hour")
    if not game.enabled:
        warnings.append(
            f"{game.display_name} is not on sale (disabled): the price applies once it is enabled"
        )
    if game.changed_outside:
        warnings.append(f"the price was changed outside the console since its last recorded change "
                        f"(recorded {game.recorded_cost:,}, now {game.cost_per_hour:,})")  # fmt: skip
    calls = (
        query_text("set_game_price", game_type=target, cost_per_hour=new),
        _history_call(env, target, "price", old, new, game.enabled, game.enabled, reason),
    )
    return Preview(summary, calls, tuple(warnings))


async def _price_check(env: ActionEnv, conn, target: str, params: Mapping[str, Any]) -> str | None:
    row = await _locked(conn, target)
    if row is None:
        return _no_game(target)
    new, now = params["credits"], row["cost_per_hour"]
    ceiling = env.services.pricing.ceiling
    if new >= ceiling:
        return (f"{new:,} credits/hour is not below the ceiling of {ceiling:,} (OPSCONSOLE_PRICE_CEILING); "
                "nothing was changed")  # fmt: skip
    was = params.get("was")
    if was is not None and was != now:
        by = await _last_change_by(env, conn, target)
        return (f"the price of {target} changed from {was:,} to {now:,} since your preview{by}; nothing was "
                "changed: look at the new price and try again")  # fmt: skip
    if new == now:
        return f"{target} already costs {_credits(now)}: nothing to change"
    return None


async def _price_run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
    row = await _locked(conn, target)
    old, new = row["cost_per_hour"], params["credits"]
    progress(f"setting the price of {target} to {new:,}")
    await named_queries().set_game_price(conn, game_type=target, cost_per_hour=new)
    progress("recording the change in the price history")
    recorded = await _record(env, conn, target, "price", row, new, row["enabled"], params["reason"])
    return Result(
        f"{target} now costs {_credits(new)} (was {old:,}, {percent_text(old, new)}); {CACHE_NOTE}",
        {"old": old, "new": new, "live_servers": row["live_servers"], "history_id": recorded["id"]},
    )


SET_PRICE = Action(
    name="set_price",
    short="Price",
    title="Set price",
    key="M",
    role="admin",
    confirmation=Confirmation.YES_NO,
    # Typed over ±25 % of the price the preview is of (no such price: no such game, refused).
    typed_when=lambda params: params.get("was") is not None and needs_typed(params["was"], params["credits"]),
    help=f"set a game's price in credits per hour, with the reason (over ±{TYPED_OVER_PCT:g} % the game's "
    "name is typed); kept in the price history",
    target_kind="game",
    preview=_price_preview,
    check=_price_check,
    run=_price_run,
    in_transaction=True,
    inputs=(
        Input(
            "credits", "new price in credits per hour (a whole number)", parse_credits, suggest=_suggest_price
        ),
        Input("reason", "why? (kept in the price history)", text),
        Input(
            "was",
            "the price the preview is of (the change is refused if it is no longer that)",
            parse_credits,
            optional=True,
            asked=False,
            suggest=_suggest_price,
        ),
    ),
    audit_params=("credits", "was", "reason"),
    verb="changing the price of",
)


# -- enable / disable ------------------------------------------------------------------------


async def _toggle_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    game = await _game(env, target)
    enable, reason = params["enabled"], params["reason"]
    verb = "Enable" if enable else "Disable"
    if game is None:
        return Preview(f"{verb} {target}: {_no_game(target)}.", ())
    if enable:
        price = _credits(game.cost_per_hour)
        summary = f"{verb} {game.display_name} ({target}): it goes on sale again at {price}; {CACHE_NOTE}."
        warnings: tuple[str, ...] = ()
    else:
        summary = f"{verb} {game.display_name} ({target}): it is taken off sale; {CACHE_NOTE}."
        warnings = (
            (f"its {game.live_servers:,} live servers ({game.credits_per_hour:,} credits/hour) are not "
             "stopped by this",)
            if game.live_servers else ()
        )  # fmt: skip
    calls = (
        query_text("set_game_enabled", game_type=target, enabled=enable),
        _history_call(env, target, "enable" if enable else "disable", game.cost_per_hour, game.cost_per_hour,
                      game.enabled, enable, reason),
    )  # fmt: skip
    return Preview(summary, calls, warnings)


async def _toggle_check(env: ActionEnv, conn, target: str, params: Mapping[str, Any]) -> str | None:
    row = await _locked(conn, target)
    if row is None:
        return _no_game(target)
    if row["enabled"] == params["enabled"]:
        return f"{target} is already {'enabled' if row['enabled'] else 'disabled'}: nothing to change"
    return None


async def _toggle_run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
    row = await _locked(conn, target)
    enable = params["enabled"]
    state = "enabled" if enable else "disabled"
    progress(f"{'enabling' if enable else 'disabling'} {target}")
    await named_queries().set_game_enabled(conn, game_type=target, enabled=enable)
    recorded = await _record(env, conn, target, "enable" if enable else "disable", row, row["cost_per_hour"],
                             enable, params["reason"])  # fmt: skip
    detail = {"enabled": enable, "live_servers": row["live_servers"], "history_id": recorded["id"]}
    return Result(f"{target} {state} ({row['live_servers']:,} live servers); {CACHE_NOTE}", detail)


SET_GAME_ENABLED = Action(
    name="set_game_enabled",
    short="On/off sale",
    title="Enable/disable game",
    key="A",
    role="admin",
    confirmation=Confirmation.YES_NO,
    help="put a game on sale or take it off (its live servers keep running), with the reason; kept in the "
    "price history",
    target_kind="game",
    preview=_toggle_preview,
    check=_toggle_check,
    run=_toggle_run,
    in_transaction=True,
    inputs=(
        Input("enabled", "on sale? (yes: enable, no: disable)", yes_no, asked=False, suggest=_suggest_toggle),
        Input("reason", "why? (kept in the price history)", text),
    ),
    audit_params=("enabled", "reason"),
    verb="changing the availability of",
)

PRICING_ACTIONS = (SET_PRICE, SET_GAME_ENABLED)
