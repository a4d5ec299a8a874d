"""Connecting a shop: /connect, a name, then a WB token (its message is deleted at once) or
an Allegro device login (the code and link, then "connected" or "expired" when it ends)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot, F
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.api import ApiClient, ApiError, ApiUnavailable
from bot.callbacks import MarketCb
from bot.routers import Feature
from bot.routers.common import valid_name, wake
from bot.texts import t
from bot.views import esc, when

log = logging.getLogger("sellerpulse.bot.connect")
feature = Feature("connect")

ENDED = {"connected", "denied", "expired", "failed"}


class Connect(StatesGroup):
    name = State()
    token = State()


@feature.message(Command("connect"))
async def connect(message: Message, state: FSMContext, lang: str) -> None:
    await state.clear()
    kb = InlineKeyboardBuilder()
    kb.button(text="Wildberries", callback_data=MarketCb(marketplace="wb"))
    kb.button(text="Allegro", callback_data=MarketCb(marketplace="allegro"))
    await message.answer(t(lang, "connect_choose"), reply_markup=kb.as_markup())


@feature.callback_query(MarketCb.filter())
async def marketplace_chosen(query: CallbackQuery, callback_data: MarketCb, state: FSMContext, lang: str) -> None:
    await query.answer()
    await state.set_state(Connect.name)
    await state.update_data(marketplace=callback_data.marketplace)
    await query.message.answer(t(lang, "ask_shop_name"))  # type: ignore[union-attr]


@feature.message(Connect.name, F.text)
async def named(
    message: Message, state: FSMContext, api: ApiClient, lang: str, logins: LoginWatcher, person: dict[str, Any]
) -> None:
    assert message.from_user is not None and message.text is not None
    name = valid_name(message.text)
    if name is None:
        await message.answer(t(lang, "name_invalid"))
        return
    marketplace = (await state.get_data()).get("marketplace")
    if marketplace == "wb":
        await state.update_data(name=name)
        await state.set_state(Connect.token)
        await message.answer(t(lang, "ask_wb_token"))
        return
    await state.clear()
    try:
        ticket = await api.start_allegro_login(message.from_user.id, name)
    except ApiUnavailable:
        await message.answer(t(lang, "allegro_unavailable"))
        return
    link = ticket.get("verification_uri_complete") or ticket["verification_uri"]
    sent = await message.answer(
        t(
            lang,
            "allegro_code",
            link=esc(link),
            code=esc(ticket["user_code"]),
            until=when(ticket["expires_at"], person.get("time_zone")),
        )  # fmt: skip
    )
    logins.watch(message.from_user.id, ticket, name, lang, sent.message_id)


@feature.message(Connect.token, F.text)
async def token_sent(message: Message, state: FSMContext, api: ApiClient, lang: str, delivery: Any = None) -> None:
    assert message.from_user is not None and message.text is not None
    token = message.text.strip()
    try:  # the token must not stay in the chat history
        await message.delete()
    except TelegramAPIError as exc:
        log.warning("could not delete the message with a WB token: %s", exc.message)
    name = (await state.get_data()).get("name") or "WB"
    try:
        shop = await api.connect_wb(message.from_user.id, name, token)
    except ApiUnavailable as exc:
        await state.clear()
        # WB did not answer the check (the API says "unverified"), or the API itself is down.
        await message.answer(t(lang, "wb_unverified" if exc.code == "unverified" else "api_down"))
        return
    except ApiError as exc:
        if exc.code == "invalid_token":  # WB answered 401: the only case we call it invalid
            await message.answer(t(lang, "wb_invalid"))
        elif exc.status == 422:
            await message.answer(t(lang, "wb_malformed"))
        else:
            raise
        return
    await state.clear()
    await message.answer(t(lang, "wb_connected", name=esc(shop["name"]), id=shop["id"]))
    wake(delivery)


class LoginWatcher:
    """Polls Allegro device logins the bot started and tells the person how each ended."""

    def __init__(self, bot: Bot, api: ApiClient, *, every: float, delivery: Any = None) -> None:
        self.bot, self.api, self.every, self.delivery = bot, api, every, delivery
        self._tasks: set[asyncio.Task[None]] = set()

    def watch(self, telegram_id: int, ticket: dict[str, Any], name: str, lang: str, message_id: int) -> None:
        task = asyncio.create_task(self._follow(telegram_id, ticket, name, lang, message_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow(self, telegram_id: int, ticket: dict[str, Any], name: str, lang: str, message_id: int) -> None:
        expires = datetime.fromisoformat(ticket["expires_at"].replace("Z", "+00:00"))
        status = ticket
        while status["status"] not in ENDED:
            await asyncio.sleep(self.every)
            try:
                status = await self.api.allegro_login(telegram_id, ticket["id"])
            except ApiError as exc:
                log.warning("Allegro login status unavailable: %s", exc.code)
                if datetime.now(UTC) > expires:
                    status = {**status, "status": "expired"}
        key = f"allegro_{status['status']}"
        await self.bot.send_message(
            telegram_id, t(lang, key, name=esc(name), id=status.get("shop_id")), reply_to_message_id=message_id
        )
        if status["status"] == "connected":
            wake(self.delivery)

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
