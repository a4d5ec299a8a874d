"""Request and response models. Datetimes are ISO 8601 with a zone (UTC from the database);
no model here has a field for a token or a key, so none can leak into a response."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import IntEnum
from typing import Annotated, Any, Generic, Literal, TypeVar
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    Strict,
    StrictBool,
    StringConstraints,
)
from pydantic.json_schema import SkipJsonSchema

from sellerpulse.notify.render import unsafe_characters

T = TypeVar("T")

MAX_ID = 2**63 - 1  # bigint: anything larger could only ever be a 404, but PostgreSQL would refuse it
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
TelegramId = Annotated[int, Field(ge=1, le=MAX_ID, description="the person's Telegram user id", examples=[1])]
Cursor = Annotated[int, Field(ge=0, le=MAX_ID, description="a notification id; items after it are returned")]
# Body fields are JSON: an integer is an integer (`false` is not 0, `"5"` is not 5), a boolean a
# boolean. FastAPI validates bodies in pydantic's Python mode, which would coerce them.
BodyId = Annotated[int, Strict(), Field(ge=1, le=MAX_ID)]
BodyTelegramId = Annotated[BodyId, Field(description="the person's Telegram user id", examples=[1])]
BodyCursor = Annotated[Cursor, Strict()]
# PostgreSQL text cannot hold NUL; refuse it here rather than in the database.
NoNul = StringConstraints(pattern=r"^[^\x00]*$")


def _plain_text(value: str) -> str:
    # Names reach Telegram messages: no control characters, line breaks or bidi overrides.
    if unsafe_characters(value):
        raise ValueError("must not contain control characters, line breaks or bidirectional formatting characters")
    return value


# The same rule as a JSON Schema pattern (for clients and schemathesis), checked by _plain_text.
PLAIN_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069\\u2028\\u2029]*$"
PlainText = AfterValidator(_plain_text)
PlainSchema = Field(json_schema_extra={"pattern": PLAIN_PATTERN})
ShopName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128), PlainText, PlainSchema
]
Language = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,4})?$", max_length=8)]
Stream = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,64}$")]

_ZONES = frozenset(available_timezones())


def _known_zone(value: str) -> str:
    if value not in _ZONES:
        raise ValueError("unknown time zone (use an IANA name such as Europe/Warsaw)")
    return value


TimeZone = Annotated[str, StringConstraints(min_length=1, max_length=64), NoNul, AfterValidator(_known_zone)]


class Period(IntEnum):
    """The analytics periods, in days."""

    week = 7
    month = 30
    quarter = 90
    half_year = 180


class Horizon(IntEnum):
    """How many days of stock left count as "running out"."""

    d1 = 1
    d3 = 3
    d7 = 7
    d10 = 10
    d14 = 14


class Model(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors and pages -----------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable: not_found, invalid_request, unauthorized, ...")
    message: str
    details: Any = Field(default=None, description="for invalid_request: a list of {loc, msg, type}")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


# -- people ---------------------------------------------------------------------------------


class PersonIn(Input):
    username: Annotated[str, StringConstraints(max_length=64), PlainText, PlainSchema] | None = None
    first_name: Annotated[str, StringConstraints(max_length=128), PlainText, PlainSchema] | None = None
    last_name: Annotated[str, StringConstraints(max_length=128), PlainText, PlainSchema] | None = None
    language: Language | None = Field(default=None, description="ru, pl, en...; null: each shop's own")
    time_zone: TimeZone = "UTC"


class PersonOut(Model):
    telegram_id: int
    username: str | None
    first_name: str | None
    last_name: str | None
    language: str | None
    time_zone: str
    created_at: datetime
    updated_at: datetime
    inactive_since: datetime | None = Field(default=None, description="set while the person has blocked the bot")


# -- shops ----------------------------------------------------------------------------------


class ShopOut(BaseModel):
    id: int
    marketplace: Literal["allegro", "wb"]
    name: str
    status: Literal["active", "needs_reauth", "disabled", "broken"]
    status_reason: str | None
    role: Literal["owner", "member"]
    currency: str | None
    language: str | None
    created_at: datetime
    history_complete: bool = Field(
        description="the order history is backed up: the first sync finished and no history read "
        "(first sync's history, backfill) is still pending; false means 'history incomplete'"
    )
    paused: bool = Field(default=False, description="notifications paused by an owner (the backup goes on)")
    limited_until: dict[str, datetime] = Field(
        default_factory=dict,
        description="streams the marketplace limits this shop's token on (a WB Base token: statistics "
        "and the order feed 1 request per 2-3 hours), each with when it is read again; empty: none",
    )


TOKEN_PATTERN = r"^[\x21-\x7e]+$"


def _header_safe(value: SecretStr) -> SecretStr:
    # It travels in an HTTP header: printable ASCII only (the message must not quote it).
    raw = value.get_secret_value()
    if not (raw.isascii() and raw.isprintable() and " " not in raw):
        raise ValueError("must be printable ASCII without spaces")
    return value


class WbShopIn(Input):
    name: ShopName
    token: Annotated[SecretStr, AfterValidator(_header_safe)] = Field(
        min_length=1,
        max_length=4096,
        description="the WB API token; stored encrypted, never returned",
        json_schema_extra={"pattern": TOKEN_PATTERN},
    )


class AllegroLoginIn(Input):
    name: ShopName


class LoginTicketOut(BaseModel):
    id: str
    status: Literal["pending", "connected", "denied", "expired", "failed", "superseded"] = Field(
        description="superseded: the person started a newer login, and this code is no longer polled"
    )
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_at: datetime
    shop_id: int | None = None


class RenameIn(Input):
    name: ShopName


class InviteIn(Input):
    telegram_id: BodyTelegramId


class MemberOut(BaseModel):
    shop_id: int
    telegram_id: int
    role: Literal["owner", "member"]


# -- notifications --------------------------------------------------------------------------


class NotificationOut(BaseModel):
    id: int = Field(description="the highest outbox id this item covers; ack it as the cursor")
    ids: list[int] = Field(description="every outbox id in this item (more than one when grouped)")
    kind: str
    shop_id: int
    shop_name: str | None
    text: str = Field(description="Telegram HTML")
    image_url: str | None
    created_at: datetime


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next_cursor: int = Field(description="pass as `after` for the next page; ack it once delivered")


class AckIn(Input):
    cursor: BodyCursor
    # Bots built for the first version name the person here; documented: `telegram_id` in the query.
    telegram_id: SkipJsonSchema[BodyTelegramId | None] = None


class AckOut(BaseModel):
    telegram_id: int
    cursor: int = Field(description="the stored cursor (never moves backwards)")


class BatchPollIn(Input):
    telegram_ids: list[BodyTelegramId] = Field(min_length=1, max_length=200)
    limit: Annotated[int, Strict()] = Field(default=50, ge=1, le=200, description="per person")


class BatchPollItem(BaseModel):
    telegram_id: int
    items: list[NotificationOut]
    next_cursor: int


class BatchPollOut(BaseModel):
    results: list[BatchPollItem]
    unknown: list[int] = Field(description="telegram ids with no registered person")


# -- settings -------------------------------------------------------------------------------


def _json_integer(value: Any) -> Any:
    # An enum of integers, as strict as Strict() makes plain ints (which it cannot do for enums).
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("must be an integer")
    return value


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _keep() -> Any:
    """An optional setting: left out, it keeps its value. Not nullable: `null` is refused, as
    the schema says (no `default` in it either: the server's value is not a default)."""
    return Field(default=None, json_schema_extra=_no_default)


SettingBool = StrictBool
SettingInt = Annotated[int, Strict()]


class SettingsOut(Model):
    notifications_enabled: bool
    new_orders_enabled: bool
    order_buyouts_enabled: bool
    order_cancellations_enabled: bool
    order_returns_enabled: bool
    negative_reviews_enabled: bool
    critical_stocks_enabled: bool
    notify_unpaid_orders: bool
    review_rating_threshold: int
    critical_stock_threshold: int
    stock_horizon_days: int
    grouping_enabled: bool
    max_group_size: int
    group_timeout: int
    updated_at: datetime


class SettingsIn(Input):
    """Any subset; fields left out keep their value."""

    notifications_enabled: SettingBool = _keep()
    new_orders_enabled: SettingBool = _keep()
    order_buyouts_enabled: SettingBool = _keep()
    order_cancellations_enabled: SettingBool = _keep()
    order_returns_enabled: SettingBool = _keep()
    negative_reviews_enabled: SettingBool = _keep()
    critical_stocks_enabled: SettingBool = _keep()
    notify_unpaid_orders: SettingBool = _keep()
    review_rating_threshold: Annotated[SettingInt, Field(ge=0, le=5, description="0 turns review alerts off")] = _keep()
    critical_stock_threshold: Annotated[SettingInt, Field(ge=0, le=100_000)] = _keep()
    stock_horizon_days: Annotated[Horizon, BeforeValidator(_json_integer)] = _keep()
    grouping_enabled: SettingBool = _keep()
    max_group_size: Annotated[SettingInt, Field(ge=1, le=50)] = _keep()
    group_timeout: Annotated[SettingInt, Field(ge=0, le=86_400, description="seconds")] = _keep()


# -- data -----------------------------------------------------------------------------------


class PeriodOut(BaseModel):
    name: Literal["today", "yesterday", "7d", "30d"]
    start: datetime
    end: datetime
    orders: int
    amount: Decimal
    previous_orders: int
    previous_amount: Decimal
    growth: float | None = Field(description="order count vs the previous period, as a fraction; null if none then")


class SyncRunOut(Model):
    id: int
    stream: str
    kind: Literal["sync", "backfill"]
    status: Literal["running", "success", "failed", "skipped"]
    started_at: datetime
    finished_at: datetime | None
    fetched: int
    inserted: int
    updated: int
    unchanged: int
    stale_refused: int
    requests: int
    error: str | None
    flow_run_id: str | None


class ReviewsSummaryOut(BaseModel):
    since: datetime
    new: int
    unanswered: int
    negative: int = Field(description="new reviews at or below the person's rating threshold")
    average_stars: float | None
    average_stars_all_time: float | None
    total: int


class DashboardOut(BaseModel):
    shop_id: int
    currency: str | None
    time_zone: str
    periods: list[PeriodOut]
    critical_stocks: int
    reviews: ReviewsSummaryOut
    last_syncs: list[SyncRunOut]


class OrderOut(Model):
    id: int
    external_id: str
    basket_id: str | None
    status: str = Field(
        description="new, paid, processing, sent, delivered, cancelled or returned, as of now: a WB order is "
        "`delivered` or `returned` once the order feed or the sales report has its buyout or return"
    )
    marketplace_status: str | None
    fulfillment_status: str | None
    is_cancelled: bool
    total_amount: Decimal | None
    currency: str | None
    bought_at: datetime | None
    cancelled_at: datetime | None
    updated_at: datetime
    merged_into: str | None = Field(
        default=None,
        description="Allegro: the checkout-form id this form was merged into (the buyer paid it together "
        "with other purchases; Allegro answers 404 for this id since). The order is kept as it was last seen; "
        "its purchases are counted under the new form.",
    )
    in_statistics: bool = Field(
        default=True,
        description="false: a WB order the real-time order feed shows and WB statistics do not list yet (they "
        "refresh every 30 minutes, sometimes days late). It has the feed's fields only (no basket; "
        "`total_amount` is the feed's seller price; `marketplace_status` the feed's status) and is not counted "
        "in the dashboard or analytics; once statistics list it, the stored order takes its place in the list "
        "(with another id; this one still opens it).",
    )


class OrderLineOut(Model):
    sku: str | None
    name: str | None
    size: str | None
    quantity: int
    price: Decimal | None
    currency: str | None


class OrderDetailOut(OrderOut):
    revision: str | None
    source_updated_at: datetime | None
    first_seen_at: datetime
    lines: list[OrderLineOut]
    raw: dict[str, Any] = Field(description="the order as the marketplace sent it (backed up)")
    merged_from: list[str] = Field(
        default_factory=list,
        description="Allegro: the checkout-form ids merged into this one (their line items live on here)",
    )


class CriticalStockOut(BaseModel):
    sku: str
    name: str | None
    image_url: str | None
    total: int
    warehouses: dict[str, int]


class CriticalStockPage(Page[CriticalStockOut]):
    threshold: int


class TopProductOut(BaseModel):
    sku: str
    name: str | None
    quantity: int
    amount: Decimal


class DayOut(BaseModel):
    day: date
    orders: int
    buyouts: int
    returns: int
    revenue: Decimal


class AnalyticsOut(BaseModel):
    shop_id: int
    currency: str | None
    days: Period
    since: datetime
    until: datetime
    orders: int
    cancelled: int
    buyouts: int
    returns: int
    revenue: Decimal
    top_products: list[TopProductOut]
    daily: list[DayOut]


# -- sync control ---------------------------------------------------------------------------


class BackfillIn(Input):
    since: date
    until: date | None = None
    streams: list[Stream] | None = Field(default=None, max_length=20, description="default: every stream")


class SyncStartedOut(BaseModel):
    run_id: str = Field(description="the Prefect flow-run id")
    kind: Literal["sync", "backfill"]
    notes: list[str] = Field(
        default_factory=list, description="what the caller should know, e.g. a range cut to what the marketplace keeps"
    )


class SyncStatusOut(BaseModel):
    run_id: str
    state: str | None = Field(description="the Prefect state name (Scheduled, Running, Completed, Failed...)")
    finished: bool
    streams: list[SyncRunOut]


class HealthOut(BaseModel):
    status: Literal["ok", "unavailable"]
    database: bool | None = None
    schema_revision: str | None = None
    schema_head: str | None = None


class HealthUnavailableOut(HealthOut):
    """Not ready: the health fields, and the error every other 503 carries."""

    error: ErrorDetail


class ApiKeyInfo(BaseModel):
    id: int
    name: str


__all__ = ["AwareDatetime"]
