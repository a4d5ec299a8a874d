"""Row dicts shaped like tasks.normalize's output, for the rule tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sellerpulse.notify.drafts import ShopContext
from storage.changes import RowChange
from storage.upserts import ORDERS

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
NOTIFY_FROM = NOW - timedelta(days=10)

WB = ShopContext(id=7, marketplace="wb", name="Мой <магазин>", notify_from=NOTIFY_FROM, currency="RUB", language="ru")
ALLEGRO = ShopContext(id=8, marketplace="allegro", name="Sklep", notify_from=NOTIFY_FROM, currency="PLN", language="pl")

# The columns the sync's order merge reads back as a change's old side.
ORDER_TRACKED = ORDERS.tracked


def wb_order(
    srid: str, *, basket: str = "g1", cancelled: bool = False, bought_at: datetime | None = None
) -> dict[str, Any]:
    bought = bought_at or NOW - timedelta(hours=1)
    return {
        "external_id": srid,
        "basket_id": basket,
        "status": "cancelled" if cancelled else "new",
        "marketplace_status": None,
        "fulfillment_status": None,
        "is_cancelled": cancelled,
        "total_amount": Decimal("1299.00"),
        "currency": "RUB",
        "bought_at": bought,
        "source_updated_at": bought + timedelta(minutes=5),
        "cancelled_at": bought + timedelta(minutes=30) if cancelled else None,
        "revision": None,
        "raw": {"warehouseName": "Коледино", "regionName": "Московская", "subject": "Платье"},
        "lines": [
            {
                "line_key": "1",
                "sku": "1001",
                "name": "Платье",
                "size": "M",
                "quantity": 1,
                "price": Decimal("1299.00"),
                "currency": "RUB",
            }
        ],
    }


def allegro_order(
    form_id: str,
    status: str = "BOUGHT",
    *,
    fulfillment: str | None = None,
    bought_at: datetime | None = None,
    paid: bool = False,
) -> dict[str, Any]:
    normalised = {"BOUGHT": "new", "FILLED_IN": "new", "READY_FOR_PROCESSING": "paid", "CANCELLED": "cancelled"}[status]
    if fulfillment == "CANCELLED":
        normalised = "cancelled"
    bought = bought_at or NOW - timedelta(hours=1)
    return {
        "external_id": form_id,
        "basket_id": None,
        "status": normalised,
        "marketplace_status": status,
        "fulfillment_status": fulfillment,
        "is_cancelled": normalised == "cancelled",
        "total_amount": Decimal("49.99"),
        "currency": "PLN",
        "bought_at": bought,
        "source_updated_at": NOW,
        "cancelled_at": NOW if normalised == "cancelled" else None,
        "revision": "r1",
        "raw": {"payment": {"finishedAt": "2026-11-23T11:00:00Z"}} if paid else {},
        "lines": [
            {
                "line_key": "a",
                "sku": "offer-1",
                "name": "Kubek",
                "size": None,
                "quantity": 2,
                "price": Decimal("24.99"),
                "currency": "PLN",
            }
        ],
    }


def sale(sale_id: str, *, srid: str = "s1", sold_at: datetime | None = None) -> dict[str, Any]:
    kind = "return" if sale_id.startswith("R") else "buyout" if sale_id.startswith("S") else "other"
    return {
        "sale_id": sale_id,
        "srid": srid,
        "kind": kind,
        "sku": "1001",
        "size": "M",
        "amount": Decimal("-1299.00") if kind == "return" else Decimal("1299.00"),
        "for_pay": Decimal("1100.00"),
        "currency": "RUB",
        "sold_at": sold_at or NOW - timedelta(hours=2),
        "source_updated_at": NOW,
        "raw": {"warehouseName": "Коледино", "subject": "Платье"},
    }


def review(review_id: str, stars: int, *, answered: bool = False, created: datetime | None = None) -> dict[str, Any]:
    return {
        "external_id": review_id,
        "sku": "1001",
        "product_name": "Платье",
        "stars": stars,
        "text": "Не подошло <совсем>",
        "pros": None,
        "cons": "размер",
        "author": "Анна",
        "is_answered": answered,
        "answer_text": "Спасибо" if answered else None,
        "created_at_source": created or NOW - timedelta(hours=3),
        "raw": {"productDetails": {"size": "M"}},
    }


def tracked(row: dict[str, Any], columns: tuple[str, ...] = ORDER_TRACKED) -> dict[str, Any]:
    """The `old` side of a RowChange: only the merge's tracked columns."""
    return {c: row.get(c) for c in columns}


def first_seen(key: str, row: dict[str, Any]) -> RowChange:
    return RowChange(key=key, old=None, new=row)


def changed(key: str, old: dict[str, Any], new: dict[str, Any]) -> RowChange:
    return RowChange(key=key, old=tracked(old), new=new)
