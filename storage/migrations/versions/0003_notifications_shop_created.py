"""notifications: (shop_id, created_at) index for the delivery start point

A person sees a shop's notifications from when they joined it. Outbox ids and created_at
rise together (storage.outbox.add), so the first id of a membership is one index probe
instead of a scan over the shop's whole history.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_notifications_shop_created", "notifications", ["shop_id", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_notifications_shop_created", table_name="notifications")
