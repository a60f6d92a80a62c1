"""The orders runbooks (../shared/seeds, GIVRWRLD runbooks 1, 2 and 6) as runbook-engine
actions: retry provisioning, sync the panel account, cancel and refund."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from services.orders import LockedOrder, lock_order, order_state, panel_account
from services.payments import idempotency_key
from services.postgres import named_queries, query_text
from services.provisioner import PANEL_USER, PROVISION
from services.runbook import (
    Action,
    ActionEnv,
    ActionFailed,
    Confirmation,
    Input,
    Preview,
    Progress,
    Result,
    yes_no,
)

# Where each of the seed's three provisioning errors leads (the screen opens it).
ERROR_HINTS = {
    "No available nodes": "capacity",
    "Failed to create server: 422": "plan",
    "External account not found": "panel_sync",
}
HINT_TEXT = {
    "capacity": "no node has room for this plan: check node capacity (enable a node or free RAM)",
    "plan": "the panel refused the server: check the plan's egg id and configuration",
    "panel_sync": "the customer has no panel account: run Sync panel account, then retry",
}
VERIFY_TIMEOUT = 60.0  # seconds to wait for the server id after a successful retry
VERIFY_EVERY = 0.5


def hint_for(error: str | None) -> str | None:
    for known, hint in ERROR_HINTS.items():
        if error and known in error:
            return hint
    return None


async def _order_row(conn, order_id: str) -> LockedOrder | None:
    return await lock_order(conn, order_id)


# -- retry provisioning ---------------------------------------------------------------


async def _retry_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    return Preview(
        summary=f"Ask the provisioning function to create the server for order {target}, "
        "then wait until the order is provisioned with a server id.",
        calls=(env.services.provisioner.call_text(PROVISION, {"order_id": target}),),
    )


async def _retry_check(env: ActionEnv, conn, target: str, params: Mapping[str, Any]) -> str | None:
    row = await _order_row(conn, target)
    if row is None:
        return f"there is no order {target}"
    if row.status not in ("paid", "error"):
        return f"order is {row.status}: only paid or error orders are retried"
    if row.pterodactyl_server_id:
        return f"order already has server {row.pterodactyl_server_id}"
    return None


async def _retry_run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
    progress("calling servers-provision")
    reply = await env.services.provisioner.invoke(PROVISION, {"order_id": target})
    if not reply.ok:
        raise ActionFailed(
            f"servers-provision failed: {reply.error}",
            hint=hint_for(reply.error),
            detail={"http_status": reply.status},
        )
    return Result("the provisioning function accepted the order", {"http_status": reply.status})


async def _retry_verify(env: ActionEnv, target: str, params, result: Result, progress: Progress) -> Result:
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        async with env.services.postgres.connection() as conn:
            row = await order_state(conn, target)
        waited = loop.time() - started
        if row.status in ("provisioned", "active") and row.pterodactyl_server_id:
            return Result(
                f"provisioned: server {row.pterodactyl_server_id} "
                f"({row.pterodactyl_server_identifier}) after {waited:.0f} s",
                {**result.detail, "server_id": row.pterodactyl_server_id},
            )
        if row.status == "error":
            error = row.error_message or "unknown error"
            raise ActionFailed(f"provisioning failed: {error}", hint=hint_for(error))
        if waited > VERIFY_TIMEOUT:
            raise ActionFailed(
                f"no server id after {VERIFY_TIMEOUT:.0f} s (order is {row.status}); "
                "check the function's logs, then retry"
            )
        progress(f"waiting for the server id… {waited:.0f} s (order is {row.status})")
        await asyncio.sleep(VERIFY_EVERY)


RETRY = Action(
    name="retry_provisioning",
    short="Retry",
    title="Retry provisioning",
    key="R",
    role="support",
    confirmation=Confirmation.YES_NO,
    help="POST servers-provision for a paid or error order without a server, then wait for its server id",
    target_kind="order",
    preview=_retry_preview,
    check=_retry_check,
    run=_retry_run,
    verify=_retry_verify,
    verb="retrying",
)


# -- sync panel account ---------------------------------------------------------------


async def _sync_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    return Preview(
        summary=f"Create the Pterodactyl panel account for user {target}. The function returns "
        "a password: it is shown once, to pass on to the customer, and never stored.",
        calls=(env.services.provisioner.call_text(PANEL_USER, {"userId": target}),),
    )


async def _sync_check(env: ActionEnv, conn, target: str, params: Mapping[str, Any]) -> str | None:
    if await conn.fetchval("SELECT NOT EXISTS (SELECT 1 FROM users WHERE id = $1::uuid)", target):
        return f"there is no user {target}"
    row = await panel_account(conn, target)
    if row is not None:
        return f"the user already has panel account {row.pterodactyl_user_id}"
    return None


async def _sync_run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
    progress("calling create-pterodactyl-user")
    reply = await env.services.provisioner.invoke(PANEL_USER, {"userId": target})
    if not reply.ok:
        raise ActionFailed(
            f"create-pterodactyl-user failed: {reply.error}", detail={"http_status": reply.status}
        )
    password = reply.body.get("password")
    return Result(
        f"panel account {reply.body.get('pterodactyl_user_id')} created",
        {"pterodactyl_user_id": reply.body.get("pterodactyl_user_id")},
        secret=str(password) if password else None,
    )


async def _sync_verify(env: ActionEnv, target: str, params, result: Result, progress: Progress) -> Result:
    async with env.services.postgres.connection() as conn:
        row = await panel_account(conn, target)
    if row is None:
        raise ActionFailed("the function answered, but no external_accounts row exists for the user")
    return Result(
        f"panel account {row.pterodactyl_user_id} ({row.panel_username}) exists",
        result.detail,
        secret=result.secret,
    )


async def _customer_of(env: ActionEnv, selected: str) -> str:
    """The customer of the selected order (or the user id itself, when one is given)."""
    detail = await env.services.orders.detail(selected)
    return detail.user_id if detail else selected


SYNC_PANEL = Action(
    name="sync_panel_account",
    short="Panel sync",
    title="Sync panel account",
    key="P",
    role="support",
    confirmation=Confirmation.YES_NO,
    help="POST create-pterodactyl-user for a customer with no panel account; shows the password once",
    target_kind="user",
    selects="order",
    locate=_customer_of,
    preview=_sync_preview,
    check=_sync_check,
    run=_sync_run,
    verify=_sync_verify,
    verb="creating the panel account of",
)


# -- cancel and refund ----------------------------------------------------------------


def parse_refund(text: str | None) -> int | None:
    """Cents from what the operator typed ("", "all", "12.50"); None means no refund,
    -1 a full refund. Raises ValueError with a message for anything else."""
    value = (text or "").strip().lower().lstrip("$")
    if value in ("", "none", "no", "0"):
        return None
    if value in ("all", "full"):
        return -1
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValueError(
            f"refund {text!r} is not an amount: type e.g. 12.50, 'all' or leave it empty"
        ) from None
    if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"refund {text!r} must be a positive amount in dollars and cents")
    return int(amount * 100)


def show_refund(cents: int | None) -> str:
    """A parsed refund as the operator reads it back."""
    if cents is None:
        return "none"
    return "all of it" if cents == -1 else f"${cents / 100:.2f}"


def _refund_cents(params: Mapping[str, Any], paid: int) -> int | None:
    refund = params.get("refund")
    if refund is None:
        return None
    return paid if refund == -1 else int(refund)


async def _cancel_preview(env: ActionEnv, target: str, params: Mapping[str, Any]) -> Preview:
    detail = await env.services.orders.detail(target)
    calls = [query_text("set_order_canceled", id=target)]
    warnings = []
    sub = detail.stripe_subscription_id if detail else None
    pi = detail.stripe_payment_intent_id if detail else None
    paid = (detail.amount_cents or 0) if detail else 0
    server = detail.pterodactyl_server_id if detail else None
    deleting_server = bool(params.get("delete_server") and server)  # no server: the check refuses
    if deleting_server:
        calls.append(query_text("clear_order_server", id=target))
    if sub:
        calls.append(f"DELETE /v1/subscriptions/{sub}\nIdempotency-Key: {idempotency_key('cancel', target)}")
    refund = _refund_cents(params, paid)
    if refund:
        key = idempotency_key("refund", target, refund)
        calls.append(f"POST /v1/refunds payment_intent={pi} amount={refund}\nIdempotency-Key: {key}")
    if deleting_server:
        calls.append(env.services.panel.delete_call_text(server))
        warnings.append(f"server {server} and its files are deleted from the panel")
    money = f"refund ${refund / 100:.2f} of ${paid / 100:.2f}" if refund else "no refund"
    stripe = "cancel its Stripe subscription, " if sub else ""
    deleting = f", delete panel server {server}" if deleting_server else ", keep its panel server"
    if params.get("delete_server") and not server:
        deleting = ", delete its panel server (it has none)"
    return Preview(
        summary=f"Cancel order {target}: {stripe}{money}, set it canceled{deleting}.",
        calls=tuple(calls),
        warnings=tuple(warnings),
    )


async def _cancel_check(env: ActionEnv, conn, target: str, params: Mapping[str, Any]) -> str | None:
    row = await _order_row(conn, target)
    if row is None:
        return f"there is no order {target}"
    if row.status in ("canceled", "refunded", "expired"):
        return f"order is already {row.status}"
    refund = _refund_cents(params, row.amount_cents or 0)
    if refund is not None:
        if not row.stripe_payment_intent_id:
            return "the order has no Stripe payment to refund"
        if refund > (row.amount_cents or 0):
            return f"refund ${refund / 100:.2f} is more than the ${(row.amount_cents or 0) / 100:.2f} paid"
    if params.get("delete_server") and not row.pterodactyl_server_id:
        return "the order has no panel server to delete"
    return None


async def _cancel_run(env: ActionEnv, target: str, params, conn, progress: Progress) -> Result:
    row = await _order_row(conn, target)
    payments = env.services.payments
    done: dict[str, Any] = {}
    try:
        # The database's changes first, uncommitted: a change the database refuses stops the
        # action before anything leaves the console; they commit after the calls succeed.
        progress("setting the order canceled")
        await named_queries().set_order_canceled(conn, id=target)
        if params.get("delete_server"):
            await named_queries().clear_order_server(conn, id=target)
        if row.stripe_subscription_id:
            progress("canceling the Stripe subscription")
            state = await payments.payment_state(row.stripe_payment_intent_id, row.stripe_subscription_id)
            if state.subscription_status != "canceled":
                await payments.cancel_subscription(
                    row.stripe_subscription_id, idempotency_key("cancel", target)
                )
            done["subscription"] = "canceled"
        refund = _refund_cents(params, row.amount_cents or 0)
        if refund:
            progress(f"refunding ${refund / 100:.2f}")
            key = idempotency_key("refund", target, refund)
            done["refund_id"] = await payments.refund(row.stripe_payment_intent_id, refund, key)
            done["refund_cents"] = refund
        if params.get("delete_server"):
            progress(f"deleting server {row.pterodactyl_server_id} in the panel")
            deleted = await env.services.panel.delete_server(row.pterodactyl_server_id)
            done["server_deleted"] = row.pterodactyl_server_id
            done["server_was_there"] = deleted
    except ActionFailed:
        raise
    except Exception as exc:
        # What already happened in Stripe stays recorded; the idempotency keys make a retry safe.
        raise ActionFailed(
            f"{exc} (done before the failure: {json.dumps(done) or 'nothing'})", detail=done
        ) from exc
    money = f", refunded ${done['refund_cents'] / 100:.2f}" if "refund_cents" in done else ", no refund"
    server = ""
    if "server_deleted" in done:
        gone = "" if done["server_was_there"] else " (it was already gone)"
        server = f", panel server {done['server_deleted']} deleted{gone}"
    return Result(f"order canceled{money}{server}", done)


CANCEL = Action(
    name="cancel_refund",
    short="Cancel",
    title="Cancel and refund",
    key="X",
    role="support",
    confirmation=Confirmation.TYPED,
    help="cancel the Stripe subscription, optionally refund all or part, set the order canceled, "
    "optionally delete the panel server",
    target_kind="order",
    preview=_cancel_preview,
    check=_cancel_check,
    run=_cancel_run,
    in_transaction=True,
    inputs=(
        Input(
            "refund",
            "refund: empty = none, 'all', or an amount like 12.50",
            parse_refund,
            default="",
            optional=True,
            show=show_refund,
        ),
        Input("delete_server", "delete the panel server and its files too? yes / no", yes_no, default="no"),
    ),
    audit_params=("refund", "delete_server"),
    verb="canceling",
)

ORDER_ACTIONS = (RETRY, SYNC_PANEL, CANCEL)
