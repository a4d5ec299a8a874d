"""The sync's writes: one set-based merge per batch and table (see storage.merge).

Each function takes normalised row dicts (column name -> value, see tasks.normalize) and
returns a MergeResult whose `changes` feed the notification rules in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from storage.merge import Children, MergeResult, MergeSpec, merge

ORDERS = MergeSpec(
    table="orders",
    key="external_id",
    columns=(
        "basket_id",
        "status",
        "marketplace_status",
        "fulfillment_status",
        "is_cancelled",
        "total_amount",
        "currency",
        "bought_at",
        "source_updated_at",
        "cancelled_at",
        "revision",
        "raw",
    ),
    tracked=(
        "status",
        "marketplace_status",
        "fulfillment_status",
        "is_cancelled",
        "total_amount",
        "bought_at",
        "source_updated_at",
        "cancelled_at",
        "revision",
    ),
    children=Children(
        table="order_lines",
        parent="order_id",
        source="lines",
        columns=("line_key", "sku", "name", "size", "quantity", "price", "currency"),
    ),
)

SALES = MergeSpec(
    table="wb_sales",
    key="sale_id",
    columns=("srid", "kind", "sku", "size", "amount", "for_pay", "currency", "sold_at", "source_updated_at", "raw"),
    tracked=("kind", "amount", "for_pay", "source_updated_at"),
)

REVIEWS = MergeSpec(
    table="reviews",
    key="external_id",
    columns=(
        "sku",
        "product_name",
        "stars",
        "text",
        "pros",
        "cons",
        "author",
        "is_answered",
        "answer_text",
        "created_at_source",
        "raw",
    ),
    tracked=("stars", "is_answered"),
    version=None,
)

PRODUCTS = MergeSpec(
    table="products",
    key="sku",
    columns=("name", "vendor_code", "brand", "image_url", "price", "currency", "status", "raw"),
    tracked=("name", "image_url"),
    version=None,
)

# The order feed's newest status per unit; an answer older than the stored status is refused.
WB_FEED = MergeSpec(
    table="wb_feed_orders",
    key="srid",
    columns=(
        "status",
        "cancel_type",
        "status_at",
        "ordered_at",
        "sku",
        "price",
        "currency",
        "is_fbs",
        "source_updated_at",
        "raw",
    ),
    tracked=("status", "cancel_type", "status_at"),
)

CUSTOMER_RETURNS = MergeSpec(
    table="customer_returns",
    key="external_id",
    columns=("order_external_id", "created_at_source", "raw"),
    tracked=("created_at_source",),
    version=None,
)

ALLEGRO_EVENTS = MergeSpec(
    table="allegro_order_events",
    key="event_id",
    columns=("type", "occurred_at", "checkout_form_id", "revision", "raw"),
    tracked=(),
    version=None,
)


def upsert_orders(session: Session, *, shop_id: int, rows: Sequence[dict[str, Any]]) -> MergeResult:
    """Orders and, for every order written, its lines (`row["lines"]`), replaced as a whole."""
    return merge(session, spec=ORDERS, shop_id=shop_id, rows=rows)


def upsert_sales(session: Session, *, shop_id: int, rows: Sequence[dict[str, Any]]) -> MergeResult:
    return merge(session, spec=SALES, shop_id=shop_id, rows=rows)


def upsert_reviews(session: Session, *, shop_id: int, rows: Sequence[dict[str, Any]]) -> MergeResult:
    return merge(session, spec=REVIEWS, shop_id=shop_id, rows=rows)


def upsert_products(session: Session, *, shop_id: int, rows: Sequence[dict[str, Any]]) -> MergeResult:
    return merge(session, spec=PRODUCTS, shop_id=shop_id, rows=rows)


def upsert_wb_feed(session: Session, *, shop_id: int, rows: Sequence[dict[str, Any]]) -> MergeResult:
    return merge(session, spec=WB_FEED, shop_id=shop_id, rows=rows)


def upsert_customer_returns(session: Session, *, shop_id: int, rows: Sequence[dict[str, Any]]) -> MergeResult:
    return merge(session, spec=CUSTOMER_RETURNS, shop_id=shop_id, rows=rows)


def insert_allegro_events(session: Session, *, shop_id: int, rows: Sequence[dict[str, Any]]) -> MergeResult:
    """The raw journal; an event id already stored (Allegro repeats some) is left as it is."""
    return merge(session, spec=ALLEGRO_EVENTS, shop_id=shop_id, rows=rows)
