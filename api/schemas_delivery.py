"""Request and response models of the bot's delivery and sharing endpoints
(api/routes/delivery.py, api/routes/sharing.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from api.schemas import Id, Input, NoNul, TelegramId

Detail = Annotated[str, StringConstraints(max_length=500), NoNul]


class RecipientsOut(BaseModel):
    items: list[int] = Field(description="Telegram ids of active people who belong to a shop")
    next_after: int = Field(description="pass as `after` for the next page; the same value: the end")


class InactiveIn(Input):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")] = "blocked"


class DeliveryStateOut(BaseModel):
    telegram_id: int
    active: bool
    inactive_since: datetime | None
    inactive_reason: str | None
    resumed: bool = Field(default=False, description="true when this call reactivated the person")


class LookupIn(Input):
    telegram_id: TelegramId
    ids: list[Id] = Field(min_length=1, max_length=2000, description="notification ids")


class LookupOut(BaseModel):
    recorded: list[int] = Field(description="the ids that already have a delivery record")


class RecordIn(Input):
    telegram_id: TelegramId
    item_id: Id = Field(description="the item's id (the highest notification id in it)")
    ids: list[Id] = Field(min_length=1, max_length=200, description="every notification id of the item")
    status: Literal["sent", "failed", "skipped"]
    telegram_message_id: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None
    detail: Detail | None = Field(default=None, description="why it failed or was skipped (never a secret)")
    attempts: Annotated[int, Field(ge=1, le=32_000)] = 1


class RecordOut(BaseModel):
    recorded: int = Field(description="records written now (ids recorded before keep their first record)")


class DeliveryRecordOut(BaseModel):
    telegram_id: int
    notification_id: int
    item_id: int
    status: Literal["sent", "failed", "skipped"]
    telegram_message_id: int | None
    detail: str | None
    attempts: int
    recorded_at: datetime


class PausedShopOut(BaseModel):
    shop_id: int
    paused_at: datetime


class PausedShopsOut(BaseModel):
    shops: list[PausedShopOut]


class InviteOut(BaseModel):
    code: str = Field(description="shown once; the invitee sends it (or opens t.me/<bot>?start=<code>)")
    shop_id: int
    expires_at: datetime


class AcceptInviteIn(Input):
    telegram_id: TelegramId
    code: Annotated[str, StringConstraints(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
