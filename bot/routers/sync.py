"""/sync: start a sync of a shop, then show its status (a button refreshes it)."""

from __future__ import annotations

from typing import Any

from aiogram import F
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.api import ApiClient, ApiError
from bot.callbacks import PickCb, SyncCb
from bot.routers import Feature
from bot.routers.common import shop_for
from bot.texts import t
from bot.views import esc

feature = Feature("sync")


def refresh(shop_id: int, run_id: str, lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=t(lang, "btn_status"), callback_data=SyncCb(shop_id=shop_id, run_id=run_id))
    return kb.as_markup()


async def start_sync(message: Message, api: ApiClient, uid: int, shop: dict[str, Any], lang: str) -> None:
    try:
        run = await api.start_sync(uid, shop["id"])
    except ApiError as exc:
        if exc.code == "shop_not_active":
            await message.answer(t(lang, "sync_not_active", name=esc(shop["name"])))
        elif exc.status == 503:
            await message.answer(t(lang, "sync_unavailable", message=esc(exc.message)))
        else:
            raise
        return
    text = t(lang, "sync_started", name=esc(shop["name"]), run=run["run_id"])
    await message.answer(text, reply_markup=refresh(shop["id"], run["run_id"], lang))


@feature.message(Command("sync"))
async def sync_cmd(message: Message, api: ApiClient, lang: str) -> None:
    assert message.from_user is not None
    shop = await shop_for(message, api, message.from_user.id, "sync", lang)
    if shop is not None:
        await start_sync(message, api, message.from_user.id, shop, lang)


@feature.callback_query(PickCb.filter(F.what == "sync"))
async def picked(query: CallbackQuery, callback_data: PickCb, api: ApiClient, lang: str) -> None:
    await query.answer()
    shop = await api.shop(query.from_user.id, callback_data.shop_id)
    await start_sync(query.message, api, query.from_user.id, shop, lang)  # type: ignore[arg-type]


@feature.callback_query(SyncCb.filter())
async def status(query: CallbackQuery, callback_data: SyncCb, api: ApiClient, lang: str) -> None:
    cb = callback_data
    try:
        run = await api.sync_status(query.from_user.id, cb.shop_id, cb.run_id)
    except ApiError as exc:
        if exc.status not in (404, 503):
            raise
        await query.answer(t(lang, "sync_unknown" if exc.status == 404 else "api_down"), show_alert=True)
        return
    await query.answer()
    state = run["state"] or t(lang, "sync_state_unknown")
    lines = [t(lang, "sync_status", run=run["run_id"], state=esc(state))]
    for s in run["streams"]:
        lines.append(f"• {esc(s['stream'])}: {esc(s['status'])} (+{s['inserted']} ~{s['updated']})")
    if run["finished"]:
        lines.append(t(lang, "sync_done"))
    markup = None if run["finished"] else refresh(cb.shop_id, cb.run_id, lang)
    text = "\n".join(lines)
    if query.message is not None and getattr(query.message, "text", None) != text:
        await query.message.edit_text(text, reply_markup=markup)  # type: ignore[union-attr]
