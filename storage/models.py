"""The schema: SQLAlchemy 2 declarative models. Alembic migrations in storage/migrations mirror it.

Natural keys from the marketplaces (Allegro checkout-form id and event id, WB `srid`,
`saleID`, feedback id) are unique per shop, so every write is an idempotent upsert.
All times are `timestamptz` (UTC in, the person's zone out); money is `numeric`.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    Sequence,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSON, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Money = Numeric(14, 2)
TZ = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Marketplace(enum.StrEnum):
    allegro = "allegro"
    wb = "wb"


class ShopStatus(enum.StrEnum):
    active = "active"
    needs_reauth = "needs_reauth"
    disabled = "disabled"
    broken = "broken"


class Role(enum.StrEnum):
    owner = "owner"
    member = "member"


def _in(column: str, values: type[enum.Enum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


def _created() -> Mapped[datetime]:
    return mapped_column(TZ, server_default=func.now(), nullable=False)


class Person(Base):
    """A Telegram user."""

    __tablename__ = "people"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True, nullable=False)
    username: Mapped[str | None] = mapped_column(String(64))
    first_name: Mapped[str | None] = mapped_column(String(128))
    last_name: Mapped[str | None] = mapped_column(String(128))
    # None: each shop's default (ru for WB, pl for Allegro).
    language: Mapped[str | None] = mapped_column(String(8))
    time_zone: Mapped[str] = mapped_column(String(64), server_default="UTC", nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now(), onupdate=func.now(), nullable=False)
    # Set when Telegram refused a message because the person blocked the bot: nothing is sent
    # to them until they come back (/start clears it).
    inactive_since: Mapped[datetime | None] = mapped_column(TZ)
    inactive_reason: Mapped[str | None] = mapped_column(String(64))


class Shop(Base):
    """A marketplace connection. Credentials are encrypted (sellerpulse.crypto)."""

    __tablename__ = "shops"
    __table_args__ = (
        CheckConstraint(_in("marketplace", Marketplace), name="marketplace"),
        CheckConstraint(_in("status", ShopStatus), name="status"),
        Index("ix_shops_status_marketplace", "status", "marketplace"),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    marketplace: Mapped[str] = mapped_column(String(16), nullable=False)
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    credentials: Mapped[bytes | None] = mapped_column(LargeBinary)
    # sha256 of the marketplace account identity, to recognise a re-connected shop; never the secret.
    account_key: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), server_default=ShopStatus.active.value, nullable=False)
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_changed_at: Mapped[datetime] = _created()
    # Allegro access-token expiry: the refresh flow selects on it (not a secret).
    token_expires_at: Mapped[datetime | None] = mapped_column(TZ)
    # Notifications are created only for what happened after this point; None until the
    # first sync has finished, so the first sync is silent.
    notify_from: Mapped[datetime | None] = mapped_column(TZ)
    currency: Mapped[str | None] = mapped_column(String(3))
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = _created()
    # Notifications paused by an owner (the backup goes on): what is created meanwhile is not sent.
    paused_at: Mapped[datetime | None] = mapped_column(TZ)


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (
        CheckConstraint(_in("role", Role), name="role"),
        Index("ix_memberships_person", "person_id"),
    )
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(8), nullable=False, server_default=Role.member.value)
    created_at: Mapped[datetime] = _created()


class Order(Base):
    """One order: an Allegro checkout form, or one WB order row (one unit, keyed by `srid`)."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("shop_id", "external_id"),
        # Newest first, as order lists page them (migration 0016_order_statuses). The only index
        # besides the keys: each one is paid for on every stored order, and the basket and status
        # indexes served no query (dropped in 0017_order_write_path).
        Index("ix_orders_shop_recent", "shop_id", text("bought_at DESC NULLS LAST"), text("id DESC")),
        Index("ix_orders_shop_merged_into", "shop_id", "merged_into", postgresql_where=text("merged_into IS NOT NULL")),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), nullable=False)
    external_id: Mapped[str] = mapped_column(String(64), nullable=False)
    # WB gNumber (shared by the items of one checkout); None for Allegro.
    basket_id: Mapped[str | None] = mapped_column(String(64))
    # Normalised: new, paid, processing, sent, delivered, cancelled, returned.
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    marketplace_status: Mapped[str | None] = mapped_column(String(32))
    fulfillment_status: Mapped[str | None] = mapped_column(String(32))
    is_cancelled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    total_amount: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    bought_at: Mapped[datetime | None] = mapped_column(TZ)
    # The marketplace's change time (Allegro updatedAt, WB lastChangeDate): stale writes are refused.
    source_updated_at: Mapped[datetime | None] = mapped_column(TZ)
    cancelled_at: Mapped[datetime | None] = mapped_column(TZ)
    revision: Mapped[str | None] = mapped_column(String(64))
    # json, not jsonb: stored as the text we send, not rebuilt into jsonb's tree on every insert
    # (measured: ~2.7 us of PostgreSQL CPU a WB order, and ~10% less WAL); the few reads of it
    # (`raw->>'...'`, the API) are rare. The merge compares payloads as jsonb (storage.merge).
    raw: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    # Allegro: the checkout-form id this form was merged into (its purchases paid together with
    # others under a new form; this id answers 404 since). The row stays as the backup it was.
    merged_into: Mapped[str | None] = mapped_column(String(64))
    first_seen_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        UniqueConstraint("order_id", "line_key"),
        Index("ix_order_lines_shop_sku", "shop_id", "sku"),
        # Marketplace line ids only (Allegro lineItem.id): what links a merged form to its parts.
        Index("ix_order_lines_shop_line", "shop_id", "line_key", postgresql_where=text("length(line_key) >= 16")),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # No foreign key: the one writer of lines (storage.merge) COPYs them with the id of the order
    # written in the same transaction, and a key's check cost a tuple lock (and its WAL) on the
    # order per line. A statement trigger on orders deletes the lines of deleted orders (0015).
    order_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # The order's shop, copied for per-shop product queries. No foreign key of its own: the
    # order's already ties the line to a shop (and deletes it with the shop), and a second check
    # per line cost a fifth of writing order lines.
    shop_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    line_key: Mapped[str] = mapped_column(String(64), nullable=False)
    sku: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(Text)
    size: Mapped[str | None] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    price: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))


