"""Every data command through the stand-in, on a hand-made WB shop: /dashboard, /orders
(pages, status filter, one order), /stocks, /reviews, /analytics (the chart as a photo),
/sync (start, status), and the shop picker for a person with two shops."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from storage.models import Order, OrderLine, Product, Review, Stock, SyncRun
from storage.people import register_person
from storage.shops import create_shop
from tests.bot.conftest import Harness, texts

# The harness lives on the session's loop: the bot's and the API's tasks must share it.
pytestmark = pytest.mark.asyncio(loop_scope="session")

OWNER = 701


def seed_shop(engine: Engine, *, telegram_id: int, name: str = "Shirts", orders: int = 12) -> int:
    now = datetime.now(UTC)
    with Session(engine) as db, db.begin():
        person, _ = register_person(db, telegram_id=telegram_id, profile={"language": "en"})
        shop = create_shop(db, marketplace="wb", name=name, credentials={"token": "t"}, owner_id=person.id)
        for i in range(orders):
            order = Order(
                shop_id=shop.id,
                external_id=f"srid{i}",
                status="cancelled" if i % 4 == 1 else "new",
                is_cancelled=i % 4 == 1,
                total_amount=Decimal("100.00") + i,
                currency="RUB",
                bought_at=now - timedelta(days=i, minutes=5),
                raw={"srid": f"srid{i}"},
            )
            db.add(order)
            db.flush()
            db.add(OrderLine(order_id=order.id, shop_id=shop.id, line_key="1", sku="111", name="Blue shirt",
                             quantity=1, price=Decimal("100.00") + i, currency="RUB"))  # fmt: skip
        db.add_all(
            [
                Product(shop_id=shop.id, sku="111", name="Blue shirt", image_url="https://img.test/111.jpg"),
                Stock(shop_id=shop.id, sku="111", size="M", warehouse="Koledino", quantity=2),
                Stock(shop_id=shop.id, sku="222", size="", warehouse="Koledino", quantity=50),
                Review(shop_id=shop.id, external_id="r1", stars=1, created_at_source=now - timedelta(hours=2), raw={}),
                Review(shop_id=shop.id, external_id="r2", stars=5, is_answered=True, created_at_source=now, raw={}),
                SyncRun(shop_id=shop.id, stream="wb_orders", status="success", started_at=now, finished_at=now),
            ]
        )
        return shop.id


async def test_dashboard_stocks_reviews(harness: Harness, clean_engine: Engine) -> None:
    seed_shop(clean_engine, telegram_id=OWNER)
    async with harness.running():
        chat = harness.chat(OWNER)
        dash = (await chat.say("/dashboard"))[0].text
        assert "Shirts" in dash and "30 days: 9 orders" in dash  # 12 in the last 12 days, 3 of them cancelled
        assert "Low stock: 1 products" in dash and "2 new, 1 negative, 1 unanswered" in dash
        stocks = (await chat.say("/stocks"))[0].text
        assert "Blue shirt (111): <b>2</b>" in stocks and "222" not in stocks
        reviews = (await chat.say("/reviews"))[0].text
        assert "2 new, 1 unanswered, 1 negative" in reviews and "Average 3.0" in reviews


async def test_orders_pages_filter_and_one_order(harness: Harness, clean_engine: Engine) -> None:
    seed_shop(clean_engine, telegram_id=OWNER)
    async with harness.running():
        chat = harness.chat(OWNER)
        first = (await chat.say("/orders"))[0]
        assert "orders 1–8 of 12" in first.text
        page = await chat.press_edit("▶")
        assert "orders 9–12 of 12" in page.text
        await chat.press_edit("🔎 Status")
        filtered = await chat.press_edit("cancelled")
        assert "cancelled: orders 1–3 of 3" in filtered.text
        detail = await chat.press_edit(_first_order_button(filtered))
        assert "Order srid" in detail.text and "Status: cancelled" in detail.text
        assert "Blue shirt × 1" in detail.text
        back = await chat.press_edit("◀ Back")
        assert "cancelled: orders 1–3 of 3" in back.text


def _first_order_button(entry) -> str:
    return entry.reply_markup["inline_keyboard"][0][0]["text"]


async def test_analytics_sends_the_chart(harness: Harness, clean_engine: Engine) -> None:
    seed_shop(clean_engine, telegram_id=OWNER)
    async with harness.running():
        chat = harness.chat(OWNER)
        pick = (await chat.say("/analytics"))[0]
        labels = [b["text"] for row in pick.reply_markup["inline_keyboard"] for b in row]
        assert labels == ["7 days", "30 days", "90 days", "180 days"]
        photo = (await chat.press("30 days"))[0]
        assert photo.kind == "photo" and photo.photo["upload"]["bytes"] > 1000  # a PNG, uploaded
        assert "30 days: 9 orders (3 cancelled)" in photo.text and "Blue shirt" in photo.text


async def test_sync_start_and_status(harness: Harness, clean_engine: Engine) -> None:
    shop_id = seed_shop(clean_engine, telegram_id=OWNER)
    async with harness.running():
        chat = harness.chat(OWNER)
        started = (await chat.say("/sync"))[0]
        assert "Sync of Shirts started" in started.text
        (run_id,) = [r for r, s in harness.launcher.runs.items() if s.shop_id == shop_id]
        assert run_id in started.text
        status = await chat.press_edit("🔄 Status")
        assert f"Run <code>{run_id}</code>: Scheduled" in status.text


async def test_two_shops_ask_which_one(harness: Harness, clean_engine: Engine) -> None:
    seed_shop(clean_engine, telegram_id=OWNER)
    with Session(clean_engine) as db, db.begin():
        person, _ = register_person(db, telegram_id=OWNER, profile={})
        create_shop(db, marketplace="allegro", name="Kubki", credentials={"access_token": "a"}, owner_id=person.id)
    async with harness.running():
        chat = harness.chat(OWNER)
        pick = (await chat.say("/dashboard"))[0]
        assert "Which shop?" in pick.text
        dash = await chat.press("Kubki")
        assert "Kubki" in dash[0].text and "30 days: 0 orders" in dash[0].text
        await chat.say("/orders")
        orders = await chat.press("Shirts")
        assert "orders 1–8 of 12" in texts(orders)
