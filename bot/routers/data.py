"""A shop's data: /dashboard, /stocks (critical), /reviews (summary), /analytics (7/30/90/180
days, with the chart as a photo). A person with several shops picks one first."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, CallbackQuery, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.api import ApiClient
from bot.callbacks import PeriodCb, PickCb
from bot.routers import Feature
from bot.routers.common import shop_for
from bot.texts import t
from bot.views import esc, money, when, zone_of

feature = Feature("data")
PERIODS = (7, 30, 90, 180)
Show = Callable[[Message, ApiClient, int, dict[str, Any], str, dict[str, Any]], Awaitable[None]]


async def dashboard(message: Message, api: ApiClient, uid: int, shop: dict[str, Any], lang: str, person: Any) -> None:
    d = await api.dashboard(uid, shop["id"])
    cur = d["currency"]
    lines = [t(lang, "dash_title", name=esc(shop["name"]))]
    for p in d["periods"]:
        growth = "" if p["growth"] is None else f" ({p['growth'] * 100:+.0f}%)"
        lines.append(t(lang, f"period_{p['name']}", orders=p["orders"], amount=money(p["amount"], cur)) + growth)
    r = d["reviews"]
    lines.append(t(lang, "dash_stock", n=d["critical_stocks"]))
    lines.append(t(lang, "dash_reviews", new=r["new"], negative=r["negative"], unanswered=r["unanswered"]))
    last = max((s["finished_at"] or s["started_at"] for s in d["last_syncs"]), default=None)
    lines.append(t(lang, "dash_sync", at=when(last, zone_of(person))))
    await message.answer("\n".join(lines))


async def stocks(message: Message, api: ApiClient, uid: int, shop: dict[str, Any], lang: str, person: Any) -> None:
    page = await api.critical_stocks(uid, shop["id"])
    if not page["items"]:
        await message.answer(t(lang, "stocks_none", name=esc(shop["name"]), threshold=page["threshold"]))
        return
    lines = [t(lang, "stocks_title", name=esc(shop["name"]), threshold=page["threshold"], total=page["total"])]
    for s in page["items"]:
        lines.append(f"• {esc(s['name'] or s['sku'])} ({esc(s['sku'])}): <b>{s['total']}</b>")
    await message.answer("\n".join(lines))


async def reviews(message: Message, api: ApiClient, uid: int, shop: dict[str, Any], lang: str, person: Any) -> None:
    r = await api.reviews_summary(uid, shop["id"], days=7)
    avg = "-" if r["average_stars"] is None else f"{r['average_stars']:.1f}"
    avg_all = "-" if r["average_stars_all_time"] is None else f"{r['average_stars_all_time']:.1f}"
    await message.answer(
        t(
            lang,
            "reviews",
            name=esc(shop["name"]),
            new=r["new"],
            unanswered=r["unanswered"],
            negative=r["negative"],
            avg=avg,
            avg_all=avg_all,
            total=r["total"],
        )  # fmt: skip
    )


async def analytics(message: Message, api: ApiClient, uid: int, shop: dict[str, Any], lang: str, person: Any) -> None:
    kb = InlineKeyboardBuilder()
    for days in PERIODS:
        kb.button(text=t(lang, "days", n=days), callback_data=PeriodCb(shop_id=shop["id"], days=days))
    await message.answer(t(lang, "analytics_pick", name=esc(shop["name"])), reply_markup=kb.as_markup())


SHOWS: dict[str, Show] = {"dashboard": dashboard, "stocks": stocks, "reviews": reviews, "analytics": analytics}


@feature.message(Command(*SHOWS))
async def data_command(message: Message, command: CommandObject, api: ApiClient, lang: str, person: Any) -> None:
    """/dashboard, /stocks, /reviews, /analytics: for the person's shop, or after they pick one."""
    assert message.from_user is not None
    what = command.command.lower()
    shop = await shop_for(message, api, message.from_user.id, what, lang)
    if shop is not None:
        await SHOWS[what](message, api, message.from_user.id, shop, lang, person)


@feature.callback_query(PickCb.filter())
async def picked(query: CallbackQuery, callback_data: PickCb, api: ApiClient, lang: str, person: Any) -> None:
    await query.answer()
    shop = await api.shop(query.from_user.id, callback_data.shop_id)
    show = SHOWS.get(callback_data.what)
    if show is None:  # orders and sync have routers of their own, registered before this one
        return
    await show(query.message, api, query.from_user.id, shop, lang, person)  # type: ignore[arg-type]


@feature.callback_query(PeriodCb.filter())
async def period(query: CallbackQuery, callback_data: PeriodCb, api: ApiClient, lang: str) -> None:
    await query.answer()
    uid, sid, days = query.from_user.id, callback_data.shop_id, callback_data.days
    a = await api.analytics(uid, sid, days=days)
    shop = await api.shop(uid, sid)
    cur = a["currency"]
    lines = [t(lang, "analytics", name=esc(shop["name"]), days=days, orders=a["orders"], cancelled=a["cancelled"],
               buyouts=a["buyouts"], returns=a["returns"], revenue=money(a["revenue"], cur))]  # fmt: skip
    for p in a["top_products"][:5]:
        lines.append(f"• {esc(p['name'] or p['sku'])}: {p['quantity']} · {money(p['amount'], cur)}")
    png = await api.analytics_png(uid, sid, days=days)
    photo = BufferedInputFile(png, filename=f"analytics-{sid}-{days}d.png")
    caption = "\n".join(lines)
    await query.message.answer_photo(photo, caption=caption[:1024])  # type: ignore[union-attr]
