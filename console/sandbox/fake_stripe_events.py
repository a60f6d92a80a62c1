"""The fake Stripe's events, webhook endpoints and checkout sessions: a seedable store and
its routes, in Stripe's wire format (`list` objects paged newest first with `limit`,
`starting_after`/`ending_before` and `has_more`) as stripe-python reads it.

Resend: Stripe's public API reference has no "resend event" call; the Dashboard's "Resend"
and the CLI's `stripe events resend EVT --webhook-endpoint we_...` both use
`POST /v1/events/{event}/retry` with a `webhook_endpoint` form field (stripe-cli
pkg/cmd/resource/events_resend.go; without an endpoint the CLI sends `for_stripecli=true`
to reach its local listener). Only events of the last 30 days can be resent, and
`GET /v1/events` only goes back 30 days. stripe-python has no method for it:
`client.raw_request_async("post", "/v1/events/EVT/retry", webhook_endpoint="we_...")`."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

API_VERSION = "2024-06-20"
THIRTY_DAYS = 30 * 86400
_RANGE = re.compile(r"^created\[(gt|gte|lt|lte)\]$")


def error(status: int, message: str, code: str | None = None, param: str | None = None):
    """Stripe's error body: {"error": {"type", "message", "code"?, "param"?}}."""
    body = {"type": "invalid_request_error", "message": message}
    body.update({k: v for k, v in (("code", code), ("param", param)) if v})
    return web.json_response({"error": body}, status=status)


@dataclass
class Endpoint:
    id: str
    url: str
    enabled_events: list[str]
    status: str = "enabled"
    created: int = 0

    def wants(self, event_type: str) -> bool:
        return "*" in self.enabled_events or event_type in self.enabled_events

    def wire(self) -> dict:
        return {"id": self.id, "object": "webhook_endpoint", "api_version": API_VERSION,
                "application": None, "created": self.created, "description": None,
                "enabled_events": list(self.enabled_events), "livemode": False, "metadata": {},
                "status": self.status, "url": self.url}  # fmt: skip


@dataclass
class Event:
    id: str
    type: str
    created: int
    obj: dict  # a snapshot of data.object when the event happened
    seq: int
    pending: set[str] = field(default_factory=set)  # endpoints not yet delivered to

    def wire(self) -> dict:
        return {"id": self.id, "object": "event", "api_version": API_VERSION,
                "created": self.created, "data": {"object": dict(self.obj)}, "livemode": False,
                "pending_webhooks": len(self.pending), "type": self.type,
                "request": {"id": None, "idempotency_key": None}}  # fmt: skip


