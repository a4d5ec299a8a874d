"""The order feed's rules (pure): one draft per real transition of a unit, under the keys the
statistics rules use; the cancel type and a defective return shown in ru/pl/en."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sellerpulse.notify import rules
from sellerpulse.notify.feed_rules import for_wb_feed
from sellerpulse.notify.render import ShopView, render
from storage.changes import RowChange
from storage.upserts import WB_FEED
from tests.notify.factories import NOTIFY_FROM, NOW, WB, first_seen, sale, wb_order

SHOP = ShopView(7, "Мой магазин", "wb", "RUB", None)


def unit(status: str, *, at=None, cancel_type: str | None = None, ordered=None, **extra: Any) -> dict[str, Any]:
    at = at or NOW - timedelta(minutes=1)
    return {
        "srid": "s1",
        "status": status,
        "cancel_type": cancel_type,
        "status_at": at,
        "ordered_at": ordered or NOW - timedelta(hours=3),
        "sku": "1001",
        "price": Decimal("1500.00"),
        "currency": "RUB",
        "is_fbs": False,
        "source_updated_at": at,
        "raw": {"warehouseName": "Склад WB", "destinationDistrict": "Центральный"},
        **extra,
    }


def moved(old: dict[str, Any], new: dict[str, Any]) -> RowChange:
    return RowChange("s1", {c: old.get(c) for c in WB_FEED.tracked}, new)


def keys(drafts: list) -> list[str]:
    return [d.dedupe_key for d in drafts]


def test_each_stage_under_the_key_statistics_use_for_it() -> None:
    created = unit("created")
    assert keys(for_wb_feed(WB, [first_seen("s1", created)], now=NOW)) == ["7:new_order:s1:seen"]
    stats_new = rules.for_orders(WB, [first_seen("s1", wb_order("s1"))], now=NOW)
    assert keys(stats_new) == ["7:new_order:s1:seen"]
    cancel = unit("cancel", cancel_type="expire")
    assert keys(for_wb_feed(WB, [moved(created, cancel)], now=NOW)) == ["7:cancellation:s1:cancelled"]
    assert keys(rules.for_orders(WB, [first_seen("s1", wb_order("s1", cancelled=True))], now=NOW))[1] == (
        "7:cancellation:s1:cancelled"
    )
    buyout = unit("buyout")
    assert keys(for_wb_feed(WB, [moved(created, buyout)], now=NOW)) == ["7:buyout:s1:sale"]
    assert keys(rules.for_sales(WB, [first_seen("S1", sale("S1", srid="s1"))], now=NOW)) == ["7:buyout:s1:sale"]
    defective = unit("returnDefective")
    assert keys(for_wb_feed(WB, [moved(buyout, defective)], now=NOW)) == ["7:return:s1:sale"]
    assert keys(rules.for_sales(WB, [first_seen("R1", sale("R1", srid="s1"))], now=NOW)) == ["7:return:s1:sale"]


def test_a_unit_only_moves_forward_and_a_repeat_is_nothing() -> None:
    buyout, created = unit("buyout"), unit("created")
    assert for_wb_feed(WB, [moved(buyout, created)], now=NOW) == []  # an older view of the unit
    assert for_wb_feed(WB, [moved(buyout, unit("buyout", at=NOW))], now=NOW) == []
    assert for_wb_feed(WB, [moved(unit("return"), unit("returnDefective"))], now=NOW) == []


def test_first_seen_history_is_silent_and_a_first_seen_stage_notifies_when_it_is_new() -> None:
    old = NOTIFY_FROM - timedelta(days=5)
    assert for_wb_feed(WB, [first_seen("s1", unit("buyout", at=old, ordered=old))], now=NOW) == []
    late = unit("cancel", cancel_type="app", ordered=NOW - timedelta(days=1))  # shown late, cancelled now
    assert keys(for_wb_feed(WB, [first_seen("s1", late)], now=NOW)) == [
        "7:new_order:s1:seen",
        "7:cancellation:s1:cancelled",
    ]


def test_statistics_money_wins_over_the_feeds_price() -> None:
    stats = {"total_amount": Decimal("1299.00"), "basket_id": "g9", "warehouse": "Коледино", "name": "Платье"}
    payload = for_wb_feed(WB, [first_seen("s1", unit("created", statistics=stats))], now=NOW)[0].payload
    assert payload["amount"] == "1299.00" and payload["basket_id"] == "g9" and payload["warehouse"] == "Коледино"
    alone = for_wb_feed(WB, [first_seen("s1", unit("created"))], now=NOW)[0].payload
    assert alone["amount"] == "1500.00"


def test_the_cancel_type_and_a_defective_return_are_shown_in_each_language() -> None:
    tz = ZoneInfo("Europe/Moscow")
    cancel = for_wb_feed(WB, [moved(unit("created"), unit("cancel", cancel_type="expire"))], now=NOW)[0]
    texts = {
        lang: render("cancellation", cancel.payload, shop=SHOP, lang=lang, tz=tz).text for lang in ("ru", "pl", "en")
    }
    assert "не забран из пункта выдачи" in texts["ru"]
    assert "nieodebrane w terminie" in texts["pl"]
    assert "not picked up in time" in texts["en"]
    app = for_wb_feed(WB, [moved(unit("created"), unit("cancel", cancel_type="app"))], now=NOW)[0]
    assert "cancelled by the buyer" in render("cancellation", app.payload, shop=SHOP, lang="en", tz=tz).text
    ret = for_wb_feed(WB, [moved(unit("buyout"), unit("returnDefective"))], now=NOW)[0]
    text = render("return", ret.payload, shop=SHOP, lang="en", tz=tz).text
    assert "returned as defective" in text and "<code>s1</code>" in text
