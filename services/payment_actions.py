"""The payments runbook actions (the AGIS manual's "Payment Webhook Failure"): resend a
checkout event the webhook never accepted (under the runbook's 50, within Stripe's 30 days),
and credit a user who paid and was not credited. A credit happens once per checkout session,
ever: an advisory lock per payment intent queues every console, the credit already there
refuses, and ops.payment_credits' key on the session (with the reference schema's unique
purchase per payment intent) makes a second insert fail rather than credit twice."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from services.payments_model import (
    CHECKOUT_EVENTS,
    RESEND_LIMIT,
    RESEND_WINDOW,
    Delivery,
    Session,
    WebhookEndpoint,
    event_id,
    session_id,
)
from services.postgres import named_queries, query_text
from services.runbook import (
    Action,
    ActionEnv,
    ActionFailed,
    Confirmation,
    Input,
    Preview,
    Progress,
    Result,
    Suggestion,
)
from services.text import human_age, mask_url


def _credits(value: str) -> int:
    """A whole, positive number of credits."""
    try:
        n = int(value.strip().replace(",", "").replace("_", ""))
    except ValueError:
        raise ValueError(f"a whole number of credits, not {value!r}") from None
    if not 0 < n <= 10_000_000:
        raise ValueError(f"between 1 and 10,000,000 credits, not {n:,}")
    return n


def _age(when: datetime) -> str:
    return human_age(datetime.now(UTC) - when)


def _money(cents: int, currency: str) -> str:
    return f"{cents / 100:,.2f} {currency.upper()}"


# -- credit ----------------------------------------------------------------------------------


async def _session(env: ActionEnv, target: str) -> Session:
    session_id(target)  # a malformed id never reaches Stripe
    return Session.of(await env.services.payments.checkout_session(target))


async def _suggest_credits(env: ActionEnv, target: str, given: Mapping[str, str]) -> Suggestion:
    """The credits the session bought: what the confirmation shows and the operator types."""
    try:
        return Suggestion(str((await _session(env, target)).credits))
    except ValueError:
        return Suggestion(None)


def _credit_description(session: Session, operator: str) -> str:
    return f"Credit pack (manual credit by {operator} via opsconsole: checkout session {session.id})"


async def _who(env: ActionEnv, session: Session) -> str:
    if not session.user_id:
        return "no user (the session names none)"
    rows = []
    if _is_uuid(session.user_id):
        rows = await env.services.postgres.run("user_emails", user_ids=[session.user_id])
    return f"{rows[0]['email']} ({session.user_id})" if rows else f"user {session.user_id}"


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


async def _credit_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    session = await _session(env, target)
    credits = params.get("credits", session.credits)
    who = await _who(env, session)
    summary = (
        f"Credit {who} with {credits:,} credits for checkout session {target}, paid "
        f"{_money(session.amount, session.currency)} {_age(session.created)} ago "
        f"(payment intent {session.payment_intent}). Once only: a second credit of this session "
        "is refused, from any console."
    )
    calls = (
        query_text("lock_payment", payment_intent=session.payment_intent),
        query_text(
            "insert_purchase_credit",
            user_id=session.user_id,
            credits=credits,
            description=_credit_description(session, env.actor.operator),
            payment_intent=session.payment_intent,
        ),
        query_text(
            "record_payment_credit",
            session_id=target,
            payment_intent=session.payment_intent,
            user_id=session.user_id,
            credits=credits,
            amount_cents=session.amount,
            currency=session.currency,
            credit_transaction_id="(the new credit's id)",
            operator=env.actor.operator,
        ),
    )
    warnings = []
    if session.credits_from_amount:
        warnings.append(
            f"the session does not say how many credits it bought: {session.credits:,} is counted "
            "from the amount paid"
        )
    if not session.paid:
        warnings.append(f"the session is {session.payment_status}, not paid: it will be refused")
    if not await env.services.postgres.run("purchase_once_index"):
        warnings.append(
            "credit_transactions has no unique purchase per payment intent: a webhook resend that lands "
            "after this credit would credit again (create the index of "
            "sql/migrations/0018_ref_purchase_once.sql)"
        )
    return Preview(summary, calls, tuple(warnings))


async def _credit_check(env: ActionEnv, conn, target: str, params: Mapping[str, Any]) -> str | None:
    session = await _session(env, target)
    if not session.paid:
        return (
            f"checkout session {target} is {session.payment_status}, not paid: nothing is owed until its "
            "payment succeeds"
        )
    if not session.payment_intent:
        return f"checkout session {target} has no payment intent: it cannot be matched, so it is not credited"
    if not session.user_id or not _is_uuid(session.user_id):
        return f"checkout session {target} names no user of ours ({session.user_id!r}): credit by hand"
    if not await named_queries().user_exists(conn, user_id=session.user_id):
        return f"user {session.user_id} of checkout session {target} does not exist here"
    await named_queries().lock_payment(conn, payment_intent=session.payment_intent)
    done = await named_queries().credit_for_payment(
        conn, payment_intent=session.payment_intent, session_id=target
    )
    if done is not None:
        return (
            f"already credited: credit #{done['id']} ({done['amount']:,} credits) by {done['by']} at "
            f"{done['at']:%Y-%m-%d %H:%M:%S} UTC; nothing was done"
        )
    if "credits" in params and params["credits"] != session.credits:
        return (
            f"the session bought {session.credits:,} credits, not the {params['credits']:,} confirmed; "
            "nothing was done"
        )
    return None


async def _credit_run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
    session = await _session(env, target)
    credits = params.get("credits", session.credits)
    await named_queries().lock_payment(conn, payment_intent=session.payment_intent)
    progress(f"crediting {credits:,} credits")
    try:
        row = await named_queries().insert_purchase_credit(
            conn,
            user_id=session.user_id,
            credits=credits,
            description=_credit_description(session, env.actor.operator),
            payment_intent=session.payment_intent,
        )
        progress("recording the credit against the session")
        await named_queries().record_payment_credit(
            conn,
            session_id=target,
            payment_intent=session.payment_intent,
            user_id=session.user_id,
            credits=credits,
            amount_cents=session.amount,
            currency=session.currency,
            credit_transaction_id=row["id"],
            operator=env.actor.operator,
        )
    except asyncpg.UniqueViolationError as exc:
        raise ActionFailed(
            f"already credited: another credit of payment {session.payment_intent} landed first "
            f"({exc.constraint_name}); nothing was added",
            hint="opsconsole payments reconcile shows the session matched",
        ) from exc
    return Result(
        f"credited {credits:,} credits to user {session.user_id} for {target} (credit #{row['id']})",
        {
            "session": target,
            "payment_intent": session.payment_intent,
            "user_id": session.user_id,
            "credits": credits,
            "amount_cents": session.amount,
            "currency": session.currency,
            "credit_transaction_id": row["id"],
        },
    )


CREDIT = Action(
    name="credit_payment",
    short="Credit",
    title="Credit the user",
    key="+",
    role="oncall",
    confirmation=Confirmation.TYPED,
    confirm_word=lambda target, params: str(params["credits"]) if "credits" in params else target,
    help="credit a user who paid (a paid checkout session) and was never credited: typed with the credits; "
    "once per session, from any console, even after a resend",
    target_kind="checkout session",
    preview=_credit_preview,
    check=_credit_check,
    run=_credit_run,
    in_transaction=True,
    inputs=(
        Input(
            "credits",
            "the credits the session bought (refused if Stripe says otherwise)",
            _credits,
            optional=True,
            asked=False,
            suggest=_suggest_credits,
        ),
    ),
    claim_on=lambda target, params: ("payment", target),
    audit_params=("credits",),
    verb="crediting",
)


# -- resend ----------------------------------------------------------------------------------


async def _event(env: ActionEnv, target: str) -> Delivery:
    event_id(target)
    return Delivery.of(await env.services.payments.event(target))


async def _targets(env: ActionEnv, delivery: Delivery) -> list[WebhookEndpoint]:
    endpoints = [WebhookEndpoint.of(e) for e in await env.services.payments.webhook_endpoints()]
    return [e for e in endpoints if e.wants(delivery.type)]


def _retry_call(target: str, endpoint: WebhookEndpoint) -> str:
    return f"POST /v1/events/{target}/retry\nwebhook_endpoint={endpoint.id}  ({mask_url(endpoint.url)})"


async def _resend_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    delivery = await _event(env, target)
    wanting = await _targets(env, delivery)
    endpoints = [e for e in wanting if not e.disabled]
    s = delivery.session
    summary = (
        f"Resend {delivery.type} {target} (checkout session {s.id}, "
        f"{_money(s.amount, s.currency)}, {_age(delivery.created)} ago) to "
        f"{len(endpoints)} webhook endpoint(s); the bot credits the user when it accepts it."
    )
    warnings = [
        f"endpoint {mask_url(e.url)} is disabled: Stripe sends it nothing until it is enabled again"
        for e in wanting
        if e.disabled
    ]
    return Preview(summary, tuple(_retry_call(target, e) for e in endpoints), tuple(warnings))


async def _resend_check(env: ActionEnv, conn, target: str, params: Mapping[str, Any]) -> str | None:
    delivery = await _event(env, target)
    if delivery.type not in CHECKOUT_EVENTS:
        return f"{target} is a {delivery.type} event, not a checkout event"
    if datetime.now(UTC) - delivery.created >= RESEND_WINDOW:
        return (
            f"{target} is {_age(delivery.created)} old: Stripe resends events of the last 30 days only; "
            "credit the user instead"
        )
    if delivery.delivered:
        return f"{target} was delivered: every endpoint accepted it, nothing to resend"
    wanting = await _targets(env, delivery)
    if not wanting:
        return f"no webhook endpoint listens for {delivery.type}"
    if all(e.disabled for e in wanting):
        return (
            "the webhook endpoint is disabled: a resend cannot be delivered; fix the endpoint (secret, URL) "
            "and enable it in Stripe first, or credit the user"
        )
    s = delivery.session
    refs = [k for k in (s.payment_intent, s.id, target) if k]
    matched = await env.services.postgres.run(
        "purchase_credits_matching",
        conn=conn,
        payment_intents=[s.payment_intent] if s.payment_intent else [],
        refs=refs,
        since=datetime.now(UTC) - RESEND_WINDOW - timedelta(days=1),
    )
    if matched:
        return f"session {s.id} is already credited ({matched[0]['how']}): nothing to resend"
    since = int((datetime.now(UTC) - RESEND_WINDOW).timestamp())
    failed = await env.services.payments.events(CHECKOUT_EVENTS, since, delivery_success=False)
    if len(failed) >= RESEND_LIMIT:
        return (
            f"{len(failed)} checkout events are undelivered, not under the runbook's {RESEND_LIMIT}: "
            "reconcile and credit them instead (opsconsole payments reconcile)"
        )
    return None


async def _resend_run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
    delivery = await _event(env, target)
    endpoints = [e for e in await _targets(env, delivery) if not e.disabled]
    for endpoint in endpoints:
        progress(f"resending to {mask_url(endpoint.url)}")
        await env.services.payments.resend(target, endpoint.id)
    return Result(
        f"resent {target} to {len(endpoints)} endpoint(s)",
        {"session": delivery.session.id, "endpoints": [e.id for e in endpoints]},
    )


async def _resend_verify(env: ActionEnv, target: str, params, result: Result, progress: Progress) -> Result:
    delivery = await _event(env, target)
    if not delivery.delivered:
        raise ActionFailed(
            f"Stripe resent {target}, but {delivery.pending} endpoint(s) did not accept it",
            hint="the endpoint is still failing: fix it (secret, URL, enabled) or credit the user",
            detail=dict(result.detail),
        )
    return Result(f"{target} delivered: the bot credits session {delivery.session.id}", result.detail)


RESEND = Action(
    name="resend_webhook",
    short="Resend",
    title="Resend webhook event",
    key=">",
    role="support",
    confirmation=Confirmation.YES_NO,
    help=f"send a checkout event the webhook did not accept to its endpoint again (under {RESEND_LIMIT} "
    "undelivered, within Stripe's 30 days); the bot credits the user",
    target_kind="event",
    preview=_resend_preview,
    check=_resend_check,
    run=_resend_run,
    verify=_resend_verify,
    audit_params=(),
    verb="resending",
)

PAYMENT_ACTIONS = (RESEND, CREDIT)
