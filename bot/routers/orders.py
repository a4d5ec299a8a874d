"""/orders: a page of the shop's orders with inline buttons (previous/next, a status filter,
one order in full), edited in place."""

from __future__ import annotations

from typing import Any

from aiogram import F
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.api import ApiClient
from bot.callbacks import OrderCb, OrdersCb, PickCb
from bot.routers import Feature
from bot.routers.common import shop_for
from bot.texts import t
from bot.views import esc, money, when, zone_of

feature = Feature("orders")
PAGE = 8
STATUSES = ("new", "paid", "processing", "sent", "delivered", "cancelled", "returned")


async def page_view(
    api: ApiClient, uid: int, shop_id: int, status: str, offset: int, lang: str, person: Any
) -> tuple[str, InlineKeyboardMarkup]:
    shop = await api.shop(uid, shop_id)
    page = await api.orders(uid, shop_id, status=None if status == "all" else status, limit=PAGE, offset=offset)
    label = "" if status == "all" else f" · {t(lang, 'order_' + status)}"
    kb = InlineKeyboardBuilder()
    if not page["items"]:
        text = t(lang, "orders_empty", name=esc(shop["name"]), filter=label)
    else:
        last = offset + len(page["items"])
        text = t(lang, "orders_title", name=esc(shop["name"]), filter=label, first=offset + 1, last=last,
                 total=page["total"])  # fmt: skip
        for o in page["items"]:
            amount = money(o["total_amount"], o["currency"]) if o["total_amount"] is not None else ""
            row = f"{when(o['bought_at'], zone_of(person))} · {t(lang, 'order_' + o['status'])} · {amount}"
            kb.button(text=row, callback_data=OrderCb(shop_id=shop_id, order_id=o["id"], status=status, offset=offset))
    nav = []
    if offset > 0:
        nav.append(("◀", OrdersCb(shop_id=shop_id, status=status, offset=max(0, offset - PAGE))))
    if offset + PAGE < page["total"]:
        nav.append(("▶", OrdersCb(shop_id=shop_id, status=status, offset=offset + PAGE)))
    for text_, cb in nav:
        kb.button(text=text_, callback_data=cb)
    kb.button(text=t(lang, "btn_filter"), callback_data=OrdersCb(shop_id=shop_id, status=status, filters=True))
    kb.adjust(*([1] * len(page["items"])), max(1, len(nav)), 1)
    return text, kb.as_markup()


def filter_view(shop_id: int, lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=t(lang, "order_all"), callback_data=OrdersCb(shop_id=shop_id, status="all"))
    for s in STATUSES:
        kb.button(text=t(lang, "order_" + s), callback_data=OrdersCb(shop_id=shop_id, status=s))
    kb.adjust(2)
    return kb.as_markup()


async def show_orders(message: Message, api: ApiClient, uid: int, shop_id: int, lang: str, person: Any) -> None:
    text, markup = await page_view(api, uid, shop_id, "all", 0, lang, person)
    await message.answer(text, reply_markup=markup)


@feature.message(Command("orders"))
async def orders_cmd(message: Message, api: ApiClient, lang: str, person: Any) -> None:
    assert message.from_user is not None
    shop = await shop_for(message, api, message.from_user.id, "orders", lang)
    if shop is not None:
        await show_orders(message, api, message.from_user.id, shop["id"], lang, person)


@feature.callback_query(PickCb.filter(F.what == "orders"))
async def picked(query: CallbackQuery, callback_data: PickCb, api: ApiClient, lang: str, person: Any) -> None:
    await query.answer()
    await show_orders(query.message, api, query.from_user.id, callback_data.shop_id, lang, person)  # type: ignore[arg-type]


@feature.callback_query(OrdersCb.filter())
async def navigate(query: CallbackQuery, callback_data: OrdersCb, api: ApiClient, lang: str, person: Any) -> None:
    await query.answer()
    cb = callback_data
    if cb.filters:
        await query.message.edit_text(t(lang, "pick_status"), reply_markup=filter_view(cb.shop_id, lang))  # type: ignore[union-attr]
        return
    text, markup = await page_view(api, query.from_user.id, cb.shop_id, cb.status, cb.offset, lang, person)
    await query.message.edit_text(text, reply_markup=markup)  # type: ignore[union-attr]


@feature.callback_query(OrderCb.filter())
async def order(query: CallbackQuery, callback_data: OrderCb, api: ApiClient, lang: str, person: Any) -> None:
    await query.answer()
    cb = callback_data
    o = await api.order(query.from_user.id, cb.shop_id, cb.order_id)
    tz = zone_of(person)
    lines = [
        t(lang, "order_head", id=esc(o["external_id"])),
        t(lang, "order_status", status=t(lang, "order_" + o["status"]), raw=esc(o["marketplace_status"] or "-")),
        t(lang, "order_bought", at=when(o["bought_at"], tz)),
        t(lang, "order_total", total=money(o["total_amount"], o["currency"]) if o["total_amount"] is not None else "-"),
    ]
    if o["cancelled_at"]:
        lines.append(t(lang, "order_cancelled_at", at=when(o["cancelled_at"], tz)))
    for line in o["lines"]:
        price = money(line["price"], line["currency"]) if line["price"] is not None else ""
        lines.append(f"• {esc(line['name'] or line['sku'] or '?')} × {line['quantity']} {price}")
    kb = InlineKeyboardBuilder()
    kb.button(text=t(lang, "btn_back"), callback_data=OrdersCb(shop_id=cb.shop_id, status=cb.status, offset=cb.offset))
    await query.message.edit_text("\n".join(lines), reply_markup=kb.as_markup())  # type: ignore[union-attr]
