"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_table(
        "people",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("telegram_id", sa.BigInteger(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("first_name", sa.String(length=128), nullable=True),
        sa.Column("last_name", sa.String(length=128), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("time_zone", sa.String(length=64), server_default="UTC", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_people")),
        sa.UniqueConstraint("telegram_id", name=op.f("uq_people_telegram_id")),
    )
    op.create_table(
        "shops",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("marketplace", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("credentials", sa.LargeBinary(), nullable=True),
        sa.Column("account_key", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column(
            "status_changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("token_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notify_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("marketplace IN ('allegro', 'wb')", name=op.f("ck_shops_marketplace")),
        sa.CheckConstraint(
            "status IN ('active', 'needs_reauth', 'disabled', 'broken')",
            name=op.f("ck_shops_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shops")),
    )
    op.create_index("ix_shops_status_marketplace", "shops", ["status", "marketplace"], unique=False)
    op.create_table(
        "allegro_order_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("shop_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=48), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checkout_form_id", sa.String(length=64), nullable=True),
        sa.Column("revision", sa.String(length=64), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_allegro_order_events_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allegro_order_events")),
        sa.UniqueConstraint("shop_id", "event_id", name=op.f("uq_allegro_order_events_shop_id_event_id")),
    )
    op.create_index(
        "ix_allegro_order_events_shop_form",
        "allegro_order_events",
        ["shop_id", "checkout_form_id"],
        unique=False,
    )
    op.create_table(
        "customer_returns",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("shop_id", sa.BigInteger(), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("order_external_id", sa.String(length=64), nullable=True),
        sa.Column("created_at_source", sa.DateTime(timezone=True), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "first_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_customer_returns_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_returns")),
        sa.UniqueConstraint(
            "shop_id",
            "external_id",
            name=op.f("uq_customer_returns_shop_id_external_id"),
        ),
    )
    op.create_table(
        "delivery_cursors",
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("last_notification_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_delivery_cursors_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_delivery_cursors")),
    )
    op.create_table(
        "memberships",
        sa.Column("shop_id", sa.BigInteger(), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(length=8), server_default="member", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("role IN ('owner', 'member')", name=op.f("ck_memberships_role")),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_memberships_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_memberships_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("shop_id", "person_id", name=op.f("pk_memberships")),
    )
    op.create_index("ix_memberships_person", "memberships", ["person_id"], unique=False)
    op.create_table(
        "notification_settings",
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("notifications_enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("new_orders_enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("order_buyouts_enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column(
            "order_cancellations_enabled",
            sa.Boolean(),
            server_default="true",
            nullable=False,
        ),
        sa.Column("order_returns_enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column(
            "negative_reviews_enabled",
            sa.Boolean(),
            server_default="true",
            nullable=False,
        ),
        sa.Column(
            "critical_stocks_enabled",
            sa.Boolean(),
            server_default="true",
            nullable=False,
        ),
        sa.Column("notify_unpaid_orders", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "review_rating_threshold",
            sa.SmallInteger(),
            server_default="3",
            nullable=False,
        ),
        sa.Column("critical_stock_threshold", sa.Integer(), server_default="5", nullable=False),
        sa.Column("stock_horizon_days", sa.SmallInteger(), server_default="3", nullable=False),
        sa.Column("grouping_enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("max_group_size", sa.SmallInteger(), server_default="5", nullable=False),
        sa.Column("group_timeout", sa.Integer(), server_default="300", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "critical_stock_threshold BETWEEN 0 AND 100000",
            name=op.f("ck_notification_settings_stock_threshold"),
        ),
        sa.CheckConstraint(
            "group_timeout BETWEEN 0 AND 86400",
            name=op.f("ck_notification_settings_group_timeout"),
        ),
        sa.CheckConstraint(
            "max_group_size BETWEEN 1 AND 50",
            name=op.f("ck_notification_settings_group_size"),
        ),
        sa.CheckConstraint(
            "review_rating_threshold BETWEEN 0 AND 5",
            name=op.f("ck_notification_settings_review_threshold"),
        ),
        sa.CheckConstraint(
            "stock_horizon_days IN (1, 3, 7, 10, 14)",
            name=op.f("ck_notification_settings_horizon"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_notification_settings_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_notification_settings")),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("shop_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("dedupe_key", sa.String(length=255), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_notifications_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_notifications_dedupe_key")),
    )
    op.create_index("ix_notifications_shop_id", "notifications", ["shop_id", "id"], unique=False)
    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("shop_id", sa.BigInteger(), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("basket_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("marketplace_status", sa.String(length=32), nullable=True),
        sa.Column("fulfillment_status", sa.String(length=32), nullable=True),
        sa.Column("is_cancelled", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("total_amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("bought_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revision", sa.String(length=64), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "first_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_orders_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("shop_id", "external_id", name=op.f("uq_orders_shop_id_external_id")),
    )
    op.create_index("ix_orders_shop_basket", "orders", ["shop_id", "basket_id"], unique=False)
    op.create_index("ix_orders_shop_bought", "orders", ["shop_id", "bought_at"], unique=False)
    op.create_index(
        "ix_orders_shop_status_bought",
        "orders",
        ["shop_id", "status", "bought_at"],
        unique=False,
    )
    op.create_table(
        "products",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("shop_id", sa.BigInteger(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("vendor_code", sa.String(length=128), nullable=True),
        sa.Column("brand", sa.String(length=128), nullable=True),
        sa.Column("image_url", sa.Text(), nullable=True),
        sa.Column("price", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_products_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("shop_id", "sku", name=op.f("uq_products_shop_id_sku")),
    )
    op.create_table(
        "reviews",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("shop_id", sa.BigInteger(), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.Column("product_name", sa.Text(), nullable=True),
        sa.Column("stars", sa.SmallInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("pros", sa.Text(), nullable=True),
        sa.Column("cons", sa.Text(), nullable=True),
        sa.Column("author", sa.String(length=128), nullable=True),
        sa.Column("is_answered", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("answer_text", sa.Text(), nullable=True),
        sa.Column("created_at_source", sa.DateTime(timezone=True), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "first_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("stars BETWEEN 0 AND 5", name=op.f("ck_reviews_stars")),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_reviews_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
        sa.UniqueConstraint("shop_id", "external_id", name=op.f("uq_reviews_shop_id_external_id")),
    )
    op.create_index(
        "ix_reviews_shop_created",
        "reviews",
        ["shop_id", "created_at_source"],
        unique=False,
    )
    op.create_table(
        "stock_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("shop_id", sa.BigInteger(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("size", sa.String(length=64), server_default="", nullable=False),
        sa.Column("warehouse", sa.String(length=128), server_default="", nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_stock_history_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_history")),
    )
    op.create_index(
        "ix_stock_history_shop_sku_time",
        "stock_history",
        ["shop_id", "sku", "recorded_at"],
        unique=False,
    )
    op.create_table(
        "stocks",
        sa.Column("shop_id", sa.BigInteger(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("size", sa.String(length=64), server_default="", nullable=False),
        sa.Column("warehouse", sa.String(length=128), server_default="", nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("in_way_to_client", sa.Integer(), nullable=True),
        sa.Column("in_way_from_client", sa.Integer(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_stocks_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("shop_id", "sku", "size", "warehouse", name=op.f("pk_stocks")),
    )
    op.create_table(
        "sync_cursors",
        sa.Column("shop_id", sa.BigInteger(), nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("value", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_sync_cursors_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("shop_id", "stream", name=op.f("pk_sync_cursors")),
    )
    op.create_table(
        "sync_runs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("shop_id", sa.BigInteger(), nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), server_default="sync", nullable=False),
        sa.Column("status", sa.String(length=8), server_default="running", nullable=False),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fetched", sa.Integer(), server_default="0", nullable=False),
        sa.Column("inserted", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated", sa.Integer(), server_default="0", nullable=False),
        sa.Column("unchanged", sa.Integer(), server_default="0", nullable=False),
        sa.Column("stale_refused", sa.Integer(), server_default="0", nullable=False),
        sa.Column("requests", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("flow_run_id", sa.String(length=64), nullable=True),
        sa.CheckConstraint("kind IN ('sync', 'backfill')", name=op.f("ck_sync_runs_kind")),
        sa.CheckConstraint(
            "status IN ('running', 'success', 'failed', 'skipped')",
            name=op.f("ck_sync_runs_status"),
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_sync_runs_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_runs")),
    )
    op.create_index(
        "ix_sync_runs_shop_stream_started",
        "sync_runs",
        ["shop_id", "stream", "started_at"],
        unique=False,
    )
    op.create_table(
        "wb_sales",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("shop_id", sa.BigInteger(), nullable=False),
        sa.Column("sale_id", sa.String(length=64), nullable=False),
        sa.Column("srid", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.Column("size", sa.String(length=64), nullable=True),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("for_pay", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("sold_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "first_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("kind IN ('buyout', 'return', 'other')", name=op.f("ck_wb_sales_kind")),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_wb_sales_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wb_sales")),
        sa.UniqueConstraint("shop_id", "sale_id", name=op.f("uq_wb_sales_shop_id_sale_id")),
    )
    op.create_index("ix_wb_sales_shop_date", "wb_sales", ["shop_id", "sold_at"], unique=False)
    op.create_index("ix_wb_sales_shop_srid", "wb_sales", ["shop_id", "srid"], unique=False)
    op.create_table(
        "order_lines",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("shop_id", sa.BigInteger(), nullable=False),
        sa.Column("line_key", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("size", sa.String(length=64), nullable=True),
        sa.Column("quantity", sa.Integer(), server_default="1", nullable=False),
        sa.Column("price", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_lines_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_order_lines_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_lines")),
        sa.UniqueConstraint("order_id", "line_key", name=op.f("uq_order_lines_order_id_line_key")),
    )
    op.create_index("ix_order_lines_shop_sku", "order_lines", ["shop_id", "sku"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_order_lines_shop_sku", table_name="order_lines")
    op.drop_table("order_lines")
    op.drop_index("ix_wb_sales_shop_srid", table_name="wb_sales")
    op.drop_index("ix_wb_sales_shop_date", table_name="wb_sales")
    op.drop_table("wb_sales")
    op.drop_index("ix_sync_runs_shop_stream_started", table_name="sync_runs")
    op.drop_table("sync_runs")
    op.drop_table("sync_cursors")
    op.drop_table("stocks")
    op.drop_index("ix_stock_history_shop_sku_time", table_name="stock_history")
    op.drop_table("stock_history")
    op.drop_index("ix_reviews_shop_created", table_name="reviews")
    op.drop_table("reviews")
    op.drop_table("products")
    op.drop_index("ix_orders_shop_status_bought", table_name="orders")
    op.drop_index("ix_orders_shop_bought", table_name="orders")
    op.drop_index("ix_orders_shop_basket", table_name="orders")
    op.drop_table("orders")
    op.drop_index("ix_notifications_shop_id", table_name="notifications")
    op.drop_table("notifications")
    op.drop_table("notification_settings")
    op.drop_index("ix_memberships_person", table_name="memberships")
    op.drop_table("memberships")
    op.drop_table("delivery_cursors")
    op.drop_table("customer_returns")
    op.drop_index("ix_allegro_order_events_shop_form", table_name="allegro_order_events")
    op.drop_table("allegro_order_events")
    op.drop_index("ix_shops_status_marketplace", table_name="shops")
    op.drop_table("shops")
    op.drop_table("people")
    op.drop_table("api_keys")