class AllegroOrderEvent(Base):
    """The raw Allegro order-event journal (kept beyond Allegro's 60-day retention)."""

    __tablename__ = "allegro_order_events"
    __table_args__ = (
        UniqueConstraint("shop_id", "event_id"),
        Index("ix_allegro_order_events_shop_form", "shop_id", "checkout_form_id"),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), nullable=False)
    event_id: Mapped[str] = mapped_column(String(32), nullable=False)
    type: Mapped[str] = mapped_column(String(48), nullable=False)
    occurred_at: Mapped[datetime | None] = mapped_column(TZ)
    checkout_form_id: Mapped[str | None] = mapped_column(String(64))
    revision: Mapped[str | None] = mapped_column(String(64))
    raw: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    received_at: Mapped[datetime] = _created()


class Sale(Base):
    """WB sales report rows: `saleID` S... is a buyout, R... a return (negative amounts)."""

    __tablename__ = "wb_sales"
    __table_args__ = (
        UniqueConstraint("shop_id", "sale_id"),
        CheckConstraint("kind IN ('buyout', 'return', 'other')", name="kind"),
        Index("ix_wb_sales_shop_date", "shop_id", "sold_at"),
        Index("ix_wb_sales_shop_srid", "shop_id", "srid"),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), nullable=False)
    sale_id: Mapped[str] = mapped_column(String(64), nullable=False)
    srid: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8), nullable=False)
    sku: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[str | None] = mapped_column(String(64))
    amount: Mapped[Decimal | None] = mapped_column(Money)
    for_pay: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    sold_at: Mapped[datetime | None] = mapped_column(TZ)
    source_updated_at: Mapped[datetime | None] = mapped_column(TZ)
    raw: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    first_seen_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class WbFeedOrder(Base):
    """WB order feed: the current status of each unit (`srid`, as in statistics), seen in real
    time. Beside `orders`/`wb_sales`, never instead: statistics stay the record for money and
    the 90-day history; this table is the fast signal (one row per unit, its newest status)."""

    __tablename__ = "wb_feed_orders"
    # Ids from 2^50 (0019_order_list): a feed-only unit shows in the order list under its id.
    __table_args__ = (
        UniqueConstraint("shop_id", "srid"),
        CheckConstraint("status IN ('created', 'buyout', 'cancel', 'return', 'returnDefective')", name="status"),
        Index("ix_wb_feed_orders_shop_status_at", "shop_id", "status_at"),
        Index(
            "ix_wb_feed_orders_unlisted",
            "shop_id",
            text("COALESCE(ordered_at, status_at) DESC NULLS LAST"),
            text("id DESC"),
            postgresql_where=text("NOT listed"),
        ),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(start=2**50 + 1), primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), nullable=False)
    srid: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    cancel_type: Mapped[str | None] = mapped_column(String(16))  # app, receipt, expire, other
    status_at: Mapped[datetime | None] = mapped_column(TZ)  # when the current status began
    ordered_at: Mapped[datetime | None] = mapped_column(TZ)
    sku: Mapped[str | None] = mapped_column(String(64))  # nmId
    price: Mapped[Decimal | None] = mapped_column(Money)  # sellerPrice: a hint; statistics hold the money
    currency: Mapped[str | None] = mapped_column(String(3))
    is_fbs: Mapped[bool | None] = mapped_column(Boolean)  # isMp: the seller's own warehouse ships it
    # = status_at: an older answer never overwrites a newer status.
    source_updated_at: Mapped[datetime | None] = mapped_column(TZ)
    raw: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    # True once statistics list the unit (marked by the feed stream: storage.order_list.mark_listed);
    # a cache for the order list, which checks the unmarked rows against orders itself.
    listed: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    first_seen_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class CustomerReturn(Base):
    """Allegro customer returns."""

    __tablename__ = "customer_returns"
    __table_args__ = (UniqueConstraint("shop_id", "external_id"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), nullable=False)
    external_id: Mapped[str] = mapped_column(String(64), nullable=False)
    order_external_id: Mapped[str | None] = mapped_column(String(64))
    created_at_source: Mapped[datetime | None] = mapped_column(TZ)
    raw: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    first_seen_at: Mapped[datetime] = _created()


