"""`opsconsole payments`: the Payments area headless, on the real PostgreSQL and the fake
Stripe. What it prints agrees with the service, exit codes say what cron needs, bad input
gets one line and changes nothing, and credits are typed (one, or the count for --all)."""

from __future__ import annotations

import asyncio
import json

import pytest

from console.settings import real_user
from tests.test_payments import credit_rows, seed
from tests.test_trust import backends, fetch, operators, run


@pytest.fixture
def world(seeded_db, seeded_runtime_db, fakes, tmp_path):
    env = {
        **backends(seeded_runtime_db, fakes),
        "OPSCONSOLE_CONFIG": operators(tmp_path, **{real_user(): "oncall"}),
    }
    return env, fakes.stripe


def test_reconcile_lists_what_is_owed_and_exits_1(seeded_db, world):
    env, stripe = world
    made = asyncio.run(seed(seeded_db, stripe.events, credited=4, owed=3, unpaid=1))
    result = run(["payments", "reconcile", "--json"], env)
    assert result.exit_code == 1, result.output
    body = json.loads(result.output)
    assert {s["session"] for s in body["sessions_owed"]} == {s["id"] for s in made["owed"]}
    assert body["awaiting_payment"] == [made["unpaid"][0]["id"]]
    assert body["credits_owed"] == 3 * 2500 and body["path"] == "resend"
    text = run(["payments", "reconcile"], env)
    assert "3 without credits (7,500 credits owed)" in text.output and "resend" in text.output


def test_events_show_the_success_rate_and_endpoints_exit_1_when_one_is_disabled(seeded_db, world):
    env, stripe = world
    asyncio.run(seed(seeded_db, stripe.events, credited=3, owed=1))
    events = run(["payments", "events", "--since", "7d"], env)
    assert events.exit_code == 0, events.output
    assert "undelivered 1 · webhook success rate 75.0 %" in events.output
    assert "resendable for" in events.output
    assert run(["payments", "endpoints"], env).exit_code == 0
    endpoint = next(iter(stripe.events.endpoints))
    stripe.events.set_endpoint_status(endpoint, False)
    disabled = run(["payments", "endpoints"], env)
    assert disabled.exit_code == 1 and "DISABLED" in disabled.output


def test_a_bad_period_or_id_is_one_line_and_exit_2(world):
    env, _ = world
    for args in (
        ["reconcile", "--since", "1y"],
        ["resend", "not-an-event"],
        ["credit", "pi_123"],
        ["credit"],
    ):
        result = run(["payments", *args], env)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, (
            result.output
        )


def test_credit_needs_the_credits_typed_then_credits_once(seeded_db, world):
    env, stripe = world
    session = asyncio.run(seed(seeded_db, stripe.events, credited=0, owed=1))["owed"][0]
    unconfirmed = run(["payments", "credit", session["id"], "--yes"], env)
    assert unconfirmed.exit_code == 2 and "--confirm 2500" in unconfirmed.output
    assert asyncio.run(credit_rows(seeded_db, session["payment_intent"])) == 0
    done = run(["payments", "credit", session["id"], "--confirm", "2500"], env)
    assert done.exit_code == 0, done.output
    again = run(["payments", "credit", session["id"], "--confirm", "2500"], env)
    assert again.exit_code == 1 and "already credited" in again.output
    assert asyncio.run(credit_rows(seeded_db, session["payment_intent"])) == 1


def test_credit_all_types_the_count_and_credits_each_on_its_own(seeded_db, world):
    env, stripe = world
    made = asyncio.run(seed(seeded_db, stripe.events, credited=1, owed=4))
    wrong = run(["payments", "credit", "--all", "--confirm", "3"], env)
    assert wrong.exit_code == 2 and "--confirm 4" in wrong.output
    done = run(["payments", "credit", "--all", "--confirm", "4"], env)
    assert done.exit_code == 0 and "credited 4 of 4" in done.output, done.output
    for session in made["owed"]:
        assert asyncio.run(credit_rows(seeded_db, session["payment_intent"])) == 1
    audit = asyncio.run(fetch(seeded_db, "SELECT count(*) FROM ops.audit_log WHERE action = 'credit_payment' "
                                         "AND phase = 'outcome' AND outcome = 'ok'"))  # fmt: skip
    assert audit[0][0] == 4
    nothing = run(["payments", "credit", "--all", "--confirm", "4"], env)
    assert nothing.exit_code == 0 and "nothing owed" in nothing.output


def test_read_only_blocks_resend_and_credit(seeded_db, world):
    env, stripe = world
    session = asyncio.run(seed(seeded_db, stripe.events, credited=0, owed=1))["owed"][0]
    event = stripe.events.events[-1].id
    for args in (["resend", event, "--yes"], ["credit", session["id"], "--confirm", "2500"],
                 ["credit", "--all", "--confirm", "1"]):  # fmt: skip
        result = run(["--read-only", "payments", *args], env)
        assert result.exit_code == 1 and "read-only" in result.output, (args, result.output)
    assert asyncio.run(credit_rows(seeded_db, session["payment_intent"])) == 0 and not stripe.events.resends


def test_stripe_down_is_one_line_not_a_traceback(world):
    env, stripe = world
    stripe.stop()
    result = run(["payments", "reconcile"], env)
    assert result.exit_code == 1 and "Stripe" in result.output and "Traceback" not in result.output
