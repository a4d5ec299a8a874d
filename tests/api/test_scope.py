"""A person sees and changes only the shops they belong to; others' look like nothing at all."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import Order, Person, Shop
from tests.api.conftest import Bot, person, shop

A, B = 1001, 2002


@pytest.fixture
def two(db: Session) -> tuple[int, int, int]:
    """Person A owns shop a, person B owns shop b; an order in shop a."""
    pa, pb = person(db, A), person(db, B)
    a, b = shop(db, owner=pa, name="A's"), shop(db, owner=pb, name="B's")
    order = Order(shop_id=a, external_id="srid-1", status="new", raw={"srid": "srid-1"}, bought_at=datetime.now(UTC))
    db.add(order)
    db.commit()
    return a, b, order.id


SHOP_READS = [
    "",
    "/dashboard",
    "/orders",
    "/stocks/critical",
    "/reviews/summary",
    "/analytics",
    "/analytics.png",
    "/sync-runs",
]


@pytest.mark.parametrize("suffix", SHOP_READS)
def test_reads_of_anothers_shop_are_404_like_missing_ones(bot: Bot, two: tuple[int, int, int], suffix: str) -> None:
    a, b, _ = two
    theirs = bot.get(f"/shops/{a}{suffix}", params={"telegram_id": B})
    missing = bot.get(f"/shops/{a + b + 1000}{suffix}", params={"telegram_id": B})
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()  # no difference to probe
    assert bot.get(f"/shops/{a}{suffix}", params={"telegram_id": A}).status_code == 200


def test_guessing_ids_finds_nothing(bot: Bot, two: tuple[int, int, int]) -> None:
    a, b, order_id = two
    for shop_id in range(1, a + b + 5):
        if shop_id == b:
            continue
        assert bot.get(f"/shops/{shop_id}", params={"telegram_id": B}).status_code == 404
        assert bot.get(f"/shops/{shop_id}/orders/{order_id}", params={"telegram_id": B}).status_code == 404
    # A's order through B's own shop: still nothing.
    assert bot.get(f"/shops/{b}/orders/{order_id}", params={"telegram_id": B}).status_code == 404
    assert bot.get(f"/shops/{a}/orders/{order_id}", params={"telegram_id": A}).json()["raw"] == {"srid": "srid-1"}
    listed = bot.get("/shops", params={"telegram_id": B}).json()
    assert [s["id"] for s in listed["items"]] == [b]


def test_changes_to_anothers_shop_are_404_and_change_nothing(bot: Bot, db: Session, two: tuple[int, int, int]) -> None:
    a, _, _ = two
    q = {"telegram_id": B}
    assert bot.patch(f"/shops/{a}", params=q, json={"name": "mine now"}).status_code == 404
    assert bot.delete(f"/shops/{a}", params={**q, "purge": "true"}).status_code == 404
    assert bot.post(f"/shops/{a}/members", params=q, json={"telegram_id": B}).status_code == 404
    assert bot.delete(f"/shops/{a}/members/me", params=q).status_code == 404
    assert bot.post(f"/shops/{a}/sync", params=q).status_code == 404
    assert bot.post(f"/shops/{a}/sync/backfill", params=q, json={"since": "2026-11-01"}).status_code == 404
    db.expire_all()
    row = db.get(Shop, a)
    assert row is not None and row.name == "A's" and row.status == "active"
    assert bot.get(f"/shops/{a}", params={"telegram_id": A}).status_code == 200


def test_unknown_person_is_404_and_not_registered(bot: Bot, db: Session) -> None:
    for path in ("/shops", "/settings", "/notifications", "/shops/1/dashboard"):
        r = bot.get(path, params={"telegram_id": 777})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", path
    assert bot.post("/notifications/ack", json={"telegram_id": 777, "cursor": 1}).status_code == 404
    assert bot.get("/people/777").status_code == 404
    assert db.scalar(select(func.count()).select_from(Person)) == 0


def test_shared_shop_member_reads_but_only_owner_manages(bot: Bot, db: Session, two: tuple[int, int, int]) -> None:
    a, _, _ = two
    assert bot.post(f"/shops/{a}/members", params={"telegram_id": A}, json={"telegram_id": 999}).status_code == 404
    r = bot.post(f"/shops/{a}/members", params={"telegram_id": A}, json={"telegram_id": B})
    assert r.status_code == 201 and r.json() == {"shop_id": a, "telegram_id": B, "role": "member"}
    assert bot.get(f"/shops/{a}", params={"telegram_id": B}).json()["role"] == "member"
    assert bot.get(f"/shops/{a}/orders", params={"telegram_id": B}).json()["total"] == 1
    r = bot.patch(f"/shops/{a}", params={"telegram_id": B}, json={"name": "x"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert bot.delete(f"/shops/{a}", params={"telegram_id": B}).status_code == 403
    assert bot.delete(f"/shops/{a}/members/me", params={"telegram_id": B}).status_code == 204
    assert bot.get(f"/shops/{a}", params={"telegram_id": B}).status_code == 404


def test_last_owner_leaving_promotes_a_member(bot: Bot, two: tuple[int, int, int]) -> None:
    a, _, _ = two
    bot.post(f"/shops/{a}/members", params={"telegram_id": A}, json={"telegram_id": B})
    assert bot.delete(f"/shops/{a}/members/me", params={"telegram_id": A}).status_code == 204
    assert bot.get(f"/shops/{a}", params={"telegram_id": B}).json()["role"] == "owner"
