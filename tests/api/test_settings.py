"""Notification settings: defaults on registration, partial updates, the schema's ranges."""

from __future__ import annotations

import pytest

from tests.api.conftest import Bot

Q = {"telegram_id": 3}


def test_defaults_created_on_registration(bot: Bot) -> None:
    bot.put("/people/3", json={"first_name": "Ola"})
    s = bot.get("/settings", params=Q).json()
    assert s["notifications_enabled"] and s["grouping_enabled"] and not s["notify_unpaid_orders"]
    assert (s["review_rating_threshold"], s["stock_horizon_days"], s["max_group_size"], s["group_timeout"]) == (
        3,
        3,
        5,
        300,
    )


def test_partial_update_keeps_the_rest(bot: Bot) -> None:
    bot.put("/people/3", json={})
    r = bot.put("/settings", params=Q, json={"stock_horizon_days": 14, "review_rating_threshold": 0})
    assert r.status_code == 200, r.text
    s = bot.get("/settings", params=Q).json()
    assert s["stock_horizon_days"] == 14 and s["review_rating_threshold"] == 0 and s["max_group_size"] == 5


@pytest.mark.parametrize(
    "body",
    [
        {"review_rating_threshold": 6},
        {"review_rating_threshold": -1},
        {"stock_horizon_days": 5},
        {"max_group_size": 0},
        {"max_group_size": 51},
        {"group_timeout": 86_401},
        {"critical_stock_threshold": 100_001},
        {"notifications_enabled": "maybe"},
        {"unknown_setting": True},
    ],
)
def test_out_of_range_is_422_with_the_field(bot: Bot, body: dict) -> None:
    bot.put("/people/3", json={})
    r = bot.put("/settings", params=Q, json=body)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_request"
    assert any(list(body)[0] in d["loc"] for d in err["details"])


def test_person_profile_validation(bot: Bot) -> None:
    assert bot.put("/people/3", json={"time_zone": "Mars/Olympus"}).status_code == 422
    assert bot.put("/people/3", json={"username": "a\u0000b"}).status_code == 422
    assert bot.put("/people/0", json={}).status_code == 422
    assert bot.put("/people/99999999999999999999", json={}).status_code == 422
    r = bot.put("/people/3", json={"language": "pl", "time_zone": "Europe/Warsaw"})
    assert r.status_code == 201
    r = bot.put("/people/3", json={"username": "ola"})
    assert r.status_code == 200 and r.json()["time_zone"] == "Europe/Warsaw" and r.json()["language"] == "pl"
