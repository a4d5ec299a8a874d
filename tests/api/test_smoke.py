from __future__ import annotations

from tests.api.conftest import Bot


def test_register_then_list_shops(bot: Bot) -> None:
    r = bot.put("/people/42", json={"username": "anna", "time_zone": "Europe/Warsaw"})
    assert r.status_code == 201, r.text
    assert r.json()["time_zone"] == "Europe/Warsaw"
    r = bot.get("/shops", params={"telegram_id": 42})
    assert r.status_code == 200, r.text
    assert r.json() == {"items": [], "total": 0, "limit": 50, "offset": 0}
