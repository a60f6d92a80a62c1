"""Game prices: the figures agree with plain SQL over the business tables, `as of` answers
from the history, and a price change is what the issue promises: written with its history
row in one transaction (a failure in between leaves neither), refused with nothing changed
for a bad price or an unknown game, typed-confirmed over ±25 %, and of two admins editing
one price at once one wins and the other is told."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from console.sandbox.seed import GAMES, PRICE_HISTORY
from console.settings import Settings
from console.wiring import build_services
from services.pricing_actions import SET_GAME_ENABLED, SET_PRICE
from services.runbook import Actor, Confirmation, Runbook

LIVE_BY_GAME = """
SELECT c.game_type, count(o.id) AS live
FROM pricing_config c
LEFT JOIN plans p ON p.game = c.game_type
LEFT JOIN orders o ON o.plan_id = p.id
     AND o.status IN ('paid', 'provisioning', 'installing', 'provisioned', 'active')
GROUP BY c.game_type
"""


async def rows(dsn: str, sql: str, *args):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def one(dsn: str, sql: str, *args):
    found = await rows(dsn, sql, *args)
    return found[0][0] if found else None


@pytest.fixture
async def services(seeded_runtime_db):
    made = build_services(Settings.isolated(DATABASE_URL=seeded_runtime_db).resolved())
    yield made
    await made.close()


def book(services, operator: str = "alice", role: str = "admin") -> Runbook:
    return Runbook(services, Actor(operator, role, f"test-{operator}"))


async def price_plan(runbook: Runbook, credits: str, reason: str = "r", was: str | None = "250", game="rust"):
    """The plan of setting `game` to `credits`, as the operator saw it at `was`."""
    given = {"credits": credits, "reason": reason, **({"was": was} if was is not None else {})}
    return await runbook.plan(SET_PRICE, game, SET_PRICE.parse(given))


async def price_and_history(dsn: str, game: str = "rust") -> tuple[int, int]:
    """(the game's price, how many history rows it has)."""
    price = await one(dsn, "SELECT cost_per_hour FROM pricing_config WHERE game_type = $1", game)
    count = await one(dsn, "SELECT count(*) FROM ops.pricing_history WHERE game_type = $1", game)
    return price, count


# -- what the area shows -----------------------------------------------------------------


async def test_every_game_with_its_price_live_servers_and_last_change(seeded_db, services):
    pricing = await services.pricing.games()
    assert len(pricing.games) == len(GAMES) == 16
    live = {r["game_type"]: r["live"] for r in await rows(seeded_db, LIVE_BY_GAME)}
    for game in pricing.games:
        assert game.live_servers == live[game.game_type], game.game_type
        assert game.credits_per_hour == game.live_servers * game.cost_per_hour
    rust = pricing.game("rust")
    assert rust.cost_per_hour == 250 and rust.enabled  # the AGIS manual's price
    assert (rust.changed_by, rust.old_cost, rust.recorded_cost) == ("dana", 220, 250)
    assert rust.reason.startswith("AGIS pricing update") and not rust.changed_outside
    assert not pricing.game("unturned").enabled and pricing.game("unturned").change == "disable"
    assert pricing.game("ark").changed_at is None  # never changed by the console
    assert pricing.live_servers == sum(live.values()) > 0
    assert pricing.credits_per_hour == sum(g.cost_per_hour * live[g.game_type] for g in pricing.games)


async def test_a_price_changed_outside_the_console_is_flagged(seeded_db, services):
    # The manual's own way: psql, straight to the table, no history row.
    await rows(seeded_db, "UPDATE pricing_config SET cost_per_hour = 275 WHERE game_type = 'rust'")
    rust = (await services.pricing.games()).game("rust")
    assert rust.cost_per_hour == 275 and rust.recorded_cost == 250 and rust.changed_outside


async def test_history_newest_first_and_as_of_a_date(services):
    every = await services.pricing.history()
    assert len(every) == len(PRICE_HISTORY)
    assert [c.at for c in every] == sorted((c.at for c in every), reverse=True)
    rust = await services.pricing.history("rust")
    assert [(c.old_cost, c.new_cost, c.operator) for c in rust] == [(220, 250, "dana"), (200, 220, "dana")]
    assert rust[0].what == "220 → 250 (+13.6 %)"

    now = datetime.now(UTC)

    async def then(days: float) -> dict:
        return {t.game_type: t for t in await services.pricing.as_of(now - timedelta(days=days))}

    a_month_ago, long_ago, today = await then(40), await then(400), await then(0)
    assert (a_month_ago["rust"].cost_per_hour, a_month_ago["rust"].source) == (220, "changed")
    assert a_month_ago["rust"].changed_by == "dana"
    assert (long_ago["rust"].cost_per_hour, long_ago["rust"].source) == (200, "before first change")
    assert today["rust"].cost_per_hour == 250
    assert a_month_ago["unturned"].enabled and not today["unturned"].enabled  # disabled 12 days ago
    assert (long_ago["ark"].cost_per_hour, long_ago["ark"].source) == (300, "no change recorded")


# -- setting a price -----------------------------------------------------------------------


async def test_a_price_change_writes_its_history_in_the_same_transaction(seeded_db, services):
    runbook = book(services)
    plan = await price_plan(runbook, "300", "Wipe weekend")
    assert plan.refusal is None and plan.confirmation is Confirmation.YES_NO  # +20 %: y/n
    summary = plan.preview.summary
    assert "from 250 to 300 credits/hour (+20.0 %)" in summary
    live = (await services.pricing.games()).game("rust").live_servers
    effect = f"Its {live} live servers: {live * 250:,} → {live * 300:,} credits/hour (+{live * 50:,})"
    assert effect in summary
    assert "pricing cache picks it up within 5 minutes" in summary
    assert plan.preview.calls[0].startswith("UPDATE pricing_config SET cost_per_hour")
    assert "INSERT INTO ops.pricing_history" in plan.preview.calls[1]

    outcome = await runbook.run(plan)
    assert outcome.ok, outcome.message
    assert "rust now costs 300 credits/hour (was 250, +20.0 %)" in outcome.message
    row = (await rows(seeded_db, "SELECT * FROM ops.pricing_history ORDER BY id DESC LIMIT 1"))[0]
    written = [row[k] for k in ("game_type", "operator", "change", "old_cost", "new_cost", "reason")]
    assert written == ["rust", "alice", "price", 250, 300, "Wipe weekend"]
    # The change and its history row were committed together: one transaction, one time.
    updated = await one(seeded_db, "SELECT updated_at FROM pricing_config WHERE game_type = 'rust'")
    assert updated == row["at"]
    audit = await rows(
        seeded_db, "SELECT phase, outcome, detail FROM ops.audit_log WHERE action = 'set_price' ORDER BY id"
    )
    assert [(r["phase"], r["outcome"]) for r in audit] == [("intent", None), ("outcome", "ok")]
    assert '"reason": "Wipe weekend"' in audit[0]["detail"]
    rust = (await services.pricing.games()).game("rust")
    assert (rust.cost_per_hour, rust.changed_by, rust.credits_per_hour) == (300, "alice", live * 300)


async def test_a_failure_between_the_update_and_the_history_leaves_neither(seeded_db, services):
    # The console may no longer append to the history: its UPDATE goes through, its INSERT
    # fails, and the transaction takes the UPDATE back with it.
    await rows(seeded_db, "REVOKE INSERT ON ops.pricing_history FROM ops_runtime")
    updated = "SELECT updated_at FROM pricing_config WHERE game_type = 'rust'"
    before, stamped = await price_and_history(seeded_db), await one(seeded_db, updated)
    outcome = await book(services).execute(SET_PRICE, "rust", {"credits": 260, "reason": "test"})
    assert outcome.status == "failed" and "permission denied for table pricing_history" in outcome.message
    assert await price_and_history(seeded_db) == before == (250, 2)
    assert await one(seeded_db, updated) == stamped  # not even its updated_at moved


@pytest.mark.parametrize(
    ("credits", "said"),
    [
        ("-5", "a price cannot be negative"),
        ("abc", "is not a number of credits"),
        ("12.5", "is not a whole number"),
        ("", "give the price in credits per hour"),
        ("99999999999999999999", "more than a price can be"),
    ],
)
async def test_a_bad_price_does_not_parse(credits, said):
    from services.runbook import InputError

    with pytest.raises(InputError, match=said):
        SET_PRICE.parse({"credits": credits, "reason": "r"})


async def test_a_price_at_the_ceiling_or_of_no_such_game_is_refused_changing_nothing(seeded_db, services):
    runbook = book(services)
    before = await price_and_history(seeded_db)
    huge = await runbook.execute(SET_PRICE, "rust", {"credits": 10_000, "reason": "typo", "confirm": "rust"})
    assert huge.status == "refused" and "not below the ceiling of 10,000" in huge.message
    missing = await runbook.execute(SET_PRICE, "fortnite", {"credits": 100, "reason": "new game"})
    assert missing.status == "refused" and "there is no game 'fortnite'" in missing.message
    same = await runbook.execute(SET_PRICE, "rust", {"credits": 250, "reason": "again"})
    assert same.status == "refused" and "already costs 250" in same.message
    assert await price_and_history(seeded_db) == before
    assert await one(seeded_db, "SELECT count(*) FROM ops.pricing_history") == len(PRICE_HISTORY)


async def test_a_change_over_a_quarter_is_confirmed_by_typing_the_game(seeded_db, services):
    runbook = book(services)
    for credits, typed in ((312, False), (313, True), (187, True), (188, False)):  # 250 ± 25 %
        plan = await price_plan(runbook, str(credits))
        assert (plan.confirmation is Confirmation.TYPED) is typed, credits
    plan = await price_plan(runbook, "400")
    assert "a change of +60.0 % (over ±25 %): confirm by typing rust" in plan.preview.warnings
    unconfirmed = await runbook.run(plan, confirmed="yes")
    assert unconfirmed.status == "refused" and "type the game name rust to confirm" in unconfirmed.message
    assert await price_and_history(seeded_db) == (250, 2)
    assert (await runbook.run(plan, confirmed="rust")).ok
    assert await price_and_history(seeded_db) == (400, 3)


async def test_two_admins_edit_one_price_one_wins_the_other_is_told(seeded_db, services):
    alice, bob = book(services, "alice"), book(services, "bob")
    a_plan, b_plan = await price_plan(alice, "300"), await price_plan(bob, "270")
    assert a_plan.refusal is None and b_plan.refusal is None  # both looked at 250
    assert (await alice.run(a_plan)).ok
    told = await bob.run(b_plan)
    assert told.status == "refused"
    said = "the price of rust changed from 250 to 300 since your preview (last change by alice)"
    assert said in told.message
    assert await price_and_history(seeded_db) == (300, 3)


async def test_two_admins_at_the_same_moment_one_wins(seeded_db, seeded_runtime_db):
    def bundle():
        return build_services(Settings.isolated(DATABASE_URL=seeded_runtime_db).resolved())

    first, second = bundle(), bundle()  # two consoles, two pools
    try:
        plans = []
        for services, who, credits in ((first, "alice", "300"), (second, "bob", "270")):
            runbook = book(services, who)
            plans.append((runbook, await price_plan(runbook, credits, who)))
        outcomes = await asyncio.gather(*(runbook.run(plan) for runbook, plan in plans))
    finally:
        await first.close()
        await second.close()
    assert sorted(o.status for o in outcomes) in (["ok", "refused"], ["busy", "ok"])
    winner = next(o for o in outcomes if o.ok)
    loser = next(o for o in outcomes if not o.ok)
    won = 300 if "300" in winner.message else 270
    told = (f"changed from 250 to {won} since your preview", " is changing the price of game rust")
    assert any(said in loser.message for said in told), loser.message
    assert await price_and_history(seeded_db) == (won, 3)


async def test_only_an_admin_sets_prices(seeded_db, services):
    olga = book(services, "olga", "oncall")
    outcome = await olga.execute(SET_PRICE, "rust", {"credits": 260, "reason": "r"})
    assert outcome.status == "refused" and "needs the admin role; olga is oncall" in outcome.message
    assert await price_and_history(seeded_db) == (250, 2)


# -- on and off sale -----------------------------------------------------------------------


async def test_disable_and_enable_a_game_are_in_the_history(seeded_db, services):
    runbook = book(services)
    params = SET_GAME_ENABLED.parse({"enabled": "no", "reason": "exploit found"})
    plan = await runbook.plan(SET_GAME_ENABLED, "rust", params)
    live = (await services.pricing.games()).game("rust").live_servers
    assert "taken off sale" in plan.preview.summary
    said = f"its {live} live servers ({live * 250:,} credits/hour) are not stopped by this"
    assert said in plan.preview.warnings
    assert (await runbook.run(plan)).ok
    again = await runbook.execute(SET_GAME_ENABLED, "rust", {"enabled": False, "reason": "twice"})
    assert again.status == "refused" and "rust is already disabled" in again.message
    assert (await runbook.execute(SET_GAME_ENABLED, "rust", {"enabled": True, "reason": "patched"})).ok
    changes = await services.pricing.history("rust")
    assert [(c.change, c.operator, c.reason, c.old_cost, c.new_cost) for c in changes[:2]] == [
        ("enable", "alice", "patched", 250, 250), ("disable", "alice", "exploit found", 250, 250),
    ]  # fmt: skip
    assert [c.what for c in changes[:2]] == ["enabled", "disabled"]
    assert (await services.pricing.games()).game("rust").enabled
