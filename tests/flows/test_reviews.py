"""WB reviews against the sandbox: every review backed up (both lists and the archive), the
state of reviews that move to the archive read where they went, rating-only reviews notify."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from flows.backfill import backfill_one
from flows.sync import sync_one
from sandbox.wb.reviews import ANSWER_DELAY
from sandbox.world import World
from storage import outbox
from storage.models import Membership, Notification, Person, Review
from storage.settings_repo import update_settings
from tests.flows.conftest import add_shops, clients_for, make_sandbox

MANY_OLD_REVIEWS = "tiny:wb_orders=600,history_days=60"  # 120 reviews over 60 days


def _stored(engine: Engine, shop_id: int) -> dict[str, Review]:
    with Session(engine) as s:
        return {r.external_id: r for r in s.scalars(select(Review).where(Review.shop_id == shop_id))}


def _places(world: World, shop: str = "wb1") -> dict[str, str]:
    model, now = world.wb[shop].reviews, world.now()
    return {model.review_id(j): model.place(j, now) for j in range(model.visible_count(now))}


def _assert_reviews_match(engine: Engine, world: World, shop_id: int, shop: str = "wb1") -> None:
    truth, stored = world.wb_reviews(shop), _stored(engine, shop_id)
    assert stored.keys() == truth.keys(), f"missing {len(truth.keys() - stored.keys())}"
    wrong = [k for k, f in truth.items() if stored[k].is_answered != bool(f["answer"])]
    assert not wrong, f"{len(wrong)} review(s) with the wrong answered state, e.g. {wrong[:3]}"
    texts = [k for k, f in truth.items() if f["answer"] and stored[k].answer_text != f["answer"]["text"]]
    assert not texts, f"{len(texts)} answered review(s) without their answer"
    places = _places(world, shop)
    assert {k for k, r in stored.items() if r.archived} <= {k for k, p in places.items() if p == "archive"}


async def test_first_sync_backs_up_every_review_the_marketplace_has(clean_engine: Engine) -> None:
    app = make_sandbox(scenario=MANY_OLD_REVIEWS)
    world: World = app.state.world
    shops = add_shops(clean_engine, world)
    places = Counter(_places(world).values())
    assert places["unanswered"] and places["answered"] and places["archive"] > places["answered"]
    async with clients_for(app) as clients:
        reports = await sync_one(shops["wb1"], clients=clients)
    assert all(r.status == "success" for r in reports), [(r.stream, r.error) for r in reports]
    _assert_reviews_match(clean_engine, world, shops["wb1"])
    stored = _stored(clean_engine, shops["wb1"])
    old = world.now_dt() - timedelta(days=14)
    assert any(r.is_answered and r.created_at_source < old for r in stored.values())  # beyond any look-back
    assert any(r.text == "" and r.archived for r in stored.values())  # rating-only: archive only
    paths = {r.path for r in world.log.entries(host="wb-feedbacks")}
    assert paths == {"/api/v1/feedbacks", "/api/v1/feedbacks/archive"}


async def test_a_backfill_reads_every_review_silently(clean_engine: Engine) -> None:
    app = make_sandbox(scenario=MANY_OLD_REVIEWS)
    world: World = app.state.world
    shops = add_shops(clean_engine, world)
    today = world.now_dt().date()
    async with clients_for(app) as clients:
        reports = await backfill_one(shops["wb1"], today - timedelta(days=30), today, clients=clients)
    assert {r.stream: r.status for r in reports}["backfill_wb_reviews"] == "success"
    _assert_reviews_match(clean_engine, world, shops["wb1"])
    with Session(clean_engine) as s:
        assert s.scalars(select(Notification)).all() == []


async def test_reviews_that_move_to_the_archive_keep_their_true_state(clean_engine: Engine) -> None:
    """Unanswered reviews archived after 30 days stay unanswered; reviews answered and archived
    between two syncs are stored answered, with their answer."""
    app = make_sandbox(scenario="lively", seed=3)
    world: World = app.state.world
    shops = add_shops(clean_engine, world)
    async with clients_for(app) as clients:
        await sync_one(shops["wb1"], clients=clients)
        before = {k for k, r in _stored(clean_engine, shops["wb1"]).items() if not r.is_answered and not r.archived}
        world.advance(31 * 86400)
        places = _places(world)
        truth = world.wb_reviews("wb1")
        timed_out = {k for k in before if not truth[k]["answer"]}
        answered_away = {k for k in before if truth[k]["answer"]}
        assert timed_out and answered_away and all(places[k] == "archive" for k in before)
        reports = await sync_one(shops["wb1"], clients=clients)
        assert all(r.status == "success" for r in reports), [(r.stream, r.error) for r in reports]
        _assert_reviews_match(clean_engine, world, shops["wb1"])
        stored = _stored(clean_engine, shops["wb1"])
        assert not any(stored[k].is_answered for k in timed_out)
        assert all(stored[k].archived for k in before)
        # The next sync has nothing left to look for: it reads only what is new.
        seq = max(r.seq for r in world.log.entries())
        await sync_one(shops["wb1"], streams=["reviews"], clients=clients)
    calls = Counter((r.path, "isAnswered=true" in r.query) for r in world.log.entries(since_seq=seq))
    assert calls == {
        ("/api/v1/feedbacks", False): 1,
        ("/api/v1/feedbacks", True): 1,
        ("/api/v1/feedbacks/archive", False): 1,
    }


async def test_a_new_rating_only_one_star_review_notifies_like_any_negative_review(clean_engine: Engine) -> None:
    app = make_sandbox(scenario="lively", seed=4)
    world: World = app.state.world
    shops = add_shops(clean_engine, world)
    with Session(clean_engine) as s, s.begin():
        owner = Person(telegram_id=777_001, language="en")  # reviews of 3 stars or fewer: the default
        s.add(owner)
        s.flush()
        s.add(Membership(shop_id=shops["wb1"], person_id=owner.id, role="owner"))
        update_settings(s, person_id=owner.id, values={"grouping_enabled": False})
        owner_id = owner.id
    model = world.wb["wb1"].reviews
    async with clients_for(app) as clients:
        await sync_one(shops["wb1"], clients=clients)  # the first sync: silent
        j = model.visible_count(world.now())
        while not (model.rating_only(j) and model.stars(j) == 1 and model.appear(j) + ANSWER_DELAY > world.now()):
            j += 1
        world.advance(model.appear(j) + 60 - world.now())
        assert model.place(j, world.now()) == "archive"  # never in /api/v1/feedbacks
        reports = await sync_one(shops["wb1"], clients=clients)
        assert all(r.status == "success" for r in reports), [(r.stream, r.error) for r in reports]
    review_id = model.review_id(j)
    with Session(clean_engine) as s:
        rows = s.scalars(select(Notification).where(Notification.dedupe_key.contains(f":{review_id}:"))).all()
        delivered, after = [], 0
        while page := outbox.poll(s, person_id=owner_id, after=after, limit=200):
            if not page.items:
                break
            delivered += page.items
            after = page.next_cursor
    assert [n.kind for n in rows] == ["negative_review"] and rows[0].payload["stars"] == 1
    sent = [item for item in delivered if rows[0].id in item.notification_ids]
    assert len(sent) == 1, "delivered to the owner exactly once"
    assert "★☆☆☆☆" in sent[0].text and "None" not in sent[0].text
