"""Small formatting helpers and keyboards shared by the routers (no API calls here)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import PickCb, ZoneCb
from bot.texts import t

ZONES = (
    "Europe/Moscow", "Europe/Warsaw", "Europe/Kyiv", "Europe/Minsk", "Asia/Almaty",
    "Asia/Yekaterinburg", "Asia/Novosibirsk", "Europe/Berlin", "Europe/London", "UTC",
)  # fmt: skip
MARKETPLACES = {"wb": "Wildberries", "allegro": "Allegro"}


def esc(value: Any) -> str:
    """Text from the API or a person, safe inside Telegram HTML."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def money(amount: Any, currency: str | None) -> str:
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return "-"
    text = f"{value:,.2f}".replace(",", "\u202f")
    return f"{text} {currency}" if currency else text


def when(value: str | None, zone: str | None) -> str:
    if not value:
        return "-"
    at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    try:
        tz = ZoneInfo(zone or "UTC")
    except (KeyError, ValueError):
        tz = ZoneInfo("UTC")
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def zone_of(person: dict[str, Any] | None) -> str:
    return (person or {}).get("time_zone") or "UTC"


def shop_status(lang: str, shop: dict[str, Any]) -> str:
    status = t(lang, f"status_{shop['status']}")
    return status + (t(lang, "paused_mark") if shop.get("paused") else "")


def shop_line(lang: str, shop: dict[str, Any]) -> str:
    market = MARKETPLACES.get(shop["marketplace"], shop["marketplace"])
    return f"{esc(shop['name'])} · {market} · {shop_status(lang, shop)} · {t(lang, 'role_' + shop['role'])}"


def zone_keyboard(lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for zone in ZONES:
        kb.button(text=zone, callback_data=ZoneCb(zone=zone))
    kb.button(text=t(lang, "btn_other_zone"), callback_data=ZoneCb(zone="other"))
    kb.adjust(2)
    return kb.as_markup()


def pick_keyboard(what: str, shops: Sequence[dict[str, Any]]) -> InlineKeyboardMarkup:
    def button(shop: dict[str, Any]) -> InlineKeyboardButton:
        return InlineKeyboardButton(text=shop["name"], callback_data=PickCb(what=what, shop_id=shop["id"]).pack())

    return InlineKeyboardMarkup(inline_keyboard=[[button(s)] for s in shops])
