"""Allegro API host: orders, event journal, offers, offer events, returns."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from sandbox.allegro.oauth import OAuthError, TokenPair
from sandbox.allegro.orders import EVENT_TYPES, S_MERGED, S_RETURN, AllegroOrderModel
from sandbox.ratelimit import ALLEGRO_BLOCK_SECONDS, ALLEGRO_RATE
from sandbox.responses import ALLEGRO_BETA, ALLEGRO_PUBLIC, allegro_error, dumps, json_response, oauth_error
from sandbox.stock import StockMove
from sandbox.timefmt import parse_iso_utc, utc_z
from sandbox.world import AllegroShop, World

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
FORM_STATUSES = ("BOUGHT", "FILLED_IN", "READY_FOR_PROCESSING", "CANCELLED")
FULFILLMENT = (
    "NEW",
    "PROCESSING",
    "READY_FOR_SHIPMENT",
    "READY_FOR_PICKUP",
    "SENT",
    "PICKED_UP",
    "CANCELLED",
    "SUSPENDED",
    "RETURNED",
)
SORTS = ("lineItems.boughtAt", "-lineItems.boughtAt", "updatedAt", "-updatedAt")
MAX_LIFE = 3 * 86400  # the last state change of a form (PICKED_UP) is 3 days after purchase
TYPE_STAGES = {
    "BOUGHT": {0},
    "FILLED_IN": {1},
    "READY_FOR_PROCESSING": {2, 3, S_MERGED},
    "BUYER_CANCELLED": {4, 6},
    "AUTO_CANCELLED": {4},
    "FULFILLMENT_STATUS_CHANGED": {5, 7, 8},
    "BUYER_MODIFIED": set(),
}


class Invalid(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path, self.message = path, message


class Ctx:
    def __init__(self, world: World, shop: AllegroShop, headers: dict[str, str], media: str) -> None:
        self.world, self.shop, self.headers, self.media = world, shop, headers, media
        self.now = world.now()

    def ok(self, body: Any) -> Response:
        return json_response(body, 200, self.media, self.headers)

    def invalid(self, exc: Invalid) -> Response:
        return allegro_error(422, "VALIDATION_ERROR", exc.message, exc.path, self.media, self.headers)


def _guard(request: Request, media: str = ALLEGRO_PUBLIC) -> Ctx | Response:
    world: World = request.app.state.world
    now = world.now()
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer "):
        return oauth_error(401, "unauthorized", "Full authentication is required to access this resource")
    try:
        pair = world.auth.check_access(auth[7:].strip(), now)
    except OAuthError as exc:
        return oauth_error(exc.status, exc.error, exc.description)
    ctx = request.scope.get("sandbox_ctx", {})
    ctx["token_id"], ctx["shop"] = pair.jti, pair.shop
    if world.faults.roll("allegro-api", "revoke", ctx.get("request_no", 0)):
        world.auth.revoke_family_of(pair)  # e.g. the user changed the password
        ctx["fault"] = "revoke"
        return oauth_error(401, "invalid_token", "Access token has been revoked")
    accept = request.headers.get("accept", "")
    if media not in accept:
        return allegro_error(406, "NotAcceptableException", f"Use Accept: {media}", media_type=ALLEGRO_PUBLIC)
    decision = world.limiter.take(pair.client_id, "allegro.client", ALLEGRO_RATE, now, ALLEGRO_BLOCK_SECONDS)
    headers = {"x-ratelimit-remaining": str(decision.remaining), "trace-id": f"sandbox-{ctx.get('request_no', 0)}"}
    if not decision.allowed:
        return allegro_error(429, "TooManyRequestsException", "Too many requests, client blocked", headers=headers)
    return Ctx(world, world.allegro[_shop_of(pair)], headers, media)


def _shop_of(pair: TokenPair) -> str:
    return pair.shop


# -- parameter parsing ------------------------------------------------------------
def _int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Invalid(name, f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise Invalid(name, f"{name} must be between {lo} and {hi}")
    return value


def _time(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return parse_iso_utc(raw)
    except ValueError:
        raise Invalid(name, f"{name} must be an ISO 8601 date-time") from None


def _enum_list(request: Request, name: str, allowed: tuple[str, ...]) -> set[str]:
    values = set(request.query_params.getlist(name))
    bad = values - set(allowed)
    if bad:
        raise Invalid(name, f"{name}: unknown value {sorted(bad)[0]}")
    return values


# -- routes -------------------------------------------------------------------------
def api_router() -> APIRouter:
    router = APIRouter(prefix="/allegro-api")

    @router.get("/order/checkout-forms")
    async def checkout_forms(request: Request) -> Response:
        g = _guard(request)
        if not isinstance(g, Ctx):
            return g
        try:
            return _cached_listing(g, request)
        except Invalid as exc:
            return g.invalid(exc)

    @router.get("/order/checkout-forms/{form_id}")
    async def checkout_form(form_id: str, request: Request) -> Response:
        g = _guard(request)
        if not isinstance(g, Ctx):
            return g
        if not UUID_RE.match(form_id):
            return g.invalid(Invalid("checkoutFormId", "checkoutFormId must be a UUID"))
        m = g.shop.orders
        k = m.index_of(form_id, g.now)
        # A merged form's old id is gone (404), and its new id exists only from the merge on.
        if (
            k is None
            or k < m.oldest_retained(g.now)
            or m.appear(k) > g.now
            or m.gone(k, g.now)
            or m.form_id_at(k, g.now) != form_id
        ):
            return allegro_error(404, "NOT_FOUND", f"Checkout form {form_id} not found", headers=g.headers)
        return g.ok(m.checkout_form(k, g.now))

    @router.get("/order/events")
    async def events(request: Request) -> Response:
        g = _guard(request)
        if not isinstance(g, Ctx):
            return g
        try:
            return g.ok({"events": _events_page(g, request)})
        except Invalid as exc:
            return g.invalid(exc)

    @router.get("/order/event-stats")
    async def event_stats(request: Request) -> Response:
        g = _guard(request)
        if not isinstance(g, Ctx):
            return g
        m = g.shop.orders
        latest = m.latest_event(g.now)
        if latest is None or latest[0] < g.now - g.world.event_retention():
            return g.ok({"latestEvent": None})
        event = m.event(latest, g.shop.seller_id)
        return g.ok({"latestEvent": {"id": event["id"], "occurredAt": event["occurredAt"]}})

    @router.get("/sale/offers")
    async def offers(request: Request) -> Response:
        g = _guard(request)
        if not isinstance(g, Ctx):
            return g
        try:
            offset = _int(request, "offset", 0, 0, 10**9)
            limit = _int(request, "limit", 20, 1, 1000)
            statuses = _enum_list(request, "publication.status", ("INACTIVE", "ACTIVATING", "ACTIVE", "ENDED"))
        except Invalid as exc:
            return g.invalid(exc)
        rows = [
            o for o in g.world.offer_rows(g.shop.spec.name) if not statuses or o["publication"]["status"] in statuses
        ]
        page = rows[offset : offset + limit]
        return g.ok({"offers": page, "count": len(page), "totalCount": len(rows)})

    @router.get("/sale/offer-events")
    async def offer_events(request: Request) -> Response:
        g = _guard(request)
        if not isinstance(g, Ctx):
            return g
        try:
            return g.ok({"offerEvents": _offer_events(g, request)})
        except Invalid as exc:
            return g.invalid(exc)

    @router.get("/order/customer-returns")
    async def customer_returns(request: Request) -> Response:
        g = _guard(request, ALLEGRO_BETA)
        if not isinstance(g, Ctx):
            return g
        try:
            return g.ok(_returns_page(g, request))
        except Invalid as exc:
            return g.invalid(exc)

    return router


def _cached_listing(g: Ctx, request: Request) -> Response:
    """The listing, from the response cache when it is on (sandbox.response_cache)."""
    cache = g.world.responses
    if not cache.enabled:
        return g.ok(_list_forms(g, request))
    merges = len(g.shop.orders.merges.forced_list)  # an operator merge changes the listing
    key = cache.key("allegro", g.shop.spec.name, sorted(request.query_params.multi_items()), g.now, merges)
    return Response(cache.body(key, lambda: dumps(_list_forms(g, request))), 200, headers=g.headers, media_type=g.media)


def _list_forms(g: Ctx, request: Request) -> dict[str, Any]:
    offset = _int(request, "offset", 0, 0, 10_000)
    limit = _int(request, "limit", 100, 1, 100)
    if offset + limit > 10_000:
        raise Invalid("offset", "offset + limit must not exceed 10000; narrow the lineItems.boughtAt range")
    sort = request.query_params.get("sort", "-lineItems.boughtAt")
    if sort not in SORTS:
        raise Invalid("sort", f"sort must be one of {', '.join(SORTS)}")
    statuses = _enum_list(request, "status", FORM_STATUSES)
    fulfillment = _enum_list(request, "fulfillment.status", FULFILLMENT)
    bought = (_time(request, "lineItems.boughtAt.gte"), _time(request, "lineItems.boughtAt.lte"))
    updated = (_time(request, "updatedAt.gte"), _time(request, "updatedAt.lte"))
    login = request.query_params.get("buyer.login")
    m, now = g.shop.orders, g.now
    ks = _candidate_range(m, now, bought, updated)
    needs_state = bool(
        statuses or fulfillment or updated[0] is not None or updated[1] is not None or sort.endswith("updatedAt")
    )

    merges = m.merges.active

    def matches(k: int) -> bool:
        if merges and m.gone(k, now):
            return False  # merged into another form: only the new one is listed
        if login is not None and m.buyer_login(k) != login:
            return False
        if not needs_state:
            return True
        status, ful, upd, _rev = m.state(k, now)
        return (
            (not statuses or status in statuses)
            and (not fulfillment or ful in fulfillment)
            and (updated[0] is None or upd >= updated[0])
            and (updated[1] is None or upd <= updated[1])
        )

    if sort.endswith("updatedAt"):
        keyed = sorted(((m.state(k, now)[2], k) for k in ks if matches(k)), reverse=sort.startswith("-"))
        ordered = [k for _u, k in keyed]
        total = len(ordered)
        page = ordered[offset : offset + limit]
    else:
        seq = ks if sort == "lineItems.boughtAt" else reversed(ks)
        if login is None and not needs_state and not merges:
            total, page = len(ks), _slice_range(ks, sort, offset, limit)
        else:
            matched = [k for k in seq if matches(k)]
            total, page = len(matched), matched[offset : offset + limit]
    forms = [m.checkout_form(k, now) for k in page]
    return {"checkoutForms": forms, "count": len(forms), "totalCount": total}


def _slice_range(ks: range, sort: str, offset: int, limit: int) -> list[int]:
    seq = ks if sort == "lineItems.boughtAt" else ks[::-1]
    return list(seq[offset : offset + limit])


def _candidate_range(
    m: AllegroOrderModel,
    now: float,
    bought: tuple[float | None, float | None],
    updated: tuple[float | None, float | None],
) -> range:
    t = m.timeline
    lo = m.oldest_retained(now)
    hi = m.visible_count(now)
    if bought[0] is not None:
        lo = max(lo, t.first_index_at(bought[0]))
    if bought[1] is not None:
        hi = min(hi, t.first_index_at(bought[1] + 0.001))
    if updated[0] is not None:
        lo = max(lo, t.first_index_at(updated[0] - MAX_LIFE))
    if updated[1] is not None:
        hi = min(hi, t.first_index_at(updated[1] + 0.001))
    return range(lo, max(lo, hi))


def _events_page(g: Ctx, request: Request) -> list[dict[str, Any]]:
    limit = _int(request, "limit", 100, 1, 1000)
    types = _enum_list(request, "type", EVENT_TYPES)
    raw_from = request.query_params.get("from")
    m = g.shop.orders
    cursor = None
    if raw_from is not None:
        if not raw_from.isdigit():
            raise Invalid("from", "from must be an event id")
        cursor = m.decode_event_id(raw_from)
    tags = set().union(*(TYPE_STAGES[t] for t in types)) if types else None
    oldest = g.now - g.world.event_retention()
    out: list[dict[str, Any]] = []
    ctx = request.scope.get("sandbox_ctx", {})
    n = ctx.get("request_no", 0)
    for at in m.events_after(cursor, oldest, g.now, tags):
        if types and m.event_type(at[1], at[2]) not in types:
            continue
        event = m.event(at, g.shop.seller_id)
        out.append(event)
        if g.world.faults.roll("allegro-api", "dup", n, len(out)) and len(out) < limit:
            out.append(event)  # delivered twice, same id
            ctx["fault"] = "dup"
        if len(out) >= limit:
            break
    return out[:limit]


def _offer_events(g: Ctx, request: Request) -> list[dict[str, Any]]:
    limit = _int(request, "limit", 100, 1, 1000)
    types = set(request.query_params.getlist("type"))
    raw_from = request.query_params.get("from")
    if raw_from is not None and not raw_from.isdigit():
        raise Invalid("from", "from must be an event id")
    after = int(raw_from) if raw_from else -1
    stock = g.shop.stock
    stock.advance_to(g.now)
    oldest = g.now - g.world.config.offer_event_retention_s
    out: list[dict[str, Any]] = []
    for move in stock.moves:
        if move.at < oldest:
            continue
        for sub, event_type, s in _move_events(move):
            event_id = 10**15 + move.j * 10 + sub
            if event_id <= after or (types and event_type not in types):
                continue
            offer = g.shop.offers[s]
            out.append(
                {
                    "id": str(event_id),
                    "occurredAt": utc_z(move.at, millis=True),
                    "type": event_type,
                    "offer": {"id": offer.offer_id, "external": {"id": offer.external_id}},
                }
            )
            if len(out) >= limit:
                return out
    return out


def _move_events(move: StockMove) -> list[tuple[int, str, int]]:
    """(sub id, type, offer index): a stock change, plus ENDED when the offer
    sold out and ACTIVATED when a restock brought it back (one offer = one SKU)."""
    events: list[tuple[int, str, int]] = []
    for n, ((s, _w, delta), total) in enumerate(zip(move.deltas, move.totals_after, strict=True)):
        events.append((n * 3, "OFFER_STOCK_CHANGED", s))
        if total == 0 and delta < 0:
            events.append((n * 3 + 1, "OFFER_ENDED", s))
        elif total == delta and delta > 0:
            events.append((n * 3 + 2, "OFFER_ACTIVATED", s))
    return events


def _returns_page(g: Ctx, request: Request) -> dict[str, Any]:
    offset = _int(request, "offset", 0, 0, 10**9)
    limit = _int(request, "limit", 100, 1, 1000)
    created = (_time(request, "createdAt.gte"), _time(request, "createdAt.lte"))
    order_id = request.query_params.get("orderId")
    m = g.shop.orders
    lo = created[0] if created[0] is not None else float(g.world.history_start)
    hi = min(created[1], g.now) if created[1] is not None else g.now
    rows = [m.customer_return(k) for _t, _tag, k in m.timeline.changes_between(lo, hi, tags={S_RETURN})]
    if order_id:
        rows = [r for r in rows if r["orderId"] == order_id]
    rows.reverse()  # newest first
    page = rows[offset : offset + limit]
    return {"customerReturns": page, "count": len(page)}
