"""From the changes of one write batch to notification drafts: one function per stream.

Every function is pure: it sees the batch's `RowChange`s (old columns -> new row, see
storage/changes.py) and returns `Draft`s; `storage.outbox.add` stores them in the same
transaction as the writes. A shop before its first sync (no notify-from point) gets no drafts.

A transition notifies when it happened after the shop's notify-from point, whenever the order
was created and whichever run (sync or backfill) writes it first: its own time decides (a WB new
order or cancellation: its `date` / `cancelDate`, with no late window, as the real-time order feed
shows it then; WB sales and reviews: their date, with a late-arrival window; Allegro: boughtAt,
the payment's finishedAt, the cancelling change's updatedAt, with a window for the marketplace's
clock), and the dedupe key makes a second writer a no-op.

One draft per shop event, never per person: people's settings (kind toggles, thresholds,
horizons, the Allegro paid/unpaid choice) are applied at delivery (`delivery.wants`), so the
payload carries what that decision needs (stars, old/new totals, stage, horizon).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sellerpulse.notify.drafts import Draft, Kind, ProductInfo, ShopContext, dedupe_key, jsonable
from storage.changes import RowChange

# WB statistics rows can arrive 1-3 days late; a first-seen row older than this (and older
# than the notify-from point) is history being filled in, not news.
LATE_WINDOW = timedelta(days=3, hours=6)
# Allegro's times are its clock, notify-from is ours: a transition stamped this little before the
# point still notifies (once the shop's history is complete: before, it may be unread history).
ALLEGRO_CLOCK_SKEW = timedelta(minutes=5)
HORIZONS = (1, 3, 7, 10, 14)  # the stock-runout horizons people can choose
RUNOUT_DAYS = 30  # sales window for the runout rate
ALLEGRO_PAID = "READY_FOR_PROCESSING"
PAID_STATUSES = frozenset({"paid", "processing", "sent", "delivered", "returned"})

Catalog = Mapping[str, ProductInfo]


class TotalLike(Protocol):
    """A product total before and after a stock merge (storage.stock.TotalChange)."""

    sku: str
    old_total: int | None
    new_total: int


# -- helpers --------------------------------------------------------------------------------


def _draft(shop: ShopContext, kind: Kind, entity: str, transition: str, payload: dict[str, Any]) -> Draft:
    return Draft(kind.value, dedupe_key(shop.id, kind.value, entity, transition), entity, jsonable(payload))


def _fresh(shop: ShopContext, at: datetime | None, now: datetime) -> bool:
    """A first-seen row is news if it happened after notify-from or within the late window."""
    if at is None or shop.notify_from is None:
        return True
    return at > shop.notify_from or at >= now - LATE_WINDOW


_UNKNOWN = ProductInfo()


def _product(catalog: Catalog | None, sku: Any) -> ProductInfo:
    if not catalog or sku is None:
        return _UNKNOWN
    return catalog.get(str(sku)) or _UNKNOWN


def _raw(row: Mapping[str, Any]) -> Mapping[str, Any]:
    raw = row.get("raw")
    return raw if isinstance(raw, Mapping) else {}


def _wb_place(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "warehouse": raw.get("warehouseName"),
        "region": raw.get("regionName") or raw.get("oblastOkrugName"),
    }


def _items(row: Mapping[str, Any], catalog: Catalog | None) -> list[dict[str, Any]]:
    out = []
    for line in row.get("lines") or ():
        info = _product(catalog, line.get("sku"))
        out.append(
            {
                "sku": line.get("sku"),
                "name": info.name or line.get("name"),
                "size": line.get("size"),
                "quantity": line.get("quantity"),
                "price": line.get("price"),
                "currency": line.get("currency"),
                "image_url": info.image_url,
            }
        )
    return out


def _order_payload(change: RowChange, catalog: Catalog | None) -> dict[str, Any]:
    new = change.new
    items = _items(new, catalog)
    return {
        "order_id": change.key,
        "basket_id": new.get("basket_id"),
        "amount": new.get("total_amount"),
        "currency": new.get("currency"),
        "bought_at": new.get("bought_at"),
        "items": items,
        "image_url": next((i["image_url"] for i in items if i.get("image_url")), None),
        **_wb_place(_raw(new)),
    }


# -- orders ---------------------------------------------------------------------------------


def for_orders(
    shop: ShopContext, changes: Sequence[RowChange], *, now: datetime, catalog: Catalog | None = None
) -> list[Draft]:
    """new_order and cancellation drafts from an orders upsert (WB rows or Allegro forms)."""
    if shop.silent:
        return []
    rule = _wb_order if shop.marketplace == "wb" else _allegro_order
    return [draft for change in changes for draft in rule(shop, change, now, catalog)]


def after_point(shop: ShopContext, at: datetime | None) -> bool:
    """A WB order (or its cancellation) is news if it happened after the notify-from point, with
    no late window. Statistics list some orders 1-3 days after their `date`, but the real-time
    order feed shows each one when it is placed (and a shop's first feed read is history): an
    order placed before the point and listed after it was history at the first sync, not news."""
    return at is None or shop.notify_from is None or at > shop.notify_from


def _wb_order(shop: ShopContext, change: RowChange, now: datetime, catalog: Catalog | None) -> list[Draft]:
    new, old = change.new, change.old
    cancelled = bool(new.get("is_cancelled"))
    if old is None:
        # First seen: one new_order per srid; one that arrives already cancelled is also a
        # cancellation (judged by its own time: an order placed before the point can be
        # cancelled after it).
        placed = after_point(shop, new.get("bought_at"))
        cancelled_after = cancelled and after_point(shop, new.get("cancelled_at") or new.get("bought_at"))
        if not placed and not cancelled_after:
            return []
        payload = _order_payload(change, catalog)
        out = [_draft(shop, Kind.new_order, change.key, "seen", payload)] if placed else []
        if cancelled_after:
            out.append(_cancellation(shop, change, payload, was_paid=True))
        return out
    if cancelled and not old.get("is_cancelled"):
        return [_cancellation(shop, change, _order_payload(change, catalog), was_paid=True)]
    return []


def _allegro_paid(row: Mapping[str, Any] | None) -> bool:
    if row is None:
        return False
    return row.get("marketplace_status") == ALLEGRO_PAID or row.get("status") in PAID_STATUSES


def _allegro_cancelled(row: Mapping[str, Any] | None) -> bool:
    return row is not None and (bool(row.get("is_cancelled")) or row.get("status") == "cancelled")


def _after(shop: ShopContext, at: datetime | None) -> bool:
    """An Allegro transition at `at` (the marketplace's clock) happened after notify-from."""
    if at is None or shop.notify_from is None:
        return True
    point = shop.notify_from - ALLEGRO_CLOCK_SKEW if shop.history_complete else shop.notify_from
    return at > point


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _paid_at(row: Mapping[str, Any]) -> datetime | None:
    """When the order was paid: the payment's finishedAt, else its last change."""
    payment = _raw(row).get("payment")
    paid = _time(payment.get("finishedAt")) if isinstance(payment, Mapping) else None
    return paid or _time(row.get("source_updated_at"))


def _allegro_order(shop: ShopContext, change: RowChange, now: datetime, catalog: Catalog | None) -> list[Draft]:
    """Two possible new_order stages: `bought` (first seen unpaid) and `paid` (first seen paid, or
    paid later). Delivery gives a person exactly one of them (see delivery.wants). Each stage, and
    a cancellation, notifies when it happened after notify-from, however old the order is.

    Merges (storage.allegro_merges): a form merged into a newer one says nothing more (the new
    form speaks for its purchases: no cancellation for an id that just went away). A merged form's
    purchases were each announced as `bought` under their own forms: it has no `bought` stage of
    its own, and its `paid` names their `bought` keys, so a person who had those gets no second
    message; if one of them was already paid, the purchases were announced to everyone."""
    new, old = change.new, change.old
    if new.get("merged_into"):
        return []
    parts = new.get("merged_from") or ()
    cancelled = _allegro_cancelled(new)
    paid_now = _allegro_paid(new) and not cancelled
    out: list[Draft] = []
    payload = _order_payload(change, catalog)
    if parts:
        payload["merged_from"] = [p["id"] for p in parts]
    announced = any(p.get("paid") for p in parts)
    bought_key = dedupe_key(shop.id, Kind.new_order.value, change.key, "bought")
    if old is None and not paid_now and not parts and _after(shop, new.get("bought_at")):
        out.append(_draft(shop, Kind.new_order, change.key, "bought", {**payload, "stage": "bought"}))
    elif paid_now and not _allegro_paid(old) and not announced and _after(shop, _paid_at(new)):
        stage: dict[str, Any] = {**payload, "stage": "paid", "bought_key": bought_key}
        if parts:
            stage["bought_keys"] = [dedupe_key(shop.id, Kind.new_order.value, p["id"], "bought") for p in parts]
        out.append(_draft(shop, Kind.new_order, change.key, "paid", stage))
    cancelled_at = _time(new.get("cancelled_at")) or _time(new.get("source_updated_at"))
    if cancelled and not _allegro_cancelled(old) and _after(shop, cancelled_at):
        was_paid = _allegro_paid(old) or bool((_raw(new).get("payment") or {}).get("finishedAt"))
        out.append(_cancellation(shop, change, payload, was_paid=was_paid))
    return out


def _cancellation(shop: ShopContext, change: RowChange, payload: dict[str, Any], *, was_paid: bool) -> Draft:
    body = {**payload, "cancelled_at": change.new.get("cancelled_at"), "was_paid": was_paid}
    return _draft(shop, Kind.cancellation, change.key, "cancelled", body)


# -- sales, returns, reviews ----------------------------------------------------------------


def for_sales(
    shop: ShopContext, changes: Sequence[RowChange], *, now: datetime, catalog: Catalog | None = None
) -> list[Draft]:
    """WB sales: a new saleID S... is a buyout, R... a return (the kind comes from the saleID)."""
    if shop.silent:
        return []
    out = []
    for change in changes:
        new = change.new
        kind = {"buyout": Kind.buyout, "return": Kind.return_}.get(new.get("kind") or "")
        if change.old is not None or kind is None or not _fresh(shop, new.get("sold_at"), now):
            continue
        raw = _raw(new)
        info = _product(catalog, new.get("sku"))
        payload = {
            "sale_id": change.key,
            "order_id": new.get("srid"),
            "sku": new.get("sku"),
            "name": info.name or raw.get("subject") or raw.get("supplierArticle"),
            "size": new.get("size"),
            "amount": new.get("amount"),
            "for_pay": new.get("for_pay"),
            "currency": new.get("currency"),
            "sold_at": new.get("sold_at"),
            "image_url": info.image_url,
            **_wb_place(raw),
        }
        # Named by the unit (srid), as the order feed names the same buyout or return; a unit is
        # bought out, and returned, at most once.
        out.append(_draft(shop, kind, new.get("srid") or change.key, "sale", payload))
    return out


def for_customer_returns(
    shop: ShopContext, changes: Sequence[RowChange], *, now: datetime, catalog: Catalog | None = None
) -> list[Draft]:
    """Allegro customer returns: one return per return id, when first seen."""
    if shop.silent:
        return []
    out = []
    for change in changes:
        new = change.new
        if change.old is not None or not _fresh(shop, new.get("created_at_source"), now):
            continue
        items = [_return_item(item, catalog) for item in _raw(new).get("items") or () if isinstance(item, Mapping)]
        payload = {
            "return_id": change.key,
            "order_id": new.get("order_external_id"),
            "reference": _raw(new).get("referenceNumber"),
            "created_at": new.get("created_at_source"),
            "items": items,
            "image_url": next((i["image_url"] for i in items if i.get("image_url")), None),
        }
        out.append(_draft(shop, Kind.return_, change.key, "customer_return", payload))
    return out


def _return_item(item: Mapping[str, Any], catalog: Catalog | None) -> dict[str, Any]:
    # Only what the message shows: the raw return also holds the buyer's bank account.
    price = item.get("price") if isinstance(item.get("price"), Mapping) else {}
    info = _product(catalog, item.get("offerId"))
    reason = item.get("reason") if isinstance(item.get("reason"), Mapping) else {}
    return {
        "sku": item.get("offerId"),
        "name": info.name or item.get("name"),
        "quantity": item.get("quantity"),
        "price": price.get("amount"),
        "currency": price.get("currency"),
        "reason": reason.get("type"),
        "image_url": info.image_url,
    }


def for_reviews(
    shop: ShopContext, changes: Sequence[RowChange], *, now: datetime, catalog: Catalog | None = None
) -> list[Draft]:
    """One draft per review when first seen, whatever its stars (thresholds are per person, at
    delivery). A review answered later is a change of an existing row: never a second one."""
    if shop.silent:
        return []
    out = []
    for change in changes:
        new = change.new
        if change.old is not None or not _fresh(shop, new.get("created_at_source"), now):
            continue
        raw = _raw(new)
        details = raw.get("productDetails") if isinstance(raw.get("productDetails"), Mapping) else {}
        info = _product(catalog, new.get("sku"))
        payload = {
            "review_id": change.key,
            "sku": new.get("sku"),
            "name": info.name or new.get("product_name"),
            "size": details.get("size"),
            "stars": new.get("stars"),
            "text": new.get("text"),
            "pros": new.get("pros"),
            "cons": new.get("cons"),
            "author": new.get("author"),
            "created_at": new.get("created_at_source"),
            "image_url": info.image_url,
        }
        out.append(_draft(shop, Kind.negative_review, change.key, "new", payload))
    return out


# -- stock ----------------------------------------------------------------------------------


def for_stock(
    shop: ShopContext,
    totals: Iterable[TotalLike],
    *,
    thresholds: Collection[int],
    per_warehouse: Mapping[str, Sequence[Mapping[str, Any]]],
    at: datetime,
    catalog: Catalog | None = None,
) -> list[Draft]:
    """critical_stock: a product total (all warehouses) falling from above to at-or-below a threshold.

    `totals` are the products whose total changed in one merge (a move between warehouses
    leaves the total as it was, so it is never here). `thresholds` are the thresholds the
    shop's people have now: a draft is made when the fall crosses at least one of them, and
    each person's own threshold is applied at delivery from `old_total`/`new_total`. Re-arming
    needs no state: the next crossing must again start above the threshold.
    """
    if shop.silent or not thresholds:
        return []
    out = []
    minute = at.strftime("%Y%m%dT%H%M")
    for change in totals:
        if not crosses(change, thresholds):
            continue
        old, new = change.old_total, change.new_total
        info = _product(catalog, change.sku)
        payload = {
            "sku": change.sku,
            "name": info.name,
            "image_url": info.image_url,
            "old_total": old,
            "new_total": new,
            "warehouses": [dict(w) for w in per_warehouse.get(change.sku, ())],
        }
        out.append(_draft(shop, Kind.critical_stock, change.sku, f"{old}>{new}@{minute}", payload))
    return out


def crosses(change: TotalLike, thresholds: Collection[int]) -> bool:
    """The total fell from above some threshold to at or below it."""
    old, new = change.old_total, change.new_total
    return old is not None and any(old > t >= new for t in thresholds)


def runs_out(total: int, sold: int) -> bool:
    """Fewer days of stock left than the longest horizon anyone can choose."""
    days = days_of_stock(total, sold)
    return days is not None and days < max(HORIZONS)


def days_of_stock(total: int, sold: int, days: int = RUNOUT_DAYS) -> float | None:
    """Days the stock lasts at the recent sales rate; None when nothing sold (no rate)."""
    if sold <= 0:
        return None
    return max(total, 0) / (sold / days)


def for_runout(
    shop: ShopContext,
    *,
    totals: Mapping[str, int],
    sold_30d: Mapping[str, int],
    now: datetime,
    catalog: Catalog | None = None,
) -> list[Draft]:
    """stock_runout: days of stock left below each horizon, at most once per product, horizon and day.

    One draft per horizon crossed (up to five), so a person gets the one for the horizon they
    chose, once a day, however often the stock is synced and whatever horizon others chose.
    """
    if shop.silent:
        return []
    out = []
    day = now.date().isoformat()
    for sku, total in totals.items():
        days = days_of_stock(total, sold_30d.get(sku, 0))
        if days is None:
            continue
        info = _product(catalog, sku)
        for horizon in HORIZONS:
            if days < horizon:
                payload = {
                    "sku": sku,
                    "name": info.name,
                    "image_url": info.image_url,
                    "total": total,
                    "days_left": round(days, 1),
                    "sold_30d": sold_30d.get(sku, 0),
                    "horizon": horizon,
                }
                out.append(_draft(shop, Kind.stock_runout, sku, f"{day}:{horizon}d", payload))
    return out


# -- shop health ----------------------------------------------------------------------------


# Shop statuses that stop syncing until an owner acts: the owners hear of it once per move.
UNHEALTHY = frozenset({"needs_reauth", "broken"})


def for_shop_status(shop: ShopContext, *, status: str, changed_at: datetime, reason: str | None = None) -> list[Draft]:
    """shop_needs_reauth, once per move into needs_reauth (Allegro invalid_grant) or broken (a
    WB token refused), named by when the move happened. Not silenced by a first sync: an owner
    must hear that the connection is lost."""
    if status not in UNHEALTHY:
        return []
    payload = {"status": status, "reason": (reason or "")[:300] or None, "since": changed_at}
    return [_draft(shop, Kind.shop_needs_reauth, "shop", changed_at.isoformat(), payload)]


def for_sync_failing(
    shop: ShopContext,
    *,
    stream: str,
    failing_since: datetime | None,
    now: datetime,
    after: timedelta,
    error: str | None = None,
) -> list[Draft]:
    """sync_failing, once per streak of failures of a stream lasting longer than `after`."""
    if failing_since is None or now - failing_since < after:
        return []
    payload = {"stream": stream, "since": failing_since, "error": (error or "")[:300] or None}
    return [_draft(shop, Kind.sync_failing, stream, failing_since.isoformat(), payload)]
