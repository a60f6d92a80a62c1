"""`opsconsole pricing`, headless: the list and its JSON, `set` with its preview, typed
confirmation and refusals (bad prices, the ceiling, an unknown game, a viewer, read-only:
nothing changed), `enable`/`disable`, and the history newest first or `--as-of` a date."""

from __future__ import annotations

import json

from console.settings import real_user
from tests.test_trust import operators, run, value

PRICE = "SELECT cost_per_hour FROM pricing_config WHERE game_type = $1"
HISTORY = "SELECT count(*) FROM ops.pricing_history"
LIVE_RUST = (
    "SELECT count(*) FROM orders o JOIN plans p ON p.id = o.plan_id WHERE p.game = 'rust'"
    " AND o.status IN ('paid', 'provisioning', 'installing', 'provisioned', 'active')"
)


def admin(tmp_path) -> str:
    return operators(tmp_path, **{real_user(): "admin"})


def test_the_list_shows_every_game_with_its_live_servers(seeded_db, seeded_runtime_db):
    env = {"DATABASE_URL": seeded_runtime_db}
    shown = run(["pricing"], env)
    assert shown.exit_code == 0, shown.output
    rust = next(line for line in shown.output.splitlines() if line.startswith("rust "))
    assert " 250 yes " in rust and "by dana" in rust
    unturned = next(line for line in shown.output.splitlines() if line.startswith("unturned "))
    assert " NO " in unturned
    data = json.loads(run(["pricing", "--json"], env).output)
    assert len(data["games"]) == 16 and data["ceiling"] == 10_000
    games = {g["game_type"]: g for g in data["games"]}
    live = value(seeded_db, LIVE_RUST)
    assert games["rust"]["live_servers"] == live
    assert games["rust"]["credits_per_hour"] == live * 250
    assert data["credits_per_hour"] == sum(g["credits_per_hour"] for g in data["games"])
    assert (
        f"16 games · {data['live_servers']:,} live servers · {data['credits_per_hour']:,} credits/hour"
        in (shown.output)
    )


def test_set_shows_the_preview_then_changes_the_price_and_its_history(seeded_db, seeded_runtime_db, tmp_path):
    env, config = {"DATABASE_URL": seeded_runtime_db}, admin(tmp_path)
    done = run(
        ["pricing", "set", "rust", "300", "--reason", "wipe weekend", "--yes", "--config", config], env
    )
    assert done.exit_code == 0, done.output
    assert "from 250 to 300 credits/hour (+20.0 %)" in done.output
    assert "the bot's pricing cache picks it up within 5 minutes" in done.output
    assert "ok: rust now costs 300 credits/hour (was 250, +20.0 %)" in done.output
    assert value(seeded_db, PRICE, "rust") == 300
    history = json.loads(run(["pricing", "history", "rust", "--json"], env).output)
    newest = history[0]
    assert (newest["operator"], newest["old_cost"], newest["new_cost"], newest["reason"]) == (
        real_user(), 250, 300, "wipe weekend",
    )  # fmt: skip


def test_a_big_change_needs_the_game_typed(seeded_db, seeded_runtime_db, tmp_path):
    env, config = {"DATABASE_URL": seeded_runtime_db}, admin(tmp_path)
    args = ["pricing", "set", "rust", "400", "--reason", "launch", "--yes", "--config", config]
    refused = run(args, env)
    assert refused.exit_code == 2 and "pass --confirm rust" in refused.output
    assert "a change of +60.0 % (over ±25 %): confirm by typing rust" in refused.output
    wrong = run([*args, "--confirm", "ark"], env)
    assert wrong.exit_code == 2 and value(seeded_db, PRICE, "rust") == 250
    assert run([*args, "--confirm", "rust"], env).exit_code == 0
    assert value(seeded_db, PRICE, "rust") == 400


