"""/settings through inline keyboards: every notification kind on or off, thresholds, grouping,
language and time zone. The API validates every value; a refused one changes nothing."""

from __future__ import annotations

from typing import Any

from aiogram import F
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.api import ApiClient, ApiError
from bot.callbacks import SettingCb
from bot.middlewares import People
from bot.routers import Feature
from bot.texts import LANGUAGES, t
from bot.views import zone_keyboard

feature = Feature("settings")

TOGGLES = (
    "notifications_enabled", "new_orders_enabled", "order_cancellations_enabled", "order_buyouts_enabled",
    "order_returns_enabled", "negative_reviews_enabled", "critical_stocks_enabled", "notify_unpaid_orders",
    "grouping_enabled",
)  # fmt: skip
CHOICES = {"review_rating_threshold": (0, 1, 2, 3, 4, 5), "stock_horizon_days": (1, 3, 7, 10, 14)}
NUMBERS = ("critical_stock_threshold", "max_group_size", "group_timeout")


class Typing(StatesGroup):
    number = State()


def menu(lang: str, s: dict[str, Any], person: dict[str, Any]) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for name in TOGGLES:
        mark = "✅" if s[name] else "❌"
        kb.button(text=f"{mark} {t(lang, 'set_' + name)}", callback_data=SettingCb(action="toggle", field=name))
    for name in CHOICES:
        kb.button(text=t(lang, "set_" + name, n=s[name]), callback_data=SettingCb(action="pick", field=name))
    for name in NUMBERS:
        kb.button(text=t(lang, "set_" + name, n=s[name]), callback_data=SettingCb(action="ask", field=name))
    language = person.get("language") or "auto"
    kb.button(text=t(lang, "set_language", value=t(lang, "lang_" + language)), callback_data=SettingCb(action="pick",
              field="language"))  # fmt: skip
    kb.button(text=t(lang, "set_time_zone", value=person.get("time_zone", "UTC")),
              callback_data=SettingCb(action="pick", field="time_zone"))  # fmt: skip
    kb.adjust(1)
    return kb.as_markup()


async def _menu(api: ApiClient, people: People, uid: int, lang: str) -> tuple[str, InlineKeyboardMarkup]:
    values = await api.settings(uid)
    person = await people.get(uid) or {}
    return t(lang, "settings_title"), menu(lang, values, person)


@feature.message(Command("settings"))
async def settings_cmd(message: Message, api: ApiClient, people: People, lang: str, state: FSMContext) -> None:
    assert message.from_user is not None
    await state.clear()
    text, markup = await _menu(api, people, message.from_user.id, lang)
    await message.answer(text, reply_markup=markup)


@feature.callback_query(SettingCb.filter(F.action == "toggle"))
async def toggle(query: CallbackQuery, callback_data: SettingCb, api: ApiClient, people: People, lang: str) -> None:
    uid, name = query.from_user.id, callback_data.field
    current = await api.settings(uid)
    if name not in TOGGLES:
        await query.answer(t(lang, "not_found"))
        return
    await api.put_settings(uid, {name: not current[name]})
    await query.answer(t(lang, "saved"))
    text, markup = await _menu(api, people, uid, lang)
    await query.message.edit_text(text, reply_markup=markup)  # type: ignore[union-attr]


@feature.callback_query(SettingCb.filter(F.action == "pick"))
async def pick(query: CallbackQuery, callback_data: SettingCb, lang: str) -> None:
    await query.answer()
    name = callback_data.field
    if name == "time_zone":
        await query.message.answer(t(lang, "ask_zone"), reply_markup=zone_keyboard(lang))  # type: ignore[union-attr]
        return
    kb = InlineKeyboardBuilder()
    values = LANGUAGES + ("auto",) if name == "language" else CHOICES.get(name, ())
    for value in values:
        label = t(lang, f"lang_{value}") if name == "language" else str(value)
        kb.button(text=label, callback_data=SettingCb(action="set", field=name, value=str(value)))
    kb.adjust(3)
    await query.message.answer(t(lang, "pick_" + name), reply_markup=kb.as_markup())  # type: ignore[union-attr]


@feature.callback_query(SettingCb.filter(F.action == "set"))
async def set_value(query: CallbackQuery, callback_data: SettingCb, api: ApiClient, people: People, lang: str) -> None:
    uid, name, raw = query.from_user.id, callback_data.field, callback_data.value
    if name == "language":
        saved = await api.put_person(uid, {"language": None if raw == "auto" else raw})
        people.put(uid, saved)
        lang = saved.get("language") or lang
    else:
        if not await _save(query.message, api, uid, name, raw, lang):  # type: ignore[arg-type]
            await query.answer()
            return
    await query.answer(t(lang, "saved"))
    text, markup = await _menu(api, people, uid, lang)
    await query.message.edit_text(text, reply_markup=markup)  # type: ignore[union-attr]


@feature.callback_query(SettingCb.filter(F.action == "ask"))
async def ask(query: CallbackQuery, callback_data: SettingCb, state: FSMContext, lang: str) -> None:
    await query.answer()
    await state.set_state(Typing.number)
    await state.update_data(field=callback_data.field)
    await query.message.answer(t(lang, "ask_" + callback_data.field))  # type: ignore[union-attr]


@feature.message(Typing.number, F.text)
async def typed(message: Message, state: FSMContext, api: ApiClient, people: People, lang: str) -> None:
    assert message.from_user is not None and message.text is not None
    name = (await state.get_data())["field"]
    if await _save(message, api, message.from_user.id, name, message.text.strip(), lang):
        await state.clear()
        text, markup = await _menu(api, people, message.from_user.id, lang)
        await message.answer(f"{t(lang, 'saved')}\n{text}", reply_markup=markup)


async def _save(message: Message, api: ApiClient, uid: int, name: str, raw: str, lang: str) -> bool:
    """A whole number, then the API's judgement; either refusal says why and changes nothing."""
    try:
        value = int(raw)
    except ValueError:
        await message.answer(t(lang, "not_a_number"))
        return False
    try:
        await api.put_settings(uid, {name: value})
    except ApiError as exc:
        if exc.status != 422:
            raise
        why = "; ".join(exc.field_messages()) or exc.message
        await message.answer(t(lang, "rejected", why=why))
        return False
    return True
