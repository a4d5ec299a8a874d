"""/shops: the list, each shop's card (rename, pause or resume, invite, leave, remove with
confirmation), and /join with an invite code."""

from __future__ import annotations

from typing import Any

from aiogram import Bot, F
from aiogram.filters import Command, CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.api import ApiClient, ApiError
from bot.callbacks import ShopCb
from bot.routers import Feature
from bot.routers.common import join_shop, valid_name
from bot.texts import t
from bot.views import esc, shop_line, shop_status, when, zone_of

feature = Feature("shops")


class Rename(StatesGroup):
    name = State()


@feature.message(Command("shops"))
async def list_shops(message: Message, api: ApiClient, lang: str) -> None:
    assert message.from_user is not None
    shops = await api.shops(message.from_user.id)
    if not shops:
        await message.answer(t(lang, "no_shops"))
        return
    kb = InlineKeyboardBuilder()
    for s in shops:
        kb.button(text=s["name"], callback_data=ShopCb(action="card", shop_id=s["id"]))
    kb.adjust(1)
    lines = "\n".join(f"• {shop_line(lang, s)}" for s in shops)
    await message.answer(f"{t(lang, 'shops_title')}\n{lines}", reply_markup=kb.as_markup())


def card(lang: str, shop: dict[str, Any]) -> tuple[str, InlineKeyboardMarkup]:
    kb = InlineKeyboardBuilder()
    sid = shop["id"]
    if shop["role"] == "owner":
        kb.button(text=t(lang, "btn_rename"), callback_data=ShopCb(action="rename", shop_id=sid))
        toggle = "resume" if shop.get("paused") else "pause"
        kb.button(text=t(lang, f"btn_{toggle}"), callback_data=ShopCb(action=toggle, shop_id=sid))
        kb.button(text=t(lang, "btn_invite"), callback_data=ShopCb(action="invite", shop_id=sid))
        kb.button(text=t(lang, "btn_remove"), callback_data=ShopCb(action="remove", shop_id=sid))
    kb.button(text=t(lang, "btn_leave"), callback_data=ShopCb(action="leave", shop_id=sid))
    kb.adjust(2)
    text = t(lang, "shop_card", name=esc(shop["name"]), line=shop_line(lang, shop), status=shop_status(lang, shop))
    if shop.get("status_reason"):
        text += f"\n<i>{esc(shop['status_reason'])}</i>"
    return text, kb.as_markup()


@feature.callback_query(ShopCb.filter(F.action == "card"))
async def show_card(query: CallbackQuery, callback_data: ShopCb, api: ApiClient, lang: str) -> None:
    await query.answer()
    shop = await api.shop(query.from_user.id, callback_data.shop_id)
    text, markup = card(lang, shop)
    await query.message.answer(text, reply_markup=markup)  # type: ignore[union-attr]


@feature.callback_query(ShopCb.filter(F.action.in_({"pause", "resume"})))
async def pause(query: CallbackQuery, callback_data: ShopCb, api: ApiClient, lang: str, delivery: Any = None) -> None:
    shop = await api.pause_shop(query.from_user.id, callback_data.shop_id, paused=callback_data.action == "pause")
    await query.answer(t(lang, "paused" if shop["paused"] else "resumed", name=shop["name"]))
    text, markup = card(lang, shop)
    await query.message.edit_text(text, reply_markup=markup)  # type: ignore[union-attr]
    if delivery is not None:
        delivery.wake()


@feature.callback_query(ShopCb.filter(F.action == "rename"))
async def ask_name(query: CallbackQuery, callback_data: ShopCb, state: FSMContext, lang: str) -> None:
    await query.answer()
    await state.set_state(Rename.name)
    await state.update_data(shop_id=callback_data.shop_id)
    await query.message.answer(t(lang, "ask_new_name"))  # type: ignore[union-attr]


@feature.message(Rename.name, F.text)
async def renamed(message: Message, state: FSMContext, api: ApiClient, lang: str) -> None:
    assert message.from_user is not None and message.text is not None
    name = valid_name(message.text)
    if name is None:
        await message.answer(t(lang, "name_invalid"))
        return
    shop_id = (await state.get_data())["shop_id"]
    await state.clear()
    shop = await api.rename_shop(message.from_user.id, shop_id, name)
    await message.answer(t(lang, "renamed", name=esc(shop["name"])))


@feature.callback_query(ShopCb.filter(F.action == "invite"))
async def invite(query: CallbackQuery, callback_data: ShopCb, api: ApiClient, bot: Bot, lang: str, person: Any) -> None:
    await query.answer()
    made = await api.create_invite(query.from_user.id, callback_data.shop_id)
    shop = await api.shop(query.from_user.id, callback_data.shop_id)
    me = await bot.me()
    link = f"https://t.me/{me.username}?start={made['code']}"
    text = t(lang, "invite", name=esc(shop["name"]), code=made["code"], link=link,
             until=when(made["expires_at"], zone_of(person)))  # fmt: skip
    await query.message.answer(text)  # type: ignore[union-attr]


@feature.message(Command("join"))
async def join(message: Message, command: CommandObject, api: ApiClient, lang: str, delivery: Any = None) -> None:
    assert message.from_user is not None
    if not command.args:
        await message.answer(t(lang, "join_usage"))
        return
    await join_shop(message, api, message.from_user.id, command.args.strip(), lang, delivery)


@feature.callback_query(ShopCb.filter(F.action == "leave"))
async def leave(query: CallbackQuery, callback_data: ShopCb, api: ApiClient, lang: str) -> None:
    shop = await api.shop(query.from_user.id, callback_data.shop_id)
    await api.leave_shop(query.from_user.id, callback_data.shop_id)
    await query.answer()
    await query.message.edit_text(t(lang, "left", name=esc(shop["name"])))  # type: ignore[union-attr]


@feature.callback_query(ShopCb.filter(F.action == "remove"))
async def confirm_remove(query: CallbackQuery, callback_data: ShopCb, api: ApiClient, lang: str) -> None:
    await query.answer()
    shop = await api.shop(query.from_user.id, callback_data.shop_id)
    if shop["role"] != "owner":
        await query.message.answer(t(lang, "owners_only"))  # type: ignore[union-attr]
        return
    kb = InlineKeyboardBuilder()
    kb.button(text=t(lang, "btn_remove_keep"), callback_data=ShopCb(action="remove_keep", shop_id=shop["id"]))
    kb.button(text=t(lang, "btn_remove_purge"), callback_data=ShopCb(action="remove_purge", shop_id=shop["id"]))
    kb.button(text=t(lang, "btn_cancel"), callback_data=ShopCb(action="card", shop_id=shop["id"]))
    kb.adjust(1)
    await query.message.answer(t(lang, "confirm_remove", name=esc(shop["name"])), reply_markup=kb.as_markup())  # type: ignore[union-attr]


@feature.callback_query(ShopCb.filter(F.action.in_({"remove_keep", "remove_purge"})))
async def remove(query: CallbackQuery, callback_data: ShopCb, api: ApiClient, lang: str) -> None:
    purge = callback_data.action == "remove_purge"
    try:
        shop = await api.shop(query.from_user.id, callback_data.shop_id)
    except ApiError as exc:
        if exc.status != 404:
            raise
        await query.answer(t(lang, "not_found"))
        return
    await api.remove_shop(query.from_user.id, callback_data.shop_id, purge=purge)
    await query.answer()
    await query.message.edit_text(t(lang, "removed_purged" if purge else "removed", name=esc(shop["name"])))  # type: ignore[union-attr]
