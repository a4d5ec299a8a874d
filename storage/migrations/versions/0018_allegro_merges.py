"""allegro_merges: an Allegro checkout form merged into a new one keeps its backup, linked to it

Allegro merges purchases a buyer pays together into a new checkout-form id; the old ids answer
404 from then on, and the shared lineItem ids are the only link (allegro-api issues 1111, 2829,
10406). `orders.merged_into` names the new form's id on each old form (never deleted, never
blanked); the line index finds the forms that share a line id with a batch being written.
`order_statuses` (0016), which the API's order views read, shows the link too.

Revision ID: 0018_allegro_merges
Revises: 0017_order_write_path
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_allegro_merges"
down_revision = "0017_order_write_path"
branch_labels = None
depends_on = None

# Marketplace line ids (Allegro lineItem.id, a UUID), not the positional keys ("1", "0"...) of
# WB rows and id-less lines: only those can link forms, and WB's million rows stay out of it.
LINE_ID = "length(line_key) >= 16"

# 0016's view, with the link as its last column (CREATE OR REPLACE may only add columns at the end).
VIEW = """
CREATE OR REPLACE VIEW order_statuses AS
SELECT
    o.id, o.shop_id, o.external_id, o.basket_id,
    CASE
        WHEN f.status IN ('return', 'returnDefective') OR sl.returned THEN 'returned'
        WHEN f.status = 'buyout' OR sl.bought_out THEN 'delivered'
        WHEN f.status IS NOT DISTINCT FROM 'cancel' THEN 'cancelled'
        ELSE o.status
    END AS status,
    o.marketplace_status, o.fulfillment_status,
    o.is_cancelled OR f.status IS NOT DISTINCT FROM 'cancel' AS is_cancelled,
    o.total_amount, o.currency, o.bought_at, o.source_updated_at,
    coalesce(o.cancelled_at, CASE WHEN f.status IS NOT DISTINCT FROM 'cancel' THEN f.status_at END) AS cancelled_at,
    o.revision, o.raw, o.first_seen_at,
    greatest(o.updated_at, f.updated_at) AS updated_at{merged}
FROM orders o
LEFT JOIN wb_feed_orders f ON f.shop_id = o.shop_id AND f.srid = o.external_id
LEFT JOIN LATERAL (
    SELECT bool_or(s.kind = 'return') AS returned, bool_or(s.kind = 'buyout') AS bought_out
    FROM wb_sales s WHERE s.shop_id = o.shop_id AND s.srid = o.external_id
) sl ON true
"""


def upgrade() -> None:
    op.add_column("orders", sa.Column("merged_into", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_orders_shop_merged_into",
        "orders",
        ["shop_id", "merged_into"],
        postgresql_where=sa.text("merged_into IS NOT NULL"),
    )
    op.create_index(
        "ix_order_lines_shop_line", "order_lines", ["shop_id", "line_key"], postgresql_where=sa.text(LINE_ID)
    )
    op.execute(VIEW.format(merged=",\n    o.merged_into"))


def downgrade() -> None:
    op.execute("DROP VIEW order_statuses")
    op.execute(VIEW.format(merged="").replace("CREATE OR REPLACE VIEW", "CREATE VIEW"))
    op.drop_index("ix_order_lines_shop_line", table_name="order_lines")
    op.drop_index("ix_orders_shop_merged_into", table_name="orders")
    op.drop_column("orders", "merged_into")
