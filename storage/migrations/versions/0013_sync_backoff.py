"""sync backoff: shops whose syncs keep failing wait exponentially longer

Revision ID: 0013_sync_backoff
Revises: 0010_bot_delivery
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_sync_backoff"
down_revision = "0010_bot_delivery"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sync_backoff",
        sa.Column("shop_id", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failed_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_sync_backoff_shop_id_shops"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("shop_id", name=op.f("pk_sync_backoff")),
    )


def downgrade() -> None:
    op.drop_table("sync_backoff")
