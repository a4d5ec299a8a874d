"""Data endpoints on a small hand-made WB shop: figures, paging, the raw payload, the chart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from storage.models import Order, OrderLine, Product, Review, Sale, Stock, SyncRun
from tests.api.conftest import Bot, person, shop

Q = {"telegram_id": 8}


@pytest.fixture
def wb(db: Session) -> int:
    sid = shop(db, owner=person(db, 8))
    now = datetime.now(UTC)
    for i in range(12):
        bought = now - timedelta(days=i * 3, minutes=5)
        order = Order(
            shop_id=sid,
            external_id=f"srid{i}",
            status="cancelled" if i == 1 else "new",
            is_cancelled=i == 1,
            total_amount=Decimal("100.00") + i,
            currency="RUB",
            bought_at=bought,
            raw={"srid": f"srid{i}", "n": i},
        )
        db.add(order)
        db.flush()
        db.add(
            OrderLine(
                order_id=order.id,
                shop_id=sid,
                line_key="1",
                sku="111" if i % 2 else "222",
                quantity=1,
                price=Decimal("100.00") + i,
                currency="RUB",
            )
        )
    db.add_all(
        [
            Sale(shop_id=sid, sale_id="S1", kind="buyout", sku="111", amount=Decimal("101"), sold_at=now, raw={}),
            Sale(shop_id=sid, sale_id="S2", kind="buyout", sku="222", amount=Decimal("102"), sold_at=now, raw={}),
            Sale(shop_id=sid, sale_id="R1", kind="return", sku="111", amount=Decimal("-101"), sold_at=now, raw={}),
            Product(shop_id=sid, sku="111", name="Shirt", image_url="https://img/111.jpg"),
            Stock(shop_id=sid, sku="111", size="M", warehouse="Koledino", quantity=2),
            Stock(shop_id=sid, sku="111", size="L", warehouse="Kazan", quantity=1),
            Stock(shop_id=sid, sku="222", size="", warehouse="Koledino", quantity=50),
            Review(shop_id=sid, external_id="r1", stars=1, created_at_source=now - timedelta(hours=2), raw={}),
            Review(shop_id=sid, external_id="r2", stars=5, is_answered=True, created_at_source=now, raw={}),
            Review(shop_id=sid, external_id="r3", stars=4, created_at_source=now - timedelta(days=30), raw={}),
            SyncRun(shop_id=sid, stream="wb_orders", status="success", started_at=now - timedelta(minutes=10)),
            SyncRun(shop_id=sid, stream="wb_orders", status="failed", error="timeout", started_at=now),
            SyncRun(shop_id=sid, stream="wb_sales", status="success", started_at=now),
        ]
    )
    db.commit()
    return sid


def test_dashboard(bot: Bot, wb: int) -> None:
    r = bot.get(f"/shops/{wb}/dashboard", params=Q)
    assert r.status_code == 200, r.text
    d = r.json()
    periods = {p["name"]: p for p in d["periods"]}
    assert set(periods) == {"today", "yesterday", "7d", "30d"}
    assert periods["30d"]["orders"] == 9  # i = 0,2..9 (i=1 cancelled, i>=10 older than 30 days)
    assert periods["today"]["orders"] in (0, 1)  # the newest is 5 minutes old: today unless just past midnight
    assert d["critical_stocks"] == 1  # sku 111: 3 in total, at or below the default 5
    assert d["reviews"]["unanswered"] == 2 and d["reviews"]["new"] == 2 and d["reviews"]["negative"] == 1
    assert {(s["stream"], s["status"]) for s in d["last_syncs"]} == {("wb_orders", "failed"), ("wb_sales", "success")}


def test_orders_paging_filter_and_detail(bot: Bot, wb: int) -> None:
    first = bot.get(f"/shops/{wb}/orders", params={**Q, "limit": 5}).json()
    second = bot.get(f"/shops/{wb}/orders", params={**Q, "limit": 5, "offset": 5}).json()
    assert first["total"] == 12 and len(first["items"]) == 5 and len(second["items"]) == 5
    assert not {o["id"] for o in first["items"]} & {o["id"] for o in second["items"]}
    assert first["items"][0]["external_id"] == "srid0"  # newest first
    cancelled = bot.get(f"/shops/{wb}/orders", params={**Q, "status": "cancelled"}).json()
    assert [o["external_id"] for o in cancelled["items"]] == ["srid1"]
    assert bot.get(f"/shops/{wb}/orders", params={**Q, "status": "lost"}).status_code == 422
    detail = bot.get(f"/shops/{wb}/orders/{first['items'][0]['id']}", params=Q).json()
    assert detail["raw"] == {"srid": "srid0", "n": 0} and detail["lines"][0]["sku"] == "222"
    assert detail["bought_at"].endswith(("Z", "+00:00"))


def test_critical_stocks(bot: Bot, wb: int) -> None:
    page = bot.get(f"/shops/{wb}/stocks/critical", params=Q).json()
    assert page["threshold"] == 5 and page["total"] == 1
    assert page["items"] == [
        {
            "sku": "111",
            "name": "Shirt",
            "image_url": "https://img/111.jpg",
            "total": 3,
            "warehouses": {"Koledino": 2, "Kazan": 1},
        }
    ]
    assert bot.get(f"/shops/{wb}/stocks/critical", params={**Q, "threshold": 100}).json()["total"] == 2


def test_reviews_summary(bot: Bot, wb: int) -> None:
    s = bot.get(f"/shops/{wb}/reviews/summary", params={**Q, "days": 7}).json()
    assert (s["new"], s["unanswered"], s["total"], s["average_stars"]) == (2, 2, 3, 3.0)
    assert s["average_stars_all_time"] == pytest.approx(3.33)


@pytest.mark.parametrize("days", [7, 30, 90, 180])
def test_analytics(bot: Bot, wb: int, days: int) -> None:
    a = bot.get(f"/shops/{wb}/analytics", params={**Q, "days": days}).json()
    assert a["days"] == days and len(a["daily"]) == days
    assert (a["buyouts"], a["returns"], Decimal(a["revenue"])) == (1 + 1, 1, Decimal("102"))
    assert a["orders"] == sum(d["orders"] for d in a["daily"])
    assert a["top_products"] and a["top_products"][0]["sku"] in {"111", "222"}
    png = bot.get(f"/shops/{wb}/analytics.png", params={**Q, "days": days})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")


def test_analytics_periods_are_fixed(bot: Bot, wb: int) -> None:
    r = bot.get(f"/shops/{wb}/analytics", params={**Q, "days": 8})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"] == ["query", "days"]


def test_sync_history_paged(bot: Bot, wb: int) -> None:
    page = bot.get(f"/shops/{wb}/sync-runs", params={**Q, "limit": 2}).json()
    assert page["total"] == 3 and len(page["items"]) == 2
    only = bot.get(f"/shops/{wb}/sync-runs", params={**Q, "stream": "wb_sales"}).json()
    assert [r["stream"] for r in only["items"]] == ["wb_sales"]
