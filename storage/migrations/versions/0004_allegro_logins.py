"""allegro_logins: device logins started through the API, readable from any worker

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "allegro_logins",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("user_code", sa.String(length=64), nullable=False),
        sa.Column("verification_uri", sa.String(length=512), nullable=False),
        sa.Column("verification_uri_complete", sa.String(length=512), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("shop_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_allegro_logins_person_id_people"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_allegro_logins_shop_id_shops"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allegro_logins")),
    )


def downgrade() -> None:
    op.drop_table("allegro_logins")