def test_bad_prices_and_unknown_games_are_refused_with_nothing_changed(
    seeded_db, seeded_runtime_db, tmp_path
):
    env = {"DATABASE_URL": seeded_runtime_db, "OPSCONSOLE_PRICE_CEILING": "1000"}
    config = admin(tmp_path)
    history = value(seeded_db, HISTORY)
    for credits, code, said in (
        ("-5", 2, "a price cannot be negative (-5)"),
        ("abc", 2, "'abc' is not a number of credits"),
        ("2.5", 2, "'2.5' is not a whole number of credits"),
        ("99999999999999", 2, "credits is more than a price can be"),
        ("1000", 2, "1,000 credits/hour is not below the ceiling of 1,000 (OPSCONSOLE_PRICE_CEILING)"),
    ):
        result = run(["pricing", "set", "rust", credits, "--reason", "r", "--yes", "--config", config], env)
        assert result.exit_code == code and said in result.output, (credits, result.output)
        assert "Traceback" not in result.output
    # `act` skips the command's own checks: the action's precondition still holds the ceiling.
    sets = ["--set", "credits=5000", "--set", "reason=r"]
    act = run(["act", "set_price", "rust", *sets, "--yes", "--confirm", "rust", "--config", config], env)
    assert act.exit_code == 1 and "not below the ceiling of 1,000" in act.output
    unknown = run(["pricing", "set", "fortnite", "100", "--reason", "r", "--yes", "--config", config], env)
    assert unknown.exit_code == 1 and "there is no game 'fortnite'" in unknown.output
    badly_named = run(
        ["pricing", "set", "Rust; DROP", "100", "--reason", "r", "--yes", "--config", config], env
    )
    assert badly_named.exit_code == 2 and "is not a game type" in badly_named.output
    no_reason = run(["pricing", "set", "rust", "260", "--yes", "--config", config], env)
    assert no_reason.exit_code == 2 and "--reason" in no_reason.output
    assert value(seeded_db, PRICE, "rust") == 250 and value(seeded_db, HISTORY) == history


def test_viewers_and_read_only_consoles_change_nothing(seeded_db, seeded_runtime_db, tmp_path):
    env = {"DATABASE_URL": seeded_runtime_db}
    viewer = run(["pricing", "set", "rust", "260", "--reason", "r", "--yes",
                  "--config", operators(tmp_path, nobody="admin")], env)  # fmt: skip
    assert viewer.exit_code == 1 and f"needs the admin role; {real_user()} is viewer" in viewer.output
    read_only = run(["--read-only", "pricing", "disable", "rust", "--reason", "r", "--yes",
                     "--config", admin(tmp_path)], env)  # fmt: skip
    assert read_only.exit_code == 1 and "read-only" in read_only.output
    assert value(seeded_db, PRICE, "rust") == 250
    assert value(seeded_db, "SELECT enabled FROM pricing_config WHERE game_type = 'rust'") is True


def test_disable_enable_and_the_history_as_of_a_date(seeded_db, seeded_runtime_db, tmp_path):
    env, config = {"DATABASE_URL": seeded_runtime_db}, admin(tmp_path)
    off = run(["pricing", "disable", "rust", "--reason", "exploit", "--yes", "--config", config], env)
    assert off.exit_code == 0 and "ok: rust disabled" in off.output, off.output
    again = run(["pricing", "disable", "rust", "--reason", "exploit", "--yes", "--config", config], env)
    assert again.exit_code == 1 and "rust is already disabled" in again.output
    assert value(seeded_db, "SELECT enabled FROM pricing_config WHERE game_type = 'rust'") is False

    listed = run(["pricing", "history"], env).output.splitlines()
    assert listed[1].split()[2:4] == ["rust", "disabled"] and "exploit" in listed[1]  # newest first
    assert any("220 → 250 (+13.6 %)" in line and "dana" in line for line in listed)

    then = run(["pricing", "history", "rust", "--as-of", "40d"], env)
    assert then.exit_code == 0, then.output
    rust = next(line for line in then.output.splitlines() if line.startswith("rust "))
    assert " 220 yes " in rust and "by dana" in rust
    data = json.loads(run(["pricing", "history", "--as-of", "2000-01-01", "--json"], env).output)
    assert data["as_of"].startswith("2000-01-01T23:59:59")
    games = {g["game_type"]: g for g in data["games"]}
    assert (games["rust"]["cost_per_hour"], games["rust"]["source"]) == (200, "before first change")
    bad = run(["pricing", "history", "--as-of", "last tuesday"], env)
    assert bad.exit_code == 2 and "is not a date" in bad.output
    unknown = run(["pricing", "history", "fortnite"], env)
    assert unknown.exit_code == 1 and "there is no game 'fortnite'" in unknown.output
