"""bot delivery: delivery records, inactive people, paused shops, shop invites

Revision ID: 0010_bot_delivery
Revises: 0007_sync_runs_reaping
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_bot_delivery"
down_revision = "0007_sync_runs_reaping"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("people", sa.Column("inactive_since", TZ, nullable=True))
    op.add_column("people", sa.Column("inactive_reason", sa.String(length=64), nullable=True))
    op.add_column("shops", sa.Column("paused_at", TZ, nullable=True))
    op.create_table(
        "delivery_records",
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("notification_id", sa.BigInteger(), nullable=False),
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("telegram_message_id", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("attempts", sa.SmallInteger(), server_default="1", nullable=False),
        sa.Column("recorded_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status IN ('sent', 'failed', 'skipped')", name=op.f("ck_delivery_records_status")),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_delivery_records_person_id_people"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_delivery_records_notification_id_notifications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("person_id", "notification_id", name=op.f("pk_delivery_records")),
    )
    op.create_table(
        "shop_invites",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("shop_id", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("used_by", sa.BigInteger(), nullable=True),
        sa.Column("used_at", TZ, nullable=True),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_shop_invites_shop_id_shops"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["people.id"], name=op.f("fk_shop_invites_created_by_people"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["used_by"], ["people.id"], name=op.f("fk_shop_invites_used_by_people"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_shop_invites")),
    )
    op.create_index("ix_shop_invites_shop", "shop_invites", ["shop_id"])


def downgrade() -> None:
    op.drop_index("ix_shop_invites_shop", table_name="shop_invites")
    op.drop_table("shop_invites")
    op.drop_table("delivery_records")
    op.drop_column("shops", "paused_at")
    op.drop_column("people", "inactive_reason")
    op.drop_column("people", "inactive_since")