class Product(Base):
    """A WB card (sku = nmID) or an Allegro offer (sku = offer id)."""

    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("shop_id", "sku"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), nullable=False)
    sku: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str | None] = mapped_column(Text)
    vendor_code: Mapped[str | None] = mapped_column(String(128))
    brand: Mapped[str | None] = mapped_column(String(128))
    image_url: Mapped[str | None] = mapped_column(Text)
    price: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    status: Mapped[str | None] = mapped_column(String(32))
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = _created()


class Stock(Base):
    """Current stock per shop, SKU, size and warehouse ('' where a marketplace has none)."""

    __tablename__ = "stocks"
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[str] = mapped_column(String(64), primary_key=True, server_default="")
    warehouse: Mapped[str] = mapped_column(String(128), primary_key=True, server_default="")
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    in_way_to_client: Mapped[int | None] = mapped_column(Integer)
    in_way_from_client: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = _created()


class StockHistory(Base):
    """A row each time a stock value changes (the marketplaces keep only the current state)."""

    __tablename__ = "stock_history"
    __table_args__ = (Index("ix_stock_history_shop_sku_time", "shop_id", "sku", "recorded_at"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), nullable=False)
    sku: Mapped[str] = mapped_column(String(64), nullable=False)
    size: Mapped[str] = mapped_column(String(64), nullable=False, server_default="")
    warehouse: Mapped[str] = mapped_column(String(128), nullable=False, server_default="")
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    recorded_at: Mapped[datetime] = _created()


class Review(Base):
    __tablename__ = "reviews"
    __table_args__ = (
        UniqueConstraint("shop_id", "external_id"),
        CheckConstraint("stars BETWEEN 0 AND 5", name="stars"),
        Index("ix_reviews_shop_created", "shop_id", "created_at_source"),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), nullable=False)
    external_id: Mapped[str] = mapped_column(String(64), nullable=False)
    sku: Mapped[str | None] = mapped_column(String(64))
    product_name: Mapped[str | None] = mapped_column(Text)
    stars: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    text: Mapped[str | None] = mapped_column(Text)
    pros: Mapped[str | None] = mapped_column(Text)
    cons: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(String(128))
    is_answered: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    answer_text: Mapped[str | None] = mapped_column(Text)
    # WB listed it in its archive (answered, unanswered for 30 days, or no text and no photos).
    archived: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    created_at_source: Mapped[datetime | None] = mapped_column(TZ)
    raw: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    first_seen_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class SyncCursor(Base):
    """Where each stream of a shop stopped; moved only in the transaction of the rows it covers."""

    __tablename__ = "sync_cursors"
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True)
    stream: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    updated_at: Mapped[datetime] = _created()


