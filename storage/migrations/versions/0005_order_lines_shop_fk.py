"""order_lines: drop the shop_id foreign key (the order's foreign key already ties a line to its shop)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("fk_order_lines_shop_id_shops", "order_lines", type_="foreignkey")


def downgrade() -> None:
    op.create_foreign_key(
        "fk_order_lines_shop_id_shops", "order_lines", "shops", ["shop_id"], ["id"], ondelete="CASCADE"
    )
