"""stock snapshot staging

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stock_snapshot_rows",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("snapshot_id", sa.String(length=64), nullable=False),
        sa.Column("shop_id", sa.BigInteger(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("size", sa.String(length=64), server_default="", nullable=False),
        sa.Column("warehouse", sa.String(length=128), server_default="", nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("in_way_to_client", sa.Integer(), nullable=True),
        sa.Column("in_way_from_client", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_stock_snapshot_rows_shop_id_shops"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_snapshot_rows")),
    )
    op.create_index("ix_stock_snapshot_rows_snapshot", "stock_snapshot_rows", ["snapshot_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_stock_snapshot_rows_snapshot", table_name="stock_snapshot_rows")
    op.drop_table("stock_snapshot_rows")
