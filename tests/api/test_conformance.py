"""What schemathesis `--checks all` found (issue 12, point 6), and the shapes of point 8."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from sellerpulse.notify.drafts import Draft
from storage import outbox
from tests.api.conftest import Bot, person, shop

A = 61
T = {"telegram_id": A}


def test_405_lists_every_method_of_the_path(bot: Bot, db: Session) -> None:
    sid = shop(db, owner=person(db, A))
    cases = {
        ("PUT", f"/shops/{sid}"): "DELETE, GET, PATCH",
        ("DELETE", "/shops"): "GET",
        ("GET", "/notifications/ack"): "POST",
        ("PATCH", "/notifications"): "GET",
        ("PUT", f"/shops/{sid}/members/me"): "DELETE",
        ("GET", f"/shops/{sid}/nothing"): None,  # no such path: 404, not 405
    }
    for (method, path), allow in cases.items():
        r = bot.request(method, path, params=T)
        if allow is None:
            assert r.status_code == 404, (method, path, r.status_code)
            continue
        assert r.status_code == 405, (method, path, r.status_code)
        assert r.headers["allow"] == allow, (method, path)
        assert r.json()["error"]["code"] == "method_not_allowed"


def test_a_wrong_method_on_a_literal_path_is_405_not_422(bot: Bot, db: Session) -> None:
    person(db, A)
    for method, path, allow in (("PATCH", "/shops/wb", "POST"), ("GET", "/shops/allegro/login", "POST")):
        r = bot.request(method, path, params=T, json={"name": "x"})
        assert r.status_code == 405 and r.headers["allow"] == allow, (method, path, r.text)


def test_json_bodies_are_strict(bot: Bot, db: Session) -> None:
    person(db, A)
    for cursor in (False, True, "5", 5.5, None):
        r = bot.post("/notifications/ack", params=T, json={"cursor": cursor})
        assert r.status_code == 422, cursor
    for ids in ([True], ["1"], [1.0]):
        assert bot.post("/notifications/poll", json={"telegram_ids": ids}).status_code == 422, ids
    assert bot.post("/notifications/ack", params=T, json={"cursor": 0}).status_code == 200


def test_put_settings_refuses_what_the_schema_refuses(bot: Bot, client: TestClient, db: Session) -> None:
    person(db, A)
    spec = client.get("/openapi.json").json()["components"]["schemas"]["SettingsIn"]["properties"]
    assert spec["grouping_enabled"] == {"type": "boolean", "title": "Grouping Enabled"}  # not nullable
    refused = [
        {"review_rating_threshold": True},
        {"max_group_size": False},
        {"stock_horizon_days": True},
        {"stock_horizon_days": "7"},
        {"grouping_enabled": None},
        {"review_rating_threshold": None},
        {"grouping_enabled": 1},
        {"grouping_enabled": "true"},
    ]
    before = bot.get("/settings", params=T).json()
    for body in refused:
        r = bot.put("/settings", params=T, json=body)
        assert r.status_code == 422, (body, r.text)
    assert bot.get("/settings", params=T).json() == before
    ok = bot.put("/settings", params=T, json={"stock_horizon_days": 7, "grouping_enabled": False})
    assert ok.status_code == 200 and ok.json()["stock_horizon_days"] == 7 and ok.json()["grouping_enabled"] is False


def test_after_with_last_check_is_a_documented_422(bot: Bot, client: TestClient, db: Session) -> None:
    person(db, A)
    op = client.get("/openapi.json").json()["paths"]["/api/v1/notifications"]["get"]
    assert "422" in op["responses"] and "both" in op["description"]
    documented = {p["name"]: p.get("description", "") for p in op["parameters"]}
    assert "422" in documented["after"] and "422" in documented["last_check"]
    r = bot.get("/notifications", params={**T, "after": 0, "last_check": "2026-01-01T00:00:00Z"})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["loc"] == ["query", "last_check"]


def _add(db: Session, shop_id: int, n: int) -> None:
    drafts = [Draft("new_order", f"c:{shop_id}:{i}", str(i), {"srid": f"s{i}"}) for i in range(n)]
    outbox.add(db, shop_id=shop_id, drafts=drafts)
    db.commit()


def test_both_polls_write_created_at_alike(bot: Bot, db: Session) -> None:
    sid = shop(db, owner=person(db, A))
    bot.put("/settings", params=T, json={"grouping_enabled": False})
    _add(db, sid, 2)
    one = bot.get("/notifications", params=T).json()["items"]
    many = bot.post("/notifications/poll", json={"telegram_ids": [A]}).json()["results"][0]["items"]
    assert one == many and len(one) == 2
    assert all(i["created_at"].endswith("Z") for i in one)  # UTC, as every other time in the API


def test_ack_takes_telegram_id_in_the_query_documented_or_the_body(bot: Bot, client: TestClient, db: Session) -> None:
    sid = shop(db, owner=person(db, A))
    bot.put("/settings", params=T, json={"grouping_enabled": False})
    _add(db, sid, 3)
    ids = [i["id"] for i in bot.get("/notifications", params=T).json()["items"]]
    assert bot.post("/notifications/ack", params=T, json={"cursor": ids[0]}).json() == {
        "telegram_id": A,
        "cursor": ids[0],
    }
    old_bot = bot.post("/notifications/ack", json={"telegram_id": A, "cursor": ids[1]})
    assert old_bot.status_code == 200 and old_bot.json()["cursor"] == ids[1]
    both = bot.post("/notifications/ack", params=T, json={"telegram_id": A, "cursor": ids[2]})
    assert both.status_code == 200 and both.json()["cursor"] == ids[2]
    for kw in ({"json": {"cursor": 1}}, {"params": T, "json": {"telegram_id": A + 1, "cursor": 1}}):
        r = bot.post("/notifications/ack", **kw)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", kw
    op = client.get("/openapi.json").json()["paths"]["/api/v1/notifications/ack"]["post"]
    query = {p["name"]: p for p in op["parameters"] if p["in"] == "query"}
    assert query["telegram_id"]["required"] is True and query["telegram_id"]["schema"]["type"] == "integer"
    body: dict[str, Any] = client.get("/openapi.json").json()["components"]["schemas"]["AckIn"]
    assert list(body["properties"]) == ["cursor"]  # one documented way
