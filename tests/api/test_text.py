"""Text that reaches Telegram: names people give are refused with bidi overrides or control
characters; marketplace texts are neutralised when a message is rendered."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from sellerpulse.notify.render import BIDI_CONTROLS, ShopView, render, render_many
from tests.api.conftest import Bot, person, shop

T = {"telegram_id": 71}
BAD = ["Eve\u202egnp.exe", "two\nlines", "nul\x00", "tab\there", "bell\x07", "iso\u2066late\u2069", "c1\x85x"]


def test_names_with_layout_controls_are_refused(bot: Bot, db: Session) -> None:
    sid = shop(db, owner=person(db, 71))
    for bad in BAD:
        for field in ("first_name", "last_name", "username"):
            r = bot.put("/people/71", json={field: bad})
            assert r.status_code == 422, (field, bad)
            assert r.json()["error"]["details"][0]["loc"] == ["body", field]
            assert bad not in r.text  # the message names the rule, not the value
        assert bot.patch(f"/shops/{sid}", params=T, json={"name": bad}).status_code == 422, bad
        assert bot.post("/shops/wb", params=T, json={"name": bad, "token": "t"}).status_code == 422, bad
        assert bot.post("/shops/allegro/login", params=T, json={"name": bad}).status_code == 422, bad
    fine = bot.put("/people/71", json={"first_name": "Zoë 🛍️", "last_name": "Ковалёва"})
    assert fine.status_code == 200 and fine.json()["first_name"] == "Zoë 🛍️"


def test_marketplace_texts_are_neutralised_in_messages() -> None:
    shop_view = ShopView(1, "Shop\u202e", "wb", "RUB", "en")
    review = {
        "name": "Kettle\u202e\u2066 X\x00",
        "sku": "1",
        "stars": 1,
        "text": "bad\u202eitem\r\nsecond line\x1b[31m",
        "author": "A\u200f\u2067n\u2069",
    }
    message = render("negative_review", review, shop=shop_view, lang="en", tz=ZoneInfo("UTC"))
    order = {"items": [{"name": "Cup\u202d\x07", "sku": "1", "price": "10"}], "warehouse": "W\u202e\x0b"}
    grouped = render_many("new_order", [order, order], shop=shop_view, lang="en", tz=ZoneInfo("UTC"))
    for text in (message.text, grouped.text):
        assert not set(text) & set(BIDI_CONTROLS)
        assert not [c for c in text if ord(c) < 0x20 and c != "\n" or 0x7F <= ord(c) < 0xA0]
    assert "baditem\nsecond line [31m" in message.text  # the words stay, in their order
    assert "Kettle X" in message.text and "— An" in message.text