class StripeEventStore:
    """Webhook endpoints, checkout sessions and their events. `deliver(event, endpoint)` is
    called for each delivery attempt to an enabled endpoint (at creation and on a resend); it
    returns whether the endpoint answered 2xx (raising is a failed delivery too). Without it
    an enabled endpoint accepts. A disabled endpoint is never tried: the event stays pending.

    Not thread-safe: the server reads it from its loop, so other threads change it through
    `FakeStripe.call`, which also attempts the deliveries an event's creation queued
    (`flush`). Seeding before the server serves, or between a test's requests, may be direct."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self.now = now
        self.endpoints: dict[str, Endpoint] = {}
        self.sessions: dict[str, dict] = {}
        self.events: list[Event] = []
        self.resends: list[tuple[str, str]] = []  # (event id, endpoint id), in order
        self.deliver: Callable[[Event, Endpoint], Awaitable[bool]] | None = None
        self._outbox: list[tuple[Event, Endpoint]] = []  # creation-time deliveries not yet tried

    # -- seeding (sandbox and tests) --------------------------------------------------
    def add_endpoint(self, url: str, enabled_events: list[str] | None = None, *,
                     status: str = "enabled") -> str:  # fmt: skip
        """Registers a webhook endpoint; returns its we_ id."""
        ep = Endpoint(f"we_{secrets.token_hex(12)}", url,
                      enabled_events or ["checkout.session.completed",
                                         "checkout.session.async_payment_succeeded"],
                      status, int(self.now()))  # fmt: skip
        self.endpoints[ep.id] = ep
        return ep.id

    def set_endpoint_status(self, endpoint_id: str, enabled: bool) -> None:
        self.endpoints[endpoint_id].status = "enabled" if enabled else "disabled"

    def add_event(self, type_: str, obj: dict, *, created: int | None = None,
                  delivered: bool | None = None) -> Event:  # fmt: skip
        """Records an event for every endpoint that wants its type. `delivered=None`: each
        disabled endpoint did not get it, and each enabled one did (with a `deliver` hook: is
        sent it by the next `flush`, pending until then); True/False force it, untried."""
        ev = Event(f"evt_{secrets.token_hex(12)}", type_,
                   int(self.now() if created is None else created), dict(obj), len(self.events))  # fmt: skip
        for ep in self.endpoints.values():
            if not ep.wants(type_) or delivered is True:
                continue
            if delivered is None and ep.status == "enabled":
                if self.deliver is None:
                    continue
                self._outbox.append((ev, ep))
            ev.pending.add(ep.id)
        self.events.append(ev)
        return ev

    async def flush(self) -> int:
        """Attempt the deliveries that events' creation queued, oldest first; a failed one
        leaves its event pending (a resend may land it later). Returns how many landed."""
        landed = 0
        while self._outbox:
            ev, ep = self._outbox.pop(0)
            if await self._attempt(ev, ep):
                ev.pending.discard(ep.id)
                landed += 1
        return landed

    def add_paid_session(self, user_id: int | str, amount: int, *, created: int | None = None,
                         delivered: bool | None = None, async_payment: bool = False,
                         currency: str = "usd", credits: int | None = None,
                         payment_intent: str | None = None) -> tuple[dict, Event]:  # fmt: skip
        """A completed checkout session and its checkout.session.completed event. With
        `async_payment` it is still `unpaid` (a bank debit): not owed until
        `succeed_async_payment`. `credits` goes in the metadata (what the pack bought), as the
        bot's checkout writes it. Returns (session, event)."""
        at = int(self.now() if created is None else created)
        token = secrets.token_hex(12)
        session = {"id": f"cs_test_{token}", "object": "checkout.session", "amount_total": amount,
                   "amount_subtotal": amount, "client_reference_id": str(user_id), "created": at,
                   "currency": currency, "customer": f"cus_{token[:14]}", "livemode": False,
                   "metadata": {"user_id": str(user_id),
                                **({"credits": str(credits)} if credits is not None else {})},
                   "mode": "payment", "payment_intent": payment_intent or f"pi_{token}", "status": "complete",
                   "payment_status": "unpaid" if async_payment else "paid"}  # fmt: skip
        self.sessions[session["id"]] = session
        return session, self.add_event("checkout.session.completed", session, created=at, delivered=delivered)

    def succeed_async_payment(self, session_id: str, *, created: int | None = None,
                              delivered: bool | None = None) -> Event:  # fmt: skip
        """The bank debit cleared: the session becomes paid, with its event."""
        session = self.sessions[session_id]
        session["payment_status"] = "paid"
        return self.add_event("checkout.session.async_payment_succeeded", session,
                              created=created, delivered=delivered)  # fmt: skip

    def event(self, event_id: str) -> Event | None:
        return next((e for e in self.events if e.id == event_id), None)

    # -- HTTP --------------------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/events", self._list_events)
        app.router.add_get("/v1/events/{id}", self._get_event)
        app.router.add_post("/v1/events/{id}/retry", self._retry)
        app.router.add_get("/v1/webhook_endpoints", self._list_endpoints)
        app.router.add_get("/v1/webhook_endpoints/{id}", self._get_endpoint)
        app.router.add_post("/v1/webhook_endpoints/{id}", self._update_endpoint)
        app.router.add_get("/v1/checkout/sessions", self._list_sessions)
        app.router.add_get("/v1/checkout/sessions/{id}", self._get_session)

    async def _list_events(self, request: web.Request) -> web.Response:
        q = request.query
        types = [v for k, v in q.items() if k == "types" or k.startswith("types[")]
        if "type" in q and types:
            return error(400, "You may pass either `type` or `types`, but not both.", param="types")
        wanted = [q["type"]] if "type" in q else types
        oldest = self.now() - THIRTY_DAYS
        rows = [e for e in self.events if e.created >= oldest and _created_ok(e.created, q)
                and (not wanted or any(_type_matches(e.type, w) for w in wanted))]  # fmt: skip
        if "delivery_success" in q:
            success = q["delivery_success"] == "true"
            rows = [e for e in rows if (not e.pending) == success]
        rows.sort(key=lambda e: (e.created, e.seq), reverse=True)
        return _page(request, [(e.id, e.wire()) for e in rows], "/v1/events", "event")

    async def _get_event(self, request: web.Request) -> web.Response:
        ev = self.event(request.match_info["id"])
        if ev is None:
            return error(404, f"No such event: '{request.match_info['id']}'", "resource_missing", "id")
        return web.json_response(ev.wire())

    async def _retry(self, request: web.Request) -> web.Response:
        ev = self.event(request.match_info["id"])
        if ev is None:
            return error(404, f"No such event: '{request.match_info['id']}'", "resource_missing", "id")
        form = await request.post()
        ep = self.endpoints.get(str(form.get("webhook_endpoint", "")))
        if ep is None:
            return error(400, f"No such webhook endpoint: '{form.get('webhook_endpoint', '')}'",
                         "resource_missing", "webhook_endpoint")  # fmt: skip
        if ev.created < self.now() - THIRTY_DAYS:
            return error(400, "Events older than 30 days cannot be resent.", param="id")
        self.resends.append((ev.id, ep.id))
        if await self._attempt(ev, ep):
            ev.pending.discard(ep.id)
        return web.json_response(ev.wire())

    async def _attempt(self, ev: Event, ep: Endpoint) -> bool:
        if ep.status != "enabled":  # Stripe sends nothing to a disabled endpoint
            return False
        if self.deliver is not None:
            try:
                return await self.deliver(ev, ep)
            except Exception:  # an endpoint that errors is a failed delivery
                return False
        return True

    async def _list_endpoints(self, request: web.Request) -> web.Response:
        rows = sorted(self.endpoints.values(), key=lambda e: e.created, reverse=True)
        return _page(request, [(e.id, e.wire()) for e in rows], "/v1/webhook_endpoints", "webhook_endpoint")

    async def _get_endpoint(self, request: web.Request) -> web.Response:
        ep = self.endpoints.get(request.match_info["id"])
        if ep is None:
            return error(
                404, f"No such webhook endpoint: '{request.match_info['id']}'", "resource_missing", "id"
            )
        return web.json_response(ep.wire())

    async def _update_endpoint(self, request: web.Request) -> web.Response:
        """The real update call: `disabled=true|false` (and url) as the Dashboard sets them."""
        ep = self.endpoints.get(request.match_info["id"])
        if ep is None:
            return error(
                404, f"No such webhook endpoint: '{request.match_info['id']}'", "resource_missing", "id"
            )
        form = await request.post()
        if "disabled" in form:
            ep.status = "disabled" if form["disabled"] == "true" else "enabled"
        if "url" in form:
            ep.url = str(form["url"])
        return web.json_response(ep.wire())

    async def _list_sessions(self, request: web.Request) -> web.Response:
        q = request.query
        rows = [s for s in self.sessions.values() if _created_ok(s["created"], q)
                and all(s.get(k) == q[k] for k in ("payment_intent", "customer", "status") if k in q)]  # fmt: skip
        order = {sid: i for i, sid in enumerate(self.sessions)}
        rows.sort(key=lambda s: (s["created"], order[s["id"]]), reverse=True)
        return _page(request, [(s["id"], dict(s)) for s in rows], "/v1/checkout/sessions", "checkout.session")

    async def _get_session(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["id"])
        if session is None:
            return error(
                404, f"No such checkout.session: '{request.match_info['id']}'", "resource_missing", "id"
            )
        return web.json_response(dict(session))


