"""Typed callback data of every inline button (at most 64 bytes each, as Telegram allows)."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class ZoneCb(CallbackData, prefix="tz"):
    zone: str  # an IANA name, or "other" to type one


class MarketCb(CallbackData, prefix="mk"):
    marketplace: str  # wb | allegro


class ShopCb(CallbackData, prefix="sh"):
    """A shop's menu and its actions: card, rename, pause, resume, invite, leave, remove,
    remove_keep, remove_purge."""

    action: str
    shop_id: int


class PickCb(CallbackData, prefix="pk"):
    """A shop picked for a data command: dashboard, orders, stocks, reviews, analytics, sync."""

    what: str
    shop_id: int


class OrdersCb(CallbackData, prefix="op"):
    shop_id: int
    status: str = "all"
    offset: int = 0
    filters: bool = False  # show the status filter instead of the page


class OrderCb(CallbackData, prefix="ov"):
    shop_id: int
    order_id: int
    status: str = "all"
    offset: int = 0


class PeriodCb(CallbackData, prefix="an"):
    shop_id: int
    days: int


class SyncCb(CallbackData, prefix="sr"):
    shop_id: int
    run_id: str


class SettingCb(CallbackData, prefix="st"):
    """menu | toggle FIELD | ask FIELD (type a number) | pick FIELD (choices) | set FIELD VALUE"""

    action: str
    field: str = ""
    value: str = ""
