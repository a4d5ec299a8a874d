"""Rendering stored payloads into Telegram HTML (pure): content, languages, zones, robustness."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from sellerpulse.notify import rules
from sellerpulse.notify.render import ShopView, language_for, neutral, render, render_many
from tests.notify.factories import ALLEGRO, NOW, WB, allegro_order, first_seen, review, sale, wb_order

WB_SHOP = ShopView(7, "Мой <магазин>", "wb", "RUB", None)
PL_SHOP = ShopView(8, "Sklep & Co", "allegro", "PLN", None)
MOSCOW = ZoneInfo("Europe/Moscow")
UTC_ZONE = ZoneInfo("UTC")


def one(drafts: list) -> dict[str, Any]:
    assert len(drafts) == 1
    return drafts[0].payload


def sample_payloads() -> list[tuple[str, dict[str, Any]]]:
    """Real payloads as the rules make them, one or more per kind."""
    order = rules.for_orders(WB, [first_seen("srid-1", wb_order("srid-1"))], now=NOW)[0]
    cancel = rules.for_orders(WB, [first_seen("srid-2", wb_order("srid-2", cancelled=True))], now=NOW)[1]
    paid = rules.for_orders(ALLEGRO, [first_seen("f1", allegro_order("f1", "READY_FOR_PROCESSING"))], now=NOW)[0]
    buyout = rules.for_sales(WB, [first_seen("S1", sale("S1"))], now=NOW)[0]
    ret = rules.for_sales(WB, [first_seen("R1", sale("R1"))], now=NOW)[0]
    rev = rules.for_reviews(WB, [first_seen("fb", review("fb", 1))], now=NOW)[0]
    return [(d.kind, d.payload) for d in [order, cancel, paid, buyout, ret, rev]] + [
        (
            "critical_stock",
            {
                "sku": "n1",
                "name": "Платье",
                "old_total": 9,
                "new_total": 3,
                "warehouses": [{"warehouse": "Коледино", "size": "M", "quantity": 3}],
                "image_url": "https://img/1.jpg",
            },
        ),
        ("stock_runout", {"sku": "n1", "name": "Платье", "days_left": 2.5, "total": 5, "sold_30d": 60, "horizon": 3}),
        (
            "return",
            {
                "return_id": "r1",
                "order_id": "f1",
                "reference": "ZW-1",
                "items": [
                    {"name": "Kubek", "quantity": 1, "price": "10.00", "currency": "PLN", "reason": "DONT_LIKE_IT"}
                ],
            },
        ),
        ("shop_needs_reauth", {"reason": "invalid_grant", "since": NOW.isoformat()}),
        ("sync_failing", {"stream": "wb_orders", "since": NOW.isoformat(), "error": "ReadTimeout: <boom>"}),
    ]


def test_new_order_shows_product_size_money_place_id_and_local_time() -> None:
    payload = one(rules.for_orders(WB, [first_seen("srid-1", wb_order("srid-1"))], now=NOW))
    text = render("new_order", payload, shop=WB_SHOP, lang="ru", tz=MOSCOW).text
    assert "Новый заказ" in text and "Мой &lt;магазин&gt;" in text
    assert "<b>Платье</b> (M)" in text and "1 299,00 ₽" in text
    assert "Коледино" in text and "Московская" in text and "<code>srid-1</code>" in text
    assert "23.11.2026 14:00" in text  # 11:00 UTC bought -> 14:00 Moscow


def test_allegro_polish_money_and_unpaid_title() -> None:
    payload = one(rules.for_orders(ALLEGRO, [first_seen("f1", allegro_order("f1"))], now=NOW))
    pl = render("new_order", payload, shop=PL_SHOP, lang="pl", tz=ZoneInfo("Europe/Warsaw")).text
    en = render("new_order", payload, shop=PL_SHOP, lang="en", tz=UTC_ZONE).text
    assert "Nowe zamówienie (nieopłacone)" in pl and "49,99 zł" in pl and "Kubek</b> × 2" in pl
    assert "Sklep &amp; Co" in pl
    assert "New order (not paid yet)" in en and "49.99 zł" in en and "2026-11-23 11:00" in en


def test_review_stars_and_escaped_text() -> None:
    payload = one(rules.for_reviews(WB, [first_seen("fb", review("fb", 2))], now=NOW))
    text = render("negative_review", payload, shop=WB_SHOP, lang="en", tz=UTC_ZONE).text
    assert "★★☆☆☆" in text and "Не подошло &lt;совсем&gt;" in text and "Анна" in text


def test_stock_alert_lists_warehouses_and_image() -> None:
    kind, payload = next(p for p in sample_payloads() if p[0] == "critical_stock")
    message = render(kind, payload, shop=WB_SHOP, lang="ru", tz=MOSCOW)
    assert "<b>3</b> (было 9)" in message.text and "Коледино (M): 3" in message.text
    assert message.image_url == "https://img/1.jpg"


def test_language_choice() -> None:
    assert language_for(WB_SHOP, None) == "ru"
    assert language_for(PL_SHOP, None) == "pl"
    assert language_for(PL_SHOP, "en") == "en"
    assert language_for(PL_SHOP, "de") == "pl"
    assert language_for(ShopView(1, None, None), None) == "en"


def test_basket_renders_together_with_sum() -> None:
    payloads = [one(rules.for_orders(WB, [first_seen(s, wb_order(s, basket="g5"))], now=NOW)) for s in ("a", "b", "c")]
    text = render_many("new_order", payloads, shop=WB_SHOP, lang="ru", tz=MOSCOW, basket=True).text
    assert "× 3" in text and "<code>g5</code>" in text and "3 897,00 ₽" in text
    assert all(f"<code>{s}</code>" in text for s in ("a", "b", "c"))


def test_group_of_fifty_fits_telegram_and_lists_every_order() -> None:
    payloads = [
        {
            **one(
                rules.for_orders(
                    WB, [first_seen(f"srid-{i:040d}", wb_order(f"srid-{i:040d}", basket=f"g{i}"))], now=NOW
                )
            ),
            "items": [{"name": "Очень длинное название товара " * 5, "size": "XXL"}],
        }
        for i in range(50)
    ]
    text = render_many("new_order", payloads, shop=WB_SHOP, lang="ru", tz=MOSCOW).text
    assert len(text) <= 4096
    assert text.count("• ") == 50 or text.endswith("…")


_TAG = re.compile(r"<(/?)(b|i|code)>")


def _balanced(text: str) -> bool:
    """Only our tags remain after unescaping nothing: every < in user data was escaped."""
    stack: list[str] = []
    for closing, tag in _TAG.findall(text):
        if closing:
            if not stack or stack.pop() != tag:
                return False
        else:
            stack.append(tag)
    stripped = _TAG.sub("", text)
    return not stack and "<" not in stripped and ">" not in stripped


junk = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sample_payloads()),
    st.data(),
    st.sampled_from(["ru", "pl", "en"]),
    st.sampled_from(["UTC", "Europe/Moscow", "America/Los_Angeles", "Asia/Kamchatka"]),
)
def test_missing_or_odd_fields_never_break_rendering(
    sample: tuple[str, dict[str, Any]], data: st.DataObject, lang: str, tz: str
) -> None:
    kind, payload = sample
    keys = sorted(payload)
    dropped = data.draw(st.sets(st.sampled_from(keys))) if keys else set()
    garbled = data.draw(st.dictionaries(st.sampled_from(keys), junk, max_size=3)) if keys else {}
    mangled = {k: v for k, v in payload.items() if k not in dropped} | garbled
    for shop in (WB_SHOP, PL_SHOP, ShopView(1, None, None)):
        message = render(kind, mangled, shop=shop, lang=lang, tz=ZoneInfo(tz))
        assert message.text and len(message.text) <= 4096
        assert _balanced(message.text)
        group = render_many(kind, [mangled, payload, {}], shop=shop, lang=lang, tz=ZoneInfo(tz))
        assert _balanced(group.text) and len(group.text) <= 4096


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=200))
def test_any_user_text_is_escaped(text: str) -> None:
    payload = {"stars": 1, "text": text, "name": text, "author": text}
    rendered = render("negative_review", payload, shop=WB_SHOP, lang="ru", tz=MOSCOW).text
    assert _balanced(rendered)
    assert html.escape(neutral(text.strip()[:100]), quote=False)[:20] in rendered  # layout controls dropped


def test_every_kind_renders_in_every_language() -> None:
    for kind, payload in sample_payloads():
        for lang in ("ru", "pl", "en"):
            text = render(kind, payload, shop=WB_SHOP, lang=lang, tz=MOSCOW).text
            assert text.count("\n") >= 1, (kind, lang, text)


def test_times_follow_the_persons_zone() -> None:
    payload = {"stream": "wb_orders", "since": (NOW - timedelta(hours=1)).isoformat()}
    la = render("sync_failing", payload, shop=WB_SHOP, lang="en", tz=ZoneInfo("America/Los_Angeles")).text
    assert "2026-11-23 03:00" in la


def test_group_title_says_unpaid_only_when_all_are() -> None:
    bought = {"stage": "bought", "order_id": "a"}
    paid = {"stage": "paid", "order_id": "b"}
    mixed = render_many("new_order", [bought, paid], shop=PL_SHOP, lang="en", tz=UTC_ZONE).text
    unpaid = render_many("new_order", [bought, bought], shop=PL_SHOP, lang="en", tz=UTC_ZONE).text
    assert mixed.startswith("🛒 <b>New order × 2</b>") and unpaid.startswith("🛒 <b>New order (not paid yet) × 2</b>")
