"""Drafts from the WB order feed: one per real transition of a unit (`srid`), under the same
dedupe keys the statistics rules use, so whichever source sees a transition first notifies and
the other one's draft is dropped by the outbox's unique index:

    created          -> new_order     {shop}:new_order:{srid}:seen       (statistics: a new orders row)
    cancel           -> cancellation  {shop}:cancellation:{srid}:cancelled (statistics: isCancel)
    buyout           -> buyout        {shop}:buyout:{srid}:sale          (statistics: an S... sale)
    return(Defective)-> return        {shop}:return:{srid}:sale          (statistics: an R... sale)

A unit's life only moves forward (created, then cancel or buyout, then return): a feed answer
that shows an earlier stage than the one stored is not a transition. A unit seen for the first
time notifies its order (when placed after the notify-from point, as statistics judge it) and
its current stage (when that began after the point). Money and the basket come from statistics
when they already hold the unit (`row["statistics"]`, attached by the stream): they are the
record; the feed's `sellerPrice` is only a stand-in until then.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sellerpulse.notify.drafts import Draft, Kind, ShopContext
from sellerpulse.notify.rules import Catalog, _draft, _product, after_point
from storage.changes import RowChange

STAGE = {"created": 0, "cancel": 1, "buyout": 1, "return": 2, "returnDefective": 2}


def for_wb_feed(
    shop: ShopContext, changes: Sequence[RowChange], *, now: datetime, catalog: Catalog | None = None
) -> list[Draft]:
    if shop.silent:
        return []
    return [draft for change in changes for draft in _unit(shop, change, now, catalog)]


def _after(shop: ShopContext, at: datetime | None) -> bool:
    return at is None or shop.notify_from is None or at > shop.notify_from


def _unit(shop: ShopContext, change: RowChange, now: datetime, catalog: Catalog | None) -> list[Draft]:
    new, old = change.new, change.old
    status = new.get("status")
    if status not in STAGE:
        return []
    payload = _payload(change, catalog)
    out: list[Draft] = []
    if old is None:
        if after_point(shop, new.get("ordered_at") or new.get("status_at")):
            out.append(_draft(shop, Kind.new_order, change.key, "seen", payload))
        if status != "created" and _after(shop, new.get("status_at")):
            out.append(_stage(shop, change, status, payload))
        return out
    if STAGE[status] > STAGE.get(old.get("status") or "", -1):
        out.append(_stage(shop, change, status, payload))
    return out


def _stage(shop: ShopContext, change: RowChange, status: str, payload: dict[str, Any]) -> Draft:
    at = change.new.get("status_at")
    if status == "cancel":
        body = {**payload, "cancelled_at": at, "cancel_type": change.new.get("cancel_type"), "was_paid": True}
        return _draft(shop, Kind.cancellation, change.key, "cancelled", body)
    kind = Kind.buyout if status == "buyout" else Kind.return_
    body = {**payload, "sold_at": at, "defective": status == "returnDefective"}
    return _draft(shop, kind, change.key, "sale", body)


def _basket_key(new: Mapping[str, Any], raw: Mapping[str, Any]) -> str | None:
    """The feed has no gNumber; the units of one basket share their creation time to the second
    and their destination, which tells them apart from other buyers' well enough to show them as
    one message (two buyers at the same second and place would share one: shown, not lost)."""
    ordered = new.get("ordered_at")
    if not isinstance(ordered, datetime):
        return None
    return f"feed:{ordered.isoformat()}:{raw.get('destinationCity')}:{raw.get('destinationDistrict')}"


def _payload(change: RowChange, catalog: Catalog | None) -> dict[str, Any]:
    """What the order and sale messages show (sellerpulse/notify/render.py), statistics first."""
    new = change.new
    stats: Mapping[str, Any] = new.get("statistics") or {}
    raw: Mapping[str, Any] = new.get("raw") if isinstance(new.get("raw"), Mapping) else {}
    info = _product(catalog, new.get("sku"))
    amount = stats.get("total_amount") if stats.get("total_amount") else new.get("price")
    item = {
        "sku": new.get("sku"),
        "name": info.name or stats.get("name"),
        "size": stats.get("size"),
        "quantity": 1,
        "price": amount,
        "currency": new.get("currency"),
        "image_url": info.image_url,
    }
    return {
        "order_id": change.key,
        "basket_id": stats.get("basket_id"),
        "basket_key": None if stats.get("basket_id") else _basket_key(new, raw),
        "amount": amount,
        "currency": new.get("currency"),
        "bought_at": stats.get("bought_at") or new.get("ordered_at"),
        "items": [item],
        "sku": new.get("sku"),
        "name": item["name"],
        "image_url": info.image_url,
        "warehouse": stats.get("warehouse") or raw.get("warehouseName"),
        "region": stats.get("region") or raw.get("destinationDistrict"),
        "source": "feed",
    }
