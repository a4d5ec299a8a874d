"""Steps several routers share: the shop a data command is about, joining by invite."""

from __future__ import annotations

from typing import Any

from aiogram.types import Message

from bot.api import ApiClient, ApiError
from bot.texts import t
from bot.views import esc, pick_keyboard

NAME_LIMIT = 128


def valid_name(text: str) -> str | None:
    """A shop name as the API takes it (1 to 128 characters), and not a command typed by mistake."""
    name = text.strip()
    return name if 1 <= len(name) <= NAME_LIMIT and not name.startswith("/") else None


def wake(delivery: Any) -> None:
    """Tell the delivery loop someone new may be waiting for notifications."""
    if delivery is not None:
        delivery.wake()


async def shop_for(message: Message, api: ApiClient, telegram_id: int, what: str, lang: str) -> dict[str, Any] | None:
    """The person's only shop, or None after asking which one (or saying there is none)."""
    shops = [s for s in await api.shops(telegram_id) if s["status"] != "disabled"]
    if not shops:
        await message.answer(t(lang, "no_shops"))
        return None
    if len(shops) == 1:
        return shops[0]
    await message.answer(t(lang, "pick_shop"), reply_markup=pick_keyboard(what, shops))
    return None


async def join_shop(message: Message, api: ApiClient, telegram_id: int, code: str, lang: str, delivery: Any) -> None:
    try:
        member = await api.accept_invite(telegram_id, code)
    except ApiError as exc:
        if exc.status not in (404, 422):
            raise
        await message.answer(t(lang, "join_refused"))
        return
    shop = await api.shop(telegram_id, member["shop_id"])
    await message.answer(t(lang, "joined", name=esc(shop["name"]), role=t(lang, "role_" + member["role"])))
    wake(delivery)