class SyncRun(Base):
    __tablename__ = "sync_runs"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'success', 'failed', 'skipped')", name="status"),
        CheckConstraint("kind IN ('sync', 'backfill')", name="kind"),
        Index("ix_sync_runs_shop_stream_started", "shop_id", "stream", "started_at"),
        Index("ix_sync_runs_running", "shop_id", postgresql_where=text("status = 'running'")),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), nullable=False)
    stream: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(8), nullable=False, server_default="sync")
    status: Mapped[str] = mapped_column(String(8), nullable=False, server_default="running")
    started_at: Mapped[datetime] = _created()
    finished_at: Mapped[datetime | None] = mapped_column(TZ)
    fetched: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    inserted: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    updated: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    unchanged: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    stale_refused: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    requests: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    # The fencing token of the shop's lease (storage.leases) the run ran under: a `running` run
    # whose lease is gone or has expired died (storage.reaping).
    lease_token: Mapped[int | None] = mapped_column(BigInteger)


class Notification(Base):
    """The outbox. `id` is monotonic: the bot's delivery cursor is an id."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_shop_id", "shop_id", "id"),
        # Where a member's delivery starts (storage.outbox: ids and created_at rise together).
        Index("ix_notifications_shop_created", "shop_id", "created_at"),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    # (shop, kind, entity, transition): the exactly-once guarantee.
    dedupe_key: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    created_at: Mapped[datetime] = _created()


class NotificationSettings(Base):
    """Per-person settings; defaults as in the original bot."""

    __tablename__ = "notification_settings"
    __table_args__ = (
        CheckConstraint("review_rating_threshold BETWEEN 0 AND 5", name="review_threshold"),
        CheckConstraint("critical_stock_threshold BETWEEN 0 AND 100000", name="stock_threshold"),
        CheckConstraint("stock_horizon_days IN (1, 3, 7, 10, 14)", name="horizon"),
        CheckConstraint("max_group_size BETWEEN 1 AND 50", name="group_size"),
        CheckConstraint("group_timeout BETWEEN 0 AND 86400", name="group_timeout"),
    )
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    notifications_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    new_orders_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    order_buyouts_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    order_cancellations_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    order_returns_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    negative_reviews_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    critical_stocks_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    # Allegro: notify at BOUGHT instead of waiting for payment.
    notify_unpaid_orders: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    review_rating_threshold: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="3")
    critical_stock_threshold: Mapped[int] = mapped_column(Integer, nullable=False, server_default="5")
    stock_horizon_days: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="3")
    grouping_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    max_group_size: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="5")
    group_timeout: Mapped[int] = mapped_column(Integer, nullable=False, server_default="300")
    updated_at: Mapped[datetime] = _created()


class DeliveryCursor(Base):
    """The last notification id a person's bot has acknowledged."""

    __tablename__ = "delivery_cursors"
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    last_notification_id: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    updated_at: Mapped[datetime] = _created()


