"""Connector payloads -> row dicts for storage.upserts (pure; no Prefect, no database).

The raw dict the marketplace sent is stored as is (`raw`); the typed columns beside it are
what queries, diffs and notifications use.
"""

from __future__ import annotations

from typing import Any

from connectors.allegro import models as am
from connectors.wildberries import models as wm

WB_CURRENCY = "RUB"

# Allegro checkout-form status -> our normalised status, before fulfilment takes over.
_ALLEGRO_STATUS = {"BOUGHT": "new", "FILLED_IN": "new", "READY_FOR_PROCESSING": "paid", "CANCELLED": "cancelled"}
_ALLEGRO_FULFILLMENT = {
    "NEW": "paid",
    "PROCESSING": "processing",
    "READY_FOR_SHIPMENT": "processing",
    "READY_FOR_PICKUP": "sent",
    "SENT": "sent",
    "PICKED_UP": "delivered",
    "CANCELLED": "cancelled",
    "SUSPENDED": "processing",
    "RETURNED": "returned",
}


def _wb_photo(card: wm.WbCard) -> str | None:
    for photo in card.photos:
        for size in ("big", "c516x688", "c246x328", "square", "tm"):
            if photo.get(size):
                return str(photo[size])
    return None


def wb_order(row: wm.WbOrder) -> dict[str, Any]:
    sku = str(row.nm_id)
    return {
        "external_id": row.srid,
        "basket_id": row.g_number,
        "status": "cancelled" if row.is_cancel else "new",
        "marketplace_status": None,
        "fulfillment_status": None,
        "is_cancelled": row.is_cancel,
        "total_amount": row.price_with_disc,
        "currency": WB_CURRENCY,
        "bought_at": row.date,
        "source_updated_at": row.last_change_date,
        "cancelled_at": row.cancel_date if row.is_cancel else None,
        "revision": None,
        "raw": row.raw,
        "lines": [
            {
                "line_key": "1",
                "sku": sku,
                "name": row.raw.get("subject") or row.supplier_article,
                "size": row.tech_size,
                "quantity": 1,
                "price": row.price_with_disc,
                "currency": WB_CURRENCY,
            }
        ],
    }


def wb_sale(row: wm.WbSale) -> dict[str, Any]:
    kind = "return" if row.sale_id.startswith("R") else "buyout" if row.sale_id.startswith("S") else "other"
    return {
        "sale_id": row.sale_id,
        "srid": row.srid,
        "kind": kind,
        "sku": str(row.nm_id),
        "size": row.raw.get("techSize"),
        "amount": row.price_with_disc,
        "for_pay": row.for_pay,
        "currency": WB_CURRENCY,
        "sold_at": row.date,
        "source_updated_at": row.last_change_date,
        "raw": row.raw,
    }


def wb_feed_order(row: wm.WbFeedOrder) -> dict[str, Any] | None:
    """None for a row we cannot place in a unit's life (no known status, or no time for it):
    the feed is the fast signal, statistics will bring that unit anyway."""
    at = row.status_time
    if row.status not in wm.FEED_STATUSES or at is None:
        return None
    return {
        "srid": row.srid,
        "status": row.status,
        "cancel_type": row.cancel_type if row.status == "cancel" else None,
        "status_at": at,
        "ordered_at": row.created_at,
        "sku": None if row.nm_id is None else str(row.nm_id),
        "price": row.seller_price,
        "currency": WB_CURRENCY,
        "is_fbs": row.is_mp,
        "source_updated_at": at,
        "raw": row.raw,
    }


def wb_review(row: wm.WbFeedback) -> dict[str, Any]:
    details = row.product_details
    answer = row.answer or {}
    return {
        "external_id": row.id,
        "sku": str(details.nm_id) if details and details.nm_id is not None else None,
        "product_name": details.product_name if details else None,
        "stars": max(0, min(5, row.product_valuation)),
        "text": row.text,
        "pros": row.pros,
        "cons": row.cons,
        "author": row.user_name,
        "is_answered": row.is_answered,
        "answer_text": answer.get("text") if isinstance(answer, dict) else None,
        "created_at_source": row.created_date,
        "raw": row.raw,
    }


