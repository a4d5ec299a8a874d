"""order_list: the API's order list and detail, feed-only WB units included; a status filter in one pass

Two views beside `order_statuses` (0016, 0018: each stored order with its status as of now, what
every figure counts):

- `order_list`: `order_statuses` (with `in_statistics` true) and, with `in_statistics` false, each
  WB unit the real-time order feed shows that statistics have not listed yet (they refresh every
  30 minutes and can list an order 1-3 days late). A seller told "new order" by the feed finds it
  in the list. Once statistics list the unit, its stored order replaces it (`NOT EXISTS` on the
  natural key): never both, never counted in figures (those read `order_statuses`).
- `order_list_scan`: the same ids and statuses for reading all of a shop's orders at once, with
  the sales report grouped and hash-joined (`order_statuses` probes it by index per order: right
  for a page, 2-4 s for a status filter over a 200,000-order shop, a quarter of it JIT). The
  list filtered by status counts and pages its matches in one pass over it (storage.queries).

Ids: a feed-only unit is shown under its feed row's id. Feed ids are moved to start at 2^50
(FEED_ID_BASE; below 2^53, exact in JSON numbers) so they never meet an order's id; an id seen
while the unit was feed-only still opens it (as its stored order) once statistics list it.

Revision ID: 0019_order_list
Revises: 0018_allegro_merges
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_order_list"
down_revision = "0018_allegro_merges"
branch_labels = None
depends_on = None

FEED_ID_BASE = 2**50
# When the unit was placed, as the feed's rows are ordered by the list (the index below).
FEED_BOUGHT_AT = "coalesce(f.ordered_at, f.status_at)"
FEED_STATUS = (
    "CASE f.status WHEN 'created' THEN 'new' WHEN 'buyout' THEN 'delivered' "
    "WHEN 'cancel' THEN 'cancelled' ELSE 'returned' END::varchar"
)
# `listed` is a cache the feed stream keeps (storage.feed_listing): true once statistics have
# the unit. Only the few rows not marked yet are checked against orders, so the list's count
# and walk read the feed-only units alone, not the feed's 31 days; a row statistics listed
# since the last mark is still left out by the check.
FEED_ONLY = (
    "NOT f.listed AND NOT EXISTS (SELECT 1 FROM orders x WHERE x.shop_id = f.shop_id AND x.external_id = f.srid)"
)

# Each column of a half of a UNION ALL below has the type of order_statuses' column (else
# PostgreSQL computes the whole union before filtering it).
FEED_ONLY_VIEW = f"""
CREATE VIEW order_feed_only AS
SELECT
    f.id, f.shop_id, f.srid AS external_id, NULL::varchar AS basket_id, {FEED_STATUS} AS status,
    f.status::varchar AS marketplace_status, NULL::varchar AS fulfillment_status,
    f.status = 'cancel' AS is_cancelled, f.price AS total_amount, f.currency::varchar AS currency,
    {FEED_BOUGHT_AT} AS bought_at, f.source_updated_at,
    CASE WHEN f.status = 'cancel' THEN f.status_at END AS cancelled_at, NULL::varchar AS revision,
    f.raw::json AS raw, f.first_seen_at, f.updated_at, NULL::varchar AS merged_into, false AS in_statistics
FROM wb_feed_orders f
WHERE {FEED_ONLY}
"""

ORDER_LIST = """
CREATE VIEW order_list AS
SELECT s.*, true AS in_statistics FROM order_statuses s
UNION ALL
SELECT * FROM order_feed_only
"""

# order_statuses' CASE (0018), over a grouped sales report.
ORDER_LIST_SCAN = """
CREATE VIEW order_list_scan AS
SELECT o.id, o.shop_id, o.bought_at,
    CASE
        WHEN f.status IN ('return', 'returnDefective') OR sl.returned THEN 'returned'
        WHEN f.status = 'buyout' OR sl.bought_out THEN 'delivered'
        WHEN f.status IS NOT DISTINCT FROM 'cancel' THEN 'cancelled'
        ELSE o.status
    END AS status,
    true AS in_statistics
FROM orders o
LEFT JOIN wb_feed_orders f ON f.shop_id = o.shop_id AND f.srid = o.external_id
LEFT JOIN (
    SELECT s.shop_id, s.srid, bool_or(s.kind = 'return') AS returned, bool_or(s.kind = 'buyout') AS bought_out
    FROM wb_sales s GROUP BY s.shop_id, s.srid
) sl ON sl.shop_id = o.shop_id AND sl.srid = o.external_id
UNION ALL
SELECT id, shop_id, bought_at, status, in_statistics FROM order_feed_only
"""


def upgrade() -> None:
    op.execute(f"UPDATE wb_feed_orders SET id = id + {FEED_ID_BASE} WHERE id < {FEED_ID_BASE}")
    # START too: a TRUNCATE ... RESTART IDENTITY (the tests' cleanup) restarts at START.
    op.execute(f"ALTER TABLE wb_feed_orders ALTER COLUMN id SET START WITH {FEED_ID_BASE + 1} RESTART")
    op.add_column("wb_feed_orders", sa.Column("listed", sa.Boolean(), server_default="false", nullable=False))
    op.execute(
        "UPDATE wb_feed_orders f SET listed = true"
        " WHERE EXISTS (SELECT 1 FROM orders x WHERE x.shop_id = f.shop_id AND x.external_id = f.srid)"
    )
    # The units not marked yet, in the list's order (as ix_orders_shop_recent for orders).
    op.execute(
        "CREATE INDEX ix_wb_feed_orders_unlisted ON wb_feed_orders "
        "(shop_id, (coalesce(ordered_at, status_at)) DESC NULLS LAST, id DESC) WHERE NOT listed"
    )
    for view in (FEED_ONLY_VIEW, ORDER_LIST, ORDER_LIST_SCAN):
        op.execute(view)


def downgrade() -> None:
    for view in ("order_list_scan", "order_list", "order_feed_only"):
        op.execute(f"DROP VIEW {view}")
    op.drop_index("ix_wb_feed_orders_unlisted", table_name="wb_feed_orders")
    op.drop_column("wb_feed_orders", "listed")
    # Ids stay where they are (nothing refers to them); the sequence goes on from them.