class ApiKey(Base):
    """API keys, stored as sha256 of the key; the key itself is shown once at creation."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    # Short public prefix to tell keys apart in listings.
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = _created()
    last_used_at: Mapped[datetime | None] = mapped_column(TZ)
    revoked_at: Mapped[datetime | None] = mapped_column(TZ)


class StockSnapshotRow(Base):
    """Pages of a stock report being collected; merged into `stocks` once the report is complete.

    A report read half-way must never be taken for the whole state (that would zero the rest),
    so pages land here first, each in its own short transaction.
    """

    __tablename__ = "stock_snapshot_rows"
    __table_args__ = (Index("ix_stock_snapshot_rows_snapshot", "snapshot_id"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    snapshot_id: Mapped[str] = mapped_column(String(64), nullable=False)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), nullable=False)
    sku: Mapped[str] = mapped_column(String(64), nullable=False)
    size: Mapped[str] = mapped_column(String(64), nullable=False, server_default="")
    warehouse: Mapped[str] = mapped_column(String(128), nullable=False, server_default="")
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    in_way_to_client: Mapped[int | None] = mapped_column(Integer)
    in_way_from_client: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created()


class AllegroLogin(Base):
    """An Allegro device login started through the API: what the person must see, and how it
    ended. In the database, so any API worker can answer its status, whichever one polls."""

    __tablename__ = "allegro_logins"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random, unguessable
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), nullable=False)
    user_code: Mapped[str] = mapped_column(String(64), nullable=False)
    verification_uri: Mapped[str] = mapped_column(String(512), nullable=False)
    verification_uri_complete: Mapped[str | None] = mapped_column(String(512))
    expires_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    # pending, connected, denied, expired, failed, superseded (by a newer login of the person)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="pending")
    shop_id: Mapped[int | None] = mapped_column(ForeignKey("shops.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()
    # The name the shop gets once approved (any worker may complete or reuse the ticket).
    shop_name: Mapped[str | None] = mapped_column(String(128))


class HistoryRead(Base):
    """A read of a shop's past orders over [since, until] (the first sync's backup of the order
    history, a backfill) and how far it got: every order whose key (Allegro: boughtAt) is before
    `done_until` is stored. Moved in the transaction of the rows it covers; `completed_at` set
    when the range is done. A shop with a read not completed shows "history incomplete"."""

    __tablename__ = "history_reads"
    __table_args__ = (UniqueConstraint("shop_id", "name"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), nullable=False)
    # "first-sync", or "backfill:<since>:<until>": a re-run with the same range continues it.
    name: Mapped[str] = mapped_column(String(96), nullable=False)
    since: Mapped[datetime] = mapped_column(TZ, nullable=False)
    until: Mapped[datetime] = mapped_column(TZ, nullable=False)
    done_until: Mapped[datetime | None] = mapped_column(TZ)
    started_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()
    completed_at: Mapped[datetime | None] = mapped_column(TZ)


class RateBucket(Base):
    """A marketplace rate-limit bucket shared by every worker (storage.ratelimit).

    One row per (credential, API category): `owner` is a keyed hash of the credential (the
    Allegro client id, a WB token) under the install's secret key, never the credential.
    `tokens` may be negative: requests already promised a start time (reservations).
    Times are on the database server's clock, the one clock every machine shares.
    """

    __tablename__ = "rate_buckets"
    owner: Mapped[str] = mapped_column(String(32), primary_key=True)
    category: Mapped[str] = mapped_column(String(128), primary_key=True)
    tokens: Mapped[float] = mapped_column(Double, nullable=False)
    # The rate the last caller configured (the arithmetic uses the caller's): for operators.
    per_second: Mapped[float] = mapped_column(Double, nullable=False)
    burst: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    # A 429 said "not before then": nobody starts a request earlier.
    paused_until: Mapped[datetime] = mapped_column(TZ, nullable=False)


class ApiAuthFailure(Base):
    """Failed API authentications per client address in the current one-minute window: one
    counter for every API worker, so the throttle holds however many there are."""

    __tablename__ = "api_auth_failures"
    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(TZ, nullable=False)
    failures: Mapped[int] = mapped_column(Integer, nullable=False)


class DeliveryStatus(enum.StrEnum):
    sent = "sent"  # Telegram accepted it
    failed = "failed"  # Telegram refused it for good (a 4xx other than 429): logged, not retried
    skipped = "skipped"  # deliberately not sent (the shop's notifications are paused)


class DeliveryRecord(Base):
    """What the bot did with each notification for each person, written right after Telegram
    answered: a redelivered item (a crash before the ack) is recognised and not sent again."""

    __tablename__ = "delivery_records"
    __table_args__ = (CheckConstraint(_in("status", DeliveryStatus), name="status"),)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[int] = mapped_column(BigInteger, nullable=False)  # the message it went out in
    status: Mapped[str] = mapped_column(String(8), nullable=False)
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[str | None] = mapped_column(Text)  # why it failed or was skipped
    attempts: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="1")
    recorded_at: Mapped[datetime] = _created()


class ShopInvite(Base):
    """A one-time code an owner hands out to share a shop; stored as sha256, shown once."""

    __tablename__ = "shop_invites"
    __table_args__ = (Index("ix_shop_invites_shop", "shop_id"),)
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), nullable=False)
    created_by: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), nullable=False)
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    used_by: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    used_at: Mapped[datetime | None] = mapped_column(TZ)


class SyncBackoff(Base):
    """A shop whose scheduled syncs keep failing waits longer between them (storage.backoff).

    One row per shop that failed its last sync(s); deleted by a sync that succeeds. The
    scheduled sync-all leaves a shop out until `next_attempt_at`; a sync asked for by hand
    (CLI, API) runs regardless, and its outcome counts the same way.
    """

    __tablename__ = "sync_backoff"
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, nullable=False)
    next_attempt_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    failed_at: Mapped[datetime] = mapped_column(TZ, nullable=False)


class SyncLease(Base):
    """One sync (or backfill) of a shop at a time (storage.leases): the holder, its fencing
    token (from the sequence `sync_lease_tokens`: every take a larger one) and when the lease
    expires by the database's clock unless renewed. Deleted when the holder is done."""

    __tablename__ = "sync_leases"
    __table_args__ = (CheckConstraint("kind IN ('sync', 'backfill')", name="kind"),)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200), nullable=False)
    token: Mapped[int] = mapped_column(BigInteger, nullable=False)
    taken_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(TZ, nullable=False)


SYNC_LEASE_TOKENS = Sequence("sync_lease_tokens", metadata=Base.metadata)
