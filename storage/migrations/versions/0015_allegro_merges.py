"""allegro_merges: an Allegro checkout form merged into a new one keeps its backup, linked to it

Allegro merges purchases a buyer pays together into a new checkout-form id; the old ids answer
404 from then on, and the shared lineItem ids are the only link (allegro-api issues 1111, 2829,
10406). `orders.merged_into` names the new form's id on each old form (never deleted, never
blanked); the line index finds the forms that share a line id with a batch being written.

Revision ID: 0015_allegro_merges
Revises: 0014_sync_leases
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_allegro_merges"
down_revision = "0014_sync_leases"
branch_labels = None
depends_on = None

# Marketplace line ids (Allegro lineItem.id, a UUID), not the positional keys ("1", "0"...) of
# WB rows and id-less lines: only those can link forms, and WB's million rows stay out of it.
LINE_ID = "length(line_key) >= 16"


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


def downgrade() -> None:
    op.drop_index("ix_order_lines_shop_line", table_name="order_lines")
    op.drop_index("ix_orders_shop_merged_into", table_name="orders")
    op.drop_column("orders", "merged_into")