def wb_product(card: wm.WbCard) -> dict[str, Any]:
    return {
        "sku": str(card.nm_id),
        "name": card.title or card.subject_name,
        "vendor_code": card.vendor_code,
        "brand": card.brand,
        "image_url": _wb_photo(card),
        "price": None,
        "currency": WB_CURRENCY,
        "status": None,
        "raw": card.raw,
    }


def wb_stock(row: wm.WbStockRow) -> dict[str, Any]:
    return {
        "sku": str(row.nm_id),
        "size": "" if row.chrt_id is None else str(row.chrt_id),
        "warehouse": row.warehouse_name or ("" if row.warehouse_id is None else str(row.warehouse_id)),
        "quantity": row.quantity,
        "in_way_to_client": row.in_way_to_client,
        "in_way_from_client": row.in_way_from_client,
    }


def allegro_status(form: am.CheckoutForm) -> str:
    status = _ALLEGRO_STATUS.get(form.status or "", "new")
    if status == "paid" and form.fulfillment and form.fulfillment.status:
        return _ALLEGRO_FULFILLMENT.get(form.fulfillment.status, status)
    return status


def allegro_order(form: am.CheckoutForm) -> dict[str, Any]:
    status = allegro_status(form)
    money = form.summary.total_to_pay if form.summary else None
    cancelled = status == "cancelled"
    return {
        "external_id": form.id,
        "basket_id": None,
        "status": status,
        "marketplace_status": form.status,
        "fulfillment_status": form.fulfillment.status if form.fulfillment else None,
        "is_cancelled": cancelled,
        "total_amount": money.amount if money else None,
        "currency": money.currency if money else None,
        "bought_at": form.bought_at,
        "source_updated_at": form.updated_at,
        "cancelled_at": form.updated_at if cancelled else None,
        "revision": form.revision,
        "raw": form.raw,
        "lines": [_allegro_line(i, item) for i, item in enumerate(form.line_items)],
    }


def _allegro_line(index: int, item: am.LineItem) -> dict[str, Any]:
    price = item.price
    return {
        "line_key": item.id or str(index),
        "sku": item.offer.id if item.offer else None,
        "name": item.offer.name if item.offer else None,
        "size": None,
        "quantity": item.quantity,
        "price": price.amount if price else None,
        "currency": price.currency if price else None,
    }


def allegro_event(event: am.OrderEvent) -> dict[str, Any]:
    return {
        "event_id": event.id,
        "type": event.type,
        "occurred_at": event.occurred_at,
        "checkout_form_id": event.checkout_form_id,
        "revision": event.order.checkout_form.revision,
        "raw": event.raw,
    }


def allegro_offer(offer: am.Offer) -> dict[str, Any]:
    price = offer.selling_mode.price if offer.selling_mode else None
    images = offer.raw.get("primaryImage") or {}
    return {
        "sku": offer.id,
        "name": offer.name,
        "vendor_code": offer.external.id if offer.external else None,
        "brand": None,
        "image_url": images.get("url") if isinstance(images, dict) else None,
        "price": price.amount if price else None,
        "currency": price.currency if price else None,
        "status": offer.publication.status if offer.publication else None,
        "raw": offer.raw,
    }


def allegro_offer_stock(offer: am.Offer) -> dict[str, Any]:
    return {"sku": offer.id, "size": "", "warehouse": "", "quantity": offer.available or 0}


def allegro_customer_return(ret: am.CustomerReturn) -> dict[str, Any]:
    return {
        "external_id": ret.id,
        "order_external_id": ret.order_id,
        "created_at_source": ret.created_at,
        "raw": ret.raw,
    }
