"""wb_feed_orders: the WB order feed's current status per unit (srid), beside statistics

Revision ID: 0012_wb_order_feed
Revises: 0013_sync_backoff
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012_wb_order_feed"
down_revision = "0013_sync_backoff"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "wb_feed_orders",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("shop_id", sa.BigInteger(), nullable=False),
        sa.Column("srid", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cancel_type", sa.String(length=16), nullable=True),
        sa.Column("status_at", TZ, nullable=True),
        sa.Column("ordered_at", TZ, nullable=True),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.Column("price", sa.Numeric(14, 2), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("is_fbs", sa.Boolean(), nullable=True),
        sa.Column("source_updated_at", TZ, nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("first_seen_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status IN ('created', 'buyout', 'cancel', 'return', 'returnDefective')",
            name=op.f("ck_wb_feed_orders_status"),
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_wb_feed_orders_shop_id_shops"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wb_feed_orders")),
        sa.UniqueConstraint("shop_id", "srid", name=op.f("uq_wb_feed_orders_shop_id_srid")),
    )
    op.create_index("ix_wb_feed_orders_shop_status_at", "wb_feed_orders", ["shop_id", "status_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_wb_feed_orders_shop_status_at", table_name="wb_feed_orders")
    op.drop_table("wb_feed_orders")
