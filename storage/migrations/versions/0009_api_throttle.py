"""api_auth_failures (the failed-authentication throttle, shared by every API worker) and
allegro_logins.shop_name (any worker can reuse or complete a pending login)

Revision ID: 0009_api_throttle
Revises: 0011_rate_buckets
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_api_throttle"
down_revision = "0011_rate_buckets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_auth_failures",
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("client", name=op.f("pk_api_auth_failures")),
    )
    op.add_column("allegro_logins", sa.Column("shop_name", sa.String(length=128), nullable=True))


def downgrade() -> None:
    op.drop_column("allegro_logins", "shop_name")
    op.drop_table("api_auth_failures")
