"""WB hosts: statistics, analytics (stocks report), feedbacks, content, FBS."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from sandbox.catalog import SELLER_WAREHOUSE, WB_WAREHOUSES
from sandbox.hashing import h64
from sandbox.responses import json_array_chunks, json_response, wb_bad_request
from sandbox.timefmt import parse_wb_date_from, utc_z
from sandbox.wb import feed as wb_feed
from sandbox.wb.guard import Guarded, charge_4xx, wb_guard
from sandbox.wb.orders import CANCEL_DELAY, WbOrderModel, msk_day_start
from sandbox.wb.reviews import ANSWERED, ARCHIVE, UNANSWERED
from sandbox.world import WbShop, World


def _world(request: Request) -> World:
    return request.app.state.world


# -- statistics ---------------------------------------------------------------------
def statistics_router() -> APIRouter:
    router = APIRouter(prefix="/wb-statistics")

    @router.get("/api/v1/supplier/orders")
    def orders(request: Request) -> Response:
        return _statistics(request, "orders")

    @router.get("/api/v1/supplier/sales")
    def sales(request: Request) -> Response:
        return _statistics(request, "sales")

    return router


def _statistics(request: Request, kind: str) -> Response:
    world = _world(request)
    g = wb_guard(world, request, "statistics", f"statistics.{kind}")
    if not isinstance(g, Guarded):
        return g
    raw_from = request.query_params.get("dateFrom")
    if not raw_from:
        return wb_bad_request("dateFrom is required")
    try:
        date_from = parse_wb_date_from(raw_from)
        flag = int(request.query_params.get("flag", "0"))
    except ValueError:
        return wb_bad_request("invalid dateFrom or flag")
    if flag not in (0, 1):
        return wb_bad_request("flag must be 0 or 1")
    # Statistics serve what their last refresh saw (every 30 min on WB; config).
    now, model = world.statistics_now(), g.shop.orders
    chunks = json_array_chunks(_statistics_rows(world, model, kind, flag, date_from, now))
    if world.responses.enabled:
        key = world.responses.key("wb", g.shop.spec.name, kind, sorted(request.query_params.multi_items()), now)
        chunks = world.responses.chunks(key, chunks)
    return StreamingResponse(chunks, media_type="application/json", headers=g.headers())


def _statistics_rows(
    world: World, model: WbOrderModel, kind: str, flag: int, date_from: float, now: float
) -> Iterator[dict[str, Any]]:
    kept_from = now - world.config.wb_retention_days * 86400  # older changes are gone
    rows: Iterator[dict[str, Any]]
    if flag == 0:
        since = model.orders_since if kind == "orders" else model.sales_since
        rows = itertools.islice(since(max(date_from, kept_from), now), world.config.wb_row_cap)
    elif msk_day_start(date_from) + 86400 <= kept_from:
        rows = iter(())
    else:
        on_day = model.orders_on_day if kind == "orders" else model.sales_on_day
        rows = on_day(msk_day_start(date_from), now)
    return rows


# -- analytics: stocks report ---------------------------------------------------------
def analytics_router() -> APIRouter:
    router = APIRouter(prefix="/wb-analytics")

    @router.post("/api/analytics/v1/stocks-report/wb-warehouses")
    async def stocks(request: Request) -> Response:
        world = _world(request)
        g = wb_guard(world, request, "analytics", "analytics.stocks")
        if not isinstance(g, Guarded):
            return g
        body = await _json_body(request)
        if not isinstance(body, dict):
            return wb_bad_request("invalid JSON body")
        problem = _check_stock_body(body)
        if problem:
            return wb_bad_request(problem)
        items = _stock_items(world, g.shop, body)
        offset, limit = int(body.get("offset", 0)), int(body.get("limit", 250_000))
        return json_response({"data": {"items": items[offset : offset + limit]}}, headers=g.headers())

    @router.post("/api/analytics/v1/order-feed")
    async def order_feed(request: Request) -> Response:
        world = _world(request)
        g = wb_guard(world, request, "analytics", "analytics.order_feed")
        if not isinstance(g, Guarded):
            return g
        try:
            body = wb_feed.page(g.shop.orders, await _json_body(request), world.now(), world.config.wb_feed_drift)
        except wb_feed.FeedError as exc:
            return wb_bad_request(str(exc))
        return json_response(body, headers=g.headers())

    return router


def _check_stock_body(body: dict[str, Any]) -> str | None:
    nm_ids, chrt_ids = body.get("nmIds") or [], body.get("chrtIds") or []
    if not isinstance(nm_ids, list) or not isinstance(chrt_ids, list):
        return "nmIds and chrtIds must be arrays"
    if len(nm_ids) > 1000:
        return "nmIds: at most 1000"
    limit, offset = body.get("limit", 250_000), body.get("offset", 0)
    if not isinstance(limit, int) or not 1 <= limit <= 250_000:
        return "limit must be 1..250000"
    if not isinstance(offset, int) or offset < 0:
        return "offset must be >= 0"
    return None


def _stock_items(world: World, shop: WbShop, body: dict[str, Any]) -> list[dict[str, Any]]:
    nm_ids = set(body.get("nmIds") or [])
    chrt_ids = set(body.get("chrtIds") or [])
    by_id = {w[0]: w for w in WB_WAREHOUSES}
    items = []
    for (nm, chrt, wh), qty in sorted(world.wb_stock(shop.spec.name).items()):
        if (nm_ids and nm not in nm_ids) or (chrt_ids and chrt not in chrt_ids):
            continue
        h = h64(world.seed, 0x6100, chrt, wh)
        items.append(
            {
                "nmId": nm,
                "chrtId": chrt,
                "warehouseId": wh,
                "warehouseName": by_id[wh][1],
                "regionName": by_id[wh][2],
                "quantity": qty,
                "inWayToClient": h % 3,
                "inWayFromClient": (h >> 8) % 2,
            }
        )
    return items


# -- feedbacks ------------------------------------------------------------------------
FEEDBACK_MAX_TAKE = 5000
FEEDBACK_MAX_SKIP = 199_990  # /api/v1/feedbacks only: the archive's spec sets no bound on skip


def feedbacks_router() -> APIRouter:
    router = APIRouter(prefix="/wb-feedbacks")

    @router.get("/api/v1/feedbacks")
    def feedbacks(request: Request) -> Response:
        return _feedbacks(request, archive=False)

    @router.get("/api/v1/feedbacks/archive")
    def archive(request: Request) -> Response:
        return _feedbacks(request, archive=True)

    return router


def _feedbacks(request: Request, *, archive: bool) -> Response:
    world = _world(request)
    # One category bucket for every feedbacks method (3/s, burst 6), the archive included.
    g = wb_guard(world, request, "feedbacks", "feedbacks")
    if not isinstance(g, Guarded):
        return g
    params = _feedback_params(request, archive=archive)
    if isinstance(params, str):
        return _feedback_error(params)
    return json_response(_feedback_page(world, g.shop, params), headers=g.headers())


def _feedback_error(text: str) -> Response:
    return json_response({"data": None, "error": True, "errorText": text, "additionalErrors": [text]}, 400)


def _feedback_params(request: Request, *, archive: bool) -> dict[str, Any] | str:
    q = request.query_params
    answered = q.get("isAnswered")
    if not archive and answered not in ("true", "false"):
        return "isAnswered is required: true or false"
    try:
        take, skip = int(q["take"]), int(q["skip"])
        nm_id = int(q["nmId"]) if q.get("nmId") else None
        # The archive takes no date filters (its spec lists nmId, take, skip, order only).
        date_from = int(q["dateFrom"]) if q.get("dateFrom") and not archive else None
        date_to = int(q["dateTo"]) if q.get("dateTo") and not archive else None
    except (KeyError, ValueError):
        return "take and skip are required integers; nmId, dateFrom, dateTo are integers"
    if not 1 <= take <= FEEDBACK_MAX_TAKE:
        return f"take must be 1..{FEEDBACK_MAX_TAKE}"
    if skip < 0 or (not archive and skip > FEEDBACK_MAX_SKIP):
        return "skip must be >= 0" if archive else f"skip must be 0..{FEEDBACK_MAX_SKIP}"
    order = q.get("order", "dateDesc")
    if order not in ("dateAsc", "dateDesc"):
        return "order must be dateAsc or dateDesc"
    place = ARCHIVE if archive else ANSWERED if answered == "true" else UNANSWERED
    return {
        "place": place,
        "take": take,
        "skip": skip,
        "nm_id": nm_id,
        "from": date_from,
        "to": date_to,
        "order": order,
    }


def _feedback_page(world: World, shop: WbShop, p: dict[str, Any]) -> dict[str, Any]:
    model, now = shop.reviews, world.now()
    places = {j: model.place(j, now) for j in range(model.visible_count(now))}
    picked = [
        j
        for j, place in places.items()
        if place == p["place"]
        and (p["nm_id"] is None or model.product(j).nm_id == p["nm_id"])
        and (p["from"] is None or model.appear(j) >= p["from"])
        and (p["to"] is None or model.appear(j) <= p["to"])
    ]
    if p["order"] == "dateDesc":
        picked.reverse()
    page = [model.feedback(j, now) for j in picked[p["skip"] : p["skip"] + p["take"]]]
    if p["place"] == ARCHIVE:
        data: dict[str, Any] = {"feedbacks": page}
    else:
        counts = Counter(places.values())
        # countArchive is documented as "processed" reviews: the answered list.
        data = {"countUnanswered": counts[UNANSWERED], "countArchive": counts[ANSWERED], "feedbacks": page}
    return {"data": data, "error": False, "errorText": "", "additionalErrors": None}


# -- content: cards list ------------------------------------------------------------------
def content_router() -> APIRouter:
    router = APIRouter(prefix="/wb-content")

    @router.post("/content/v2/get/cards/list")
    async def cards(request: Request) -> Response:
        world = _world(request)
        g = wb_guard(world, request, "content", "content")
        if not isinstance(g, Guarded):
            return g
        body = await _json_body(request)
        settings = body.get("settings") if isinstance(body, dict) else None
        cursor = (settings or {}).get("cursor") or {}
        limit = cursor.get("limit", 100)
        if not isinstance(settings, dict) or not isinstance(limit, int) or not 1 <= limit <= 100:
            return wb_bad_request("settings.cursor.limit must be 1..100")
        return json_response(_cards_page(world, g.shop, cursor, limit), headers=g.headers())

    return router


def _card(world: World, shop: WbShop, p_ix: int) -> dict[str, Any]:
    p = shop.products[p_ix]
    updated = utc_z(world.history_start + 3600 * (p_ix + 1))
    return {
        "nmID": p.nm_id,
        "imtID": p.imt_id,
        "nmUUID": p.nm_uuid,
        "subjectID": p.subject_id,
        "subjectName": p.subject,
        "vendorCode": p.vendor_code,
        "brand": p.brand,
        "title": p.title,
        "needKiz": False,
        "photos": p.photos(),
        "dimensions": {"length": 30, "width": 20, "height": 10, "weightBrutto": 0.5, "isValid": True},
        "characteristics": [{"id": 14177449, "name": "Цвет", "value": ["синий"]}],
        "sizes": [
            {"chrtID": s.chrt_id, "techSize": s.tech_size, "wbSize": s.tech_size, "skus": [s.barcode]} for s in p.sizes
        ],
        "tags": [],
        "createdAt": utc_z(world.history_start),
        "updatedAt": updated,
    }


def _cards_page(world: World, shop: WbShop, cursor: dict[str, Any], limit: int) -> dict[str, Any]:
    # Newest update first (WB's default sort), then nmID descending.
    cards = sorted(
        (_card(world, shop, i) for i in range(len(shop.products))),
        key=lambda c: (c["updatedAt"], c["nmID"]),
        reverse=True,
    )
    if cursor.get("updatedAt") and cursor.get("nmID"):
        mark = (cursor["updatedAt"], int(cursor["nmID"]))
        cards = [c for c in cards if (c["updatedAt"], c["nmID"]) < mark]
    page = cards[:limit]
    out_cursor: dict[str, Any] = {"total": len(page)}
    if page:
        out_cursor.update(updatedAt=page[-1]["updatedAt"], nmID=page[-1]["nmID"])
    return {"cards": page, "cursor": out_cursor}


# -- marketplace (FBS) --------------------------------------------------------------------
def marketplace_router() -> APIRouter:
    router = APIRouter(prefix="/wb-marketplace")

    @router.get("/api/v3/orders/new")
    def new_orders(request: Request) -> Response:
        world = _world(request)
        g = wb_guard(world, request, "marketplace", "marketplace")
        if not isinstance(g, Guarded):
            return g
        m, now = g.shop.orders, world.now()
        picked = [
            i
            for i in m.orders.indices_appearing(now - NEW_WINDOW, now)
            if m.fbs(i) and _fbs_status(m, i, now)[0] == "new"
        ]
        return json_response({"orders": [_fbs_order(m, i, new=True) for i in picked]}, headers=g.headers())

    @router.get("/api/v3/orders")
    def list_orders(request: Request) -> Response:
        world = _world(request)
        g = wb_guard(world, request, "marketplace", "marketplace")
        if not isinstance(g, Guarded):
            return g
        parsed = _fbs_list_params(request, world.now())
        if isinstance(parsed, str):
            charge_4xx(world, g, "marketplace")
            return wb_bad_request(parsed)
        limit, next_id, lo, hi = parsed
        m = g.shop.orders
        base = _fbs_base(m)
        start = max(m.orders.first_index_at(lo), next_id - base + 1 if next_id else 0)
        picked: list[int] = []
        i = start
        while len(picked) < limit and m.orders.in_range(i) and m.appear(i) <= hi:
            if m.fbs(i):
                picked.append(i)
            i += 1
        body = {"next": base + picked[-1] if picked else next_id, "orders": [_fbs_order(m, i) for i in picked]}
        return json_response(body, headers=g.headers())

    @router.post("/api/v3/orders/status")
    async def statuses(request: Request) -> Response:
        world = _world(request)
        g = wb_guard(world, request, "marketplace", "marketplace")
        if not isinstance(g, Guarded):
            return g
        body = await _json_body(request)
        ids = body.get("orders") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not 1 <= len(ids) <= 1000 or not all(isinstance(x, int) for x in ids):
            charge_4xx(world, g, "marketplace")
            return wb_bad_request("orders: 1..1000 integer ids")
        m, now = g.shop.orders, world.now()
        out = []
        for oid in ids:
            i = oid - _fbs_base(m)
            if m.orders.in_range(i) and m.fbs(i) and m.appear(i) <= now:
                supplier, wb = _fbs_status(m, i, now)
                out.append(
                    {
                        "id": oid,
                        "isCancellable": supplier in ("new", "confirm"),
                        "supplierStatus": supplier,
                        "wbStatus": wb,
                    }
                )
        return json_response({"orders": out}, headers=g.headers())

    return router


NEW_WINDOW = 2 * 3600


def _fbs_base(m: WbOrderModel) -> int:
    return m.shop.index * 10**9


def _fbs_status(m: WbOrderModel, i: int, now: float) -> tuple[str, str]:
    age = now - m.appear(i)
    if m.cancelled(i) and age >= CANCEL_DELAY:
        return ("cancel", "canceled_by_client")
    if age < NEW_WINDOW:
        return ("new", "waiting")
    if age < 86400:
        return ("confirm", "sorted")
    return ("complete", "sold")


def _fbs_list_params(request: Request, now: float) -> tuple[int, int, float, float] | str:
    q = request.query_params
    try:
        limit, next_id = int(q["limit"]), int(q["next"])
        lo = float(q["dateFrom"]) if q.get("dateFrom") else now - 30 * 86400
        hi = float(q["dateTo"]) if q.get("dateTo") else now
    except (KeyError, ValueError):
        return "limit and next are required integers"
    if not 1 <= limit <= 1000 or next_id < 0:
        return "limit must be 1..1000, next >= 0"
    if hi < lo or hi - lo > 30 * 86400:
        return "dateFrom..dateTo must be at most 30 days"
    return limit, next_id, lo, min(hi, now)


def _fbs_order(m: WbOrderModel, i: int, new: bool = False) -> dict[str, Any]:
    product, size_ix = m.product(i)
    size = product.sizes[size_ix]
    price = product.price * 100  # FBS prices are in kopecks
    order: dict[str, Any] = {
        "address": None,
        "scanPrice": None,
        "deliveryType": "fbs",
        "orderUid": f"{m.g_number(i)}_fbs",
        "article": product.vendor_code,
        "colorCode": "",
        "rid": m.srid(i),
        "createdAt": utc_z(m.appear(i)),
        "offices": ["Москва"],
        "skus": [size.barcode],
        "id": _fbs_base(m) + i,
        "warehouseId": SELLER_WAREHOUSE[0],
        "officeId": 15,
        "nmId": product.nm_id,
        "chrtId": size.chrt_id,
        "price": price,
        "convertedPrice": price,
        "currencyCode": 643,
        "convertedCurrencyCode": 643,
        "cargoType": 1,
        "crossBorderType": 0,
        "comment": "",
        "isZeroOrder": False,
        "options": {"isB2B": False},
    }
    if new:
        order.update(
            ddate="",
            salePrice=price,
            requiredMeta=[],
            optionalMeta=[],
            finalPrice=price,
            convertedFinalPrice=price,
            isPickupPointShipmentAllowed=False,
        )
    return order


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"null")
    except ValueError:
        return None