def _type_matches(event_type: str, wanted: str) -> bool:
    # Stripe accepts a trailing wildcard: `checkout.session.*`.
    return event_type.startswith(wanted[:-1]) if wanted.endswith("*") else event_type == wanted


def _created_ok(created: int, q) -> bool:
    if "created" in q and created != int(q["created"]):
        return False
    for key, value in q.items():
        if m := _RANGE.match(key):
            bound, op = int(value), m.group(1)
            ok = {
                "gt": created > bound,
                "gte": created >= bound,
                "lt": created < bound,
                "lte": created <= bound,
            }
            if not ok[op]:
                return False
    return True


def _page(request: web.Request, rows: list[tuple[str, dict]], url: str, kind: str) -> web.Response:
    """One page of `rows` (already newest first) by limit / starting_after / ending_before."""
    q = request.query
    try:
        limit = int(q.get("limit", "10"))
    except ValueError:
        return error(400, "Invalid integer: limit", param="limit")
    if not 1 <= limit <= 100:
        return error(400, "This value must be greater than or equal to 1 and less than or equal to 100.",
                     param="limit")  # fmt: skip
    ids = [rid for rid, _ in rows]
    if cursor := q.get("starting_after"):
        if cursor not in ids:
            return error(400, f"No such {kind}: '{cursor}'", "resource_missing", "starting_after")
        rest = rows[ids.index(cursor) + 1 :]
        page, more = rest[:limit], len(rest) > limit
    elif cursor := q.get("ending_before"):
        if cursor not in ids:
            return error(400, f"No such {kind}: '{cursor}'", "resource_missing", "ending_before")
        rest = rows[: ids.index(cursor)]
        page, more = rest[-limit:], len(rest) > limit
    else:
        page, more = rows[:limit], len(rows) > limit
    return web.json_response(
        {"object": "list", "data": [body for _, body in page], "has_more": more, "url": url}
    )
