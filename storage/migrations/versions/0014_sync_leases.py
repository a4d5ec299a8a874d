"""sync_leases: one sync of a shop at a time by a lease row with a fencing token, not an advisory lock

A session-level advisory lock held a connection for the whole sync of every shop being synced;
a lease row holds none. Runs name the lease token they ran under (reaping: a run whose lease is
gone or expired died) instead of the advisory lock's namespace and backend pid.

Revision ID: 0014_sync_leases
Revises: 0012_wb_order_feed
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_sync_leases"
down_revision = "0012_wb_order_feed"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.execute("CREATE SEQUENCE sync_lease_tokens")
    op.create_table(
        "sync_leases",
        sa.Column("shop_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("taken_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.CheckConstraint("kind IN ('sync', 'backfill')", name=op.f("ck_sync_leases_kind")),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_sync_leases_shop_id_shops"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("shop_id", "kind", name=op.f("pk_sync_leases")),
    )
    op.add_column("sync_runs", sa.Column("lease_token", sa.BigInteger(), nullable=True))
    op.drop_column("sync_runs", "lock_pid")
    op.drop_column("sync_runs", "lock_namespace")


def downgrade() -> None:
    op.add_column("sync_runs", sa.Column("lock_namespace", sa.Integer(), nullable=True))
    op.add_column("sync_runs", sa.Column("lock_pid", sa.Integer(), nullable=True))
    op.drop_column("sync_runs", "lease_token")
    op.drop_table("sync_leases")
    op.execute("DROP SEQUENCE sync_lease_tokens")
