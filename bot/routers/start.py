"""Onboarding: /start (register, language from Telegram, time zone asked once, invite links,
coming back after a block), /help, /cancel, /timezone."""

from __future__ import annotations

from typing import Any

from aiogram import Bot, F
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message

from bot.api import ApiClient, ApiError
from bot.callbacks import ZoneCb
from bot.middlewares import People
from bot.routers import Feature
from bot.routers.common import join_shop, wake
from bot.texts import LANGUAGES, language_of, t
from bot.views import esc, zone_keyboard

feature = Feature("start")


class Onboarding(StatesGroup):
    zone = State()  # typing a time zone


@feature.message(CommandStart())
async def start(
    message: Message,
    command: CommandObject,
    api: ApiClient,
    people: People,
    person: dict[str, Any] | None,
    state: FSMContext,
    delivery: Any = None,
) -> None:
    user = message.from_user
    assert user is not None
    await state.clear()
    profile: dict[str, Any] = {"username": user.username, "first_name": user.first_name, "last_name": user.last_name}
    code = (user.language_code or "")[:2]
    if person is None and code in LANGUAGES:
        profile["language"] = code
    saved = await api.put_person(user.id, profile)
    people.put(user.id, saved)
    lang = language_of(saved, user.language_code)
    name = esc(user.first_name or user.username or "")
    if saved.get("inactive_since"):
        back = await api.set_active(user.id)
        people.forget(user.id)
        if back.get("resumed"):
            await message.answer(t(lang, "reactivated"))
        wake(delivery)
    if command.args:
        await join_shop(message, api, user.id, command.args.strip(), lang, delivery)
    if person is None:
        await message.answer(t(lang, "welcome_new", name=name))
        await message.answer(t(lang, "ask_zone"), reply_markup=zone_keyboard(lang))
    elif not command.args:
        await message.answer(t(lang, "welcome_back", name=name))


@feature.message(Command("help"))
async def help_(message: Message, lang: str) -> None:
    await message.answer(t(lang, "help"))


@feature.message(Command("cancel"))
async def cancel(message: Message, state: FSMContext, lang: str) -> None:
    had = await state.get_state()
    await state.clear()
    await message.answer(t(lang, "cancelled" if had else "nothing_to_cancel"))


@feature.message(Command("timezone"))
async def timezone(message: Message, lang: str, person: dict[str, Any]) -> None:
    await message.answer(t(lang, "zone_now", zone=person.get("time_zone", "UTC")), reply_markup=zone_keyboard(lang))


@feature.callback_query(ZoneCb.filter())
async def zone_picked(
    query: CallbackQuery, callback_data: ZoneCb, api: ApiClient, people: People, state: FSMContext, lang: str
) -> None:
    await query.answer()
    if callback_data.zone == "other":
        await state.set_state(Onboarding.zone)
        await query.message.answer(t(lang, "type_zone"))  # type: ignore[union-attr]
        return
    await _set_zone(query.message, query.from_user.id, callback_data.zone, api, people, lang)  # type: ignore[arg-type]


@feature.message(Onboarding.zone, F.text)
async def zone_typed(message: Message, api: ApiClient, people: People, state: FSMContext, lang: str) -> None:
    assert message.from_user is not None and message.text is not None
    if await _set_zone(message, message.from_user.id, message.text.strip(), api, people, lang):
        await state.clear()


async def _set_zone(message: Message, telegram_id: int, zone: str, api: ApiClient, people: People, lang: str) -> bool:
    try:
        saved = await api.put_person(telegram_id, {"time_zone": zone})
    except ApiError as exc:
        if exc.status != 422:
            raise
        await message.answer(t(lang, "zone_invalid"))
        return False
    people.put(telegram_id, saved)
    await message.answer(t(lang, "zone_saved", zone=esc(zone)))
    return True


async def set_commands(bot: Bot) -> None:
    """The command menu in each language Telegram clients show."""
    from aiogram.types import BotCommand

    for lang in LANGUAGES:
        commands = [BotCommand(command=c, description=t(lang, f"cmd_{c}")) for c in COMMANDS]
        await bot.set_my_commands(commands, language_code=None if lang == "en" else lang)


COMMANDS = ("dashboard", "orders", "stocks", "reviews", "analytics", "sync", "shops", "connect", "settings", "help")
