"""sync_runs: which PostgreSQL session held the shop's lock (a run whose holder is gone is reaped);
reviews: whether WB last listed the review in its archive

Revision ID: 0007_sync_runs_reaping
Revises: 0009_api_throttle
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_sync_runs_reaping"
down_revision = "0009_api_throttle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The advisory lock a run ran under: (namespace, shop id) held by backend `lock_pid`.
    op.add_column("sync_runs", sa.Column("lock_namespace", sa.Integer(), nullable=True))
    op.add_column("sync_runs", sa.Column("lock_pid", sa.Integer(), nullable=True))
    # Reaping looks for running runs only.
    op.create_index("ix_sync_runs_running", "sync_runs", ["shop_id"], postgresql_where=sa.text("status = 'running'"))
    op.add_column("reviews", sa.Column("archived", sa.Boolean(), server_default="false", nullable=False))


def downgrade() -> None:
    op.drop_column("reviews", "archived")
    op.drop_index("ix_sync_runs_running", table_name="sync_runs")
    op.drop_column("sync_runs", "lock_pid")
    op.drop_column("sync_runs", "lock_namespace")
