"""order_statuses: each order with its status as of now, from every source that knows it

WB's statistics orders say only whether a unit was cancelled: its buyout and return are rows of
the sales report, and the real-time order feed knows all four (often days before statistics
list them). The view puts them together, so the API's order list and detail, and anyone reading
the database, see a bought-out WB order as `delivered` and a returned one as `returned`.
Allegro orders carry their full status in `orders` already; for them the view changes nothing.

Revision ID: 0016_order_statuses
Revises: 0014_sync_leases
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0016_order_statuses"
down_revision = "0014_sync_leases"
branch_labels = None
depends_on = None

# The sales report is read in a LATERAL aggregate (one row per order, always): a page of orders
# probes it by index for its own rows only, and a query that reads no status (a count, the
# dashboard's figures) has it and the feed's join (unique on shop and srid) removed by the
# planner. A list filtered by status reads every order of the shop (about 10 us each).
RETURNED = "f.status IN ('return', 'returnDefective') OR sl.returned"
BOUGHT_OUT = "f.status = 'buyout' OR sl.bought_out"
FEED_CANCELLED = "f.status IS NOT DISTINCT FROM 'cancel'"

VIEW = f"""
CREATE VIEW order_statuses AS
SELECT
    o.id, o.shop_id, o.external_id, o.basket_id,
    CASE
        WHEN {RETURNED} THEN 'returned'
        WHEN {BOUGHT_OUT} THEN 'delivered'
        WHEN {FEED_CANCELLED} THEN 'cancelled'
        ELSE o.status
    END AS status,
    o.marketplace_status, o.fulfillment_status,
    o.is_cancelled OR {FEED_CANCELLED} AS is_cancelled,
    o.total_amount, o.currency, o.bought_at, o.source_updated_at,
    coalesce(o.cancelled_at, CASE WHEN {FEED_CANCELLED} THEN f.status_at END) AS cancelled_at,
    o.revision, o.raw, o.first_seen_at,
    greatest(o.updated_at, f.updated_at) AS updated_at
FROM orders o
LEFT JOIN wb_feed_orders f ON f.shop_id = o.shop_id AND f.srid = o.external_id
LEFT JOIN LATERAL (
    SELECT bool_or(s.kind = 'return') AS returned, bool_or(s.kind = 'buyout') AS bought_out
    FROM wb_sales s WHERE s.shop_id = o.shop_id AND s.srid = o.external_id
) sl ON true
"""


def upgrade() -> None:
    # Newest first, as every order list pages them: the index walks in that order, so a page
    # reads its own rows (the ascending one made PostgreSQL sort all of a shop's orders).
    op.drop_index("ix_orders_shop_bought", table_name="orders")
    op.execute("CREATE INDEX ix_orders_shop_recent ON orders (shop_id, bought_at DESC NULLS LAST, id DESC)")
    op.execute(VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW order_statuses")
    op.drop_index("ix_orders_shop_recent", table_name="orders")
    op.create_index("ix_orders_shop_bought", "orders", ["shop_id", "bought_at"])
