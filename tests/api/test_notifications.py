"""Polling with cursors, acks that never go back, the batch form and `last_check`, scoped by membership."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from sellerpulse.notify.drafts import Draft
from storage import outbox
from tests.api.conftest import Bot, person, shop

A, B = 11, 22


def add(db: Session, shop_id: int, n: int, kind: str = "new_order", start: int = 0) -> None:
    drafts = [
        Draft(kind=kind, dedupe_key=f"{shop_id}:{kind}:{i}", entity=str(i), payload={"srid": f"s{i}", "name": f"n{i}"})
        for i in range(start, start + n)
    ]
    outbox.add(db, shop_id=shop_id, drafts=drafts)
    db.commit()


@pytest.fixture
def setup(bot: Bot, db: Session) -> tuple[int, int]:
    pa, pb = person(db, A), person(db, B)
    a, b = shop(db, owner=pa, name="A shop"), shop(db, owner=pb, name="B shop")
    for tid in (A, B):  # one message per notification, delivered at once
        assert bot.put("/settings", params={"telegram_id": tid}, json={"grouping_enabled": False}).status_code == 200
    return a, b


def test_poll_pages_with_a_cursor_and_sees_only_own_shops(bot: Bot, db: Session, setup: tuple[int, int]) -> None:
    a, b = setup
    add(db, a, 5)
    add(db, b, 3)
    r = bot.get("/notifications", params={"telegram_id": A, "limit": 2})
    assert r.status_code == 200, r.text
    page = r.json()
    assert [i["shop_id"] for i in page["items"]] == [a, a]
    first = page["items"][0]
    assert set(first) == {"id", "ids", "kind", "shop_id", "shop_name", "text", "image_url", "created_at"}
    assert first["kind"] == "new_order" and first["shop_name"] == "A shop" and first["text"]
    assert first["created_at"].endswith(("Z", "+00:00"))
    seen = [i["id"] for i in page["items"]]
    cursor = page["next_cursor"]
    while True:
        page = bot.get("/notifications", params={"telegram_id": A, "after": cursor, "limit": 2}).json()
        if not page["items"]:
            break
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 5
    b_items = bot.get("/notifications", params={"telegram_id": B}).json()["items"]
    assert len(b_items) == 3 and {i["shop_id"] for i in b_items} == {b}
    assert not set(seen) & {i["id"] for i in b_items}


def test_ack_moves_the_cursor_forward_only(bot: Bot, db: Session, setup: tuple[int, int]) -> None:
    a, _ = setup
    add(db, a, 4)
    items = bot.get("/notifications", params={"telegram_id": A}).json()["items"]
    ids = [i["id"] for i in items]
    r = bot.post("/notifications/ack", json={"telegram_id": A, "cursor": ids[1]})
    assert r.status_code == 200 and r.json() == {"telegram_id": A, "cursor": ids[1]}
    # Without `after`, a poll continues after the acknowledged cursor (redelivery of the rest).
    assert [i["id"] for i in bot.get("/notifications", params={"telegram_id": A}).json()["items"]] == ids[2:]
    assert bot.post("/notifications/ack", json={"telegram_id": A, "cursor": ids[0]}).json()["cursor"] == ids[1]
    # A cursor past everything that exists is held at the newest id: nothing to come is swallowed.
    assert bot.post("/notifications/ack", json={"telegram_id": A, "cursor": 10**15}).json()["cursor"] == ids[-1]
    add(db, a, 1, start=100)
    assert len(bot.get("/notifications", params={"telegram_id": A}).json()["items"]) == 1


def test_batch_poll(bot: Bot, db: Session, setup: tuple[int, int]) -> None:
    a, b = setup
    add(db, a, 2)
    add(db, b, 1)
    r = bot.post("/notifications/poll", json={"telegram_ids": [A, 999, B, A], "limit": 10})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["unknown"] == [999]
    counts = {x["telegram_id"]: len(x["items"]) for x in body["results"]}
    assert counts == {A: 2, B: 1}
    assert bot.post("/notifications/poll", json={"telegram_ids": []}).status_code == 422


def test_last_check_for_old_bots(bot: Bot, db: Session, setup: tuple[int, int]) -> None:
    a, _ = setup
    add(db, a, 2)
    db.execute(text("UPDATE notifications SET created_at = created_at - interval '1 hour'"))
    db.execute(text("UPDATE memberships SET created_at = created_at - interval '2 hours'"))
    db.commit()
    add(db, a, 1, start=50)
    cutoff = db.execute(text("SELECT now() - interval '30 minutes'")).scalar_one()
    r = bot.get("/notifications", params={"telegram_id": A, "last_check": cutoff.isoformat()})
    assert r.status_code == 200, r.text
    assert len(r.json()["items"]) == 1
    both = bot.get("/notifications", params={"telegram_id": A, "last_check": cutoff.isoformat(), "after": 0})
    assert both.status_code == 422 and both.json()["error"]["code"] == "invalid_request"


def test_settings_apply_at_delivery(bot: Bot, db: Session, setup: tuple[int, int]) -> None:
    a, _ = setup
    add(db, a, 2)
    bot.put("/settings", params={"telegram_id": A}, json={"new_orders_enabled": False})
    page = bot.get("/notifications", params={"telegram_id": A}).json()
    assert page["items"] == [] and page["next_cursor"] > 0  # passed over, not stuck


def test_grouped_items_carry_every_id(bot: Bot, db: Session, setup: tuple[int, int]) -> None:
    a, _ = setup
    bot.put("/settings", params={"telegram_id": A}, json={"grouping_enabled": True, "max_group_size": 5})
    add(db, a, 3)
    # Older than the group timeout, so the group is closed (memberships older still: they see them).
    db.execute(text("UPDATE notifications SET created_at = created_at - interval '2 hours'"))
    db.execute(text("UPDATE memberships SET created_at = created_at - interval '3 hours'"))
    db.commit()
    items = bot.get("/notifications", params={"telegram_id": A}).json()["items"]
    assert len(items) == 1 and len(items[0]["ids"]) == 3 and items[0]["id"] == max(items[0]["ids"])


def test_poll_bounds(bot: Bot, setup: tuple[int, int]) -> None:
    for bad in ({"limit": 0}, {"limit": 201}, {"after": -1}, {"after": "x"}, {"last_check": "yesterday"}):
        r = bot.get("/notifications", params={"telegram_id": A, **bad})
        assert r.status_code == 422, bad
        assert r.json()["error"]["details"], bad


def test_fast_path_and_documented_route_answer_alike(bot: Bot, db: Session, setup: tuple[int, int]) -> None:
    from api.fastpath import plain_poll

    a, _ = setup
    add(db, a, 3)
    assert plain_poll(f"telegram_id={A}&limit=2".encode()) == {"telegram_id": A, "limit": 2}
    for odd in (b"telegram_id=0", b"telegram_id=1&telegram_id=2", b"telegram_id=1&x=1", b"limit=2", b"telegram_id=-1"):
        assert plain_poll(odd) is None, odd
    fast = bot.get("/notifications", params={"telegram_id": A, "limit": 2})
    full = bot.get("/notifications", params={"telegram_id": A, "limit": 2, "unrelated": "x"})  # not plain: the route
    assert fast.status_code == full.status_code == 200
    assert fast.json() == full.json() and len(fast.json()["items"]) == 2
    assert bot.get("/notifications", params={"telegram_id": 0}).json()["error"]["code"] == "invalid_request"
    no_key = bot.client.get("/api/v1/notifications", params={"telegram_id": A})
    assert no_key.status_code == 401 and no_key.json()["error"]["code"] == "unauthorized"
