"""Syncs against the sandbox: the notifications equal the sandbox's real transitions exactly.

Every test: connect the sandbox's shops, run the (silent) first sync, then let sandbox time
run and sync as the schedule would, and compare the outbox with `world.transitions(...)`
since the shop's notify-from point: none missing, none extra, none twice.

Mapping from the sandbox's transition kinds to ours:
- new_order, cancellation, buyout, return: the same kind and entity (srid / checkout-form id,
  saleID, Allegro return id). An Allegro order is one new_order whatever its stage(s).
- review -> negative_review (one per review; each person's threshold applies at delivery).
- stock_low (total from >= level to < level) -> critical_stock for a threshold of level - 1
  (ours: from > T to <= T). stock_recovered re-arms and notifies nothing.
- stock_runout has no sandbox counterpart and is left out of the comparison.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from connectors.http import Timeouts
from flows.backfill import backfill_one
from flows.sync import run_streams, sync_one
from sandbox.world import World
from storage import outbox
from storage.db import get_engine
from storage.models import Membership, Notification, Person, Shop
from storage.settings_repo import update_settings
from tasks.context import load_context
from tests.flows.conftest import add_shops, clients_for, make_sandbox
from tests.notify import bridge

STEP = 300  # seconds of sandbox time between syncs (the default schedule is 3 min)
COMPARED = {"new_order", "cancellation", "buyout", "return", "negative_review", "critical_stock"}
FAULTS = "*:429=0.08,5xx=0.08,reset=0.04,truncate=0.04,slow=0.02,timeout=0.02;allegro-api:dup=0.3"


@pytest.fixture(autouse=True)
def wired(monkeypatch: pytest.MonkeyPatch) -> None:
    bridge.install(monkeypatch)


def add_owners(engine: Engine, world: World, shops: dict[str, int]) -> dict[str, int]:
    """One owner per shop whose stock threshold matches the sandbox's alert level."""
    level = world.scenario.low_stock_level
    people = {}
    with Session(engine) as session, session.begin():
        for name, shop_id in shops.items():
            person = Person(telegram_id=900_000 + shop_id, language="en")
            session.add(person)
            session.flush()
            session.add(Membership(shop_id=shop_id, person_id=person.id, role="owner"))
            update_settings(session, person_id=person.id, values={"critical_stock_threshold": level - 1})
            people[name] = person.id
    return people


def expected(world: World, name: str, since, until) -> Counter:
    kinds = {"review": "negative_review", "stock_low": "critical_stock"}
    return Counter(
        (kinds.get(t.kind, t.kind), t.entity_id)
        for t in world.transitions(name, since, until)
        if kinds.get(t.kind, t.kind) in COMPARED
    )


def stored(engine: Engine, shop_id: int) -> Counter:
    """(kind, entity) per notification; an Allegro order's bought+paid stages count once."""
    with Session(engine) as s:
        rows = s.execute(
            select(Notification.kind, Notification.dedupe_key).where(Notification.shop_id == shop_id)
        ).all()
    seen = Counter()
    for kind, key in rows:
        if kind not in COMPARED:
            continue
        entity = key.split(":")[2]
        if (
            kind == "new_order"
            and key.endswith(":paid")
            and f"{shop_id}:new_order:{entity}:bought" in {k for _, k in rows}
        ):
            continue
        seen[(kind, entity)] += 1
    return seen


def notify_from(engine: Engine, shop_id: int):
    with Session(engine) as s:
        return s.get(Shop, shop_id).notify_from


async def sync_all(shops: dict[str, int], clients) -> None:
    for shop_id in shops.values():
        reports = await sync_one(shop_id, clients=clients)
        assert all(r.status == "success" for r in reports), [(r.stream, r.error) for r in reports]


async def overlapping(shops: dict[str, int], clients) -> None:
    """Each shop synced by two runs at once, bypassing the per-shop lock."""
    engine = get_engine()
    for shop_id in shops.values():
        runs = [run_streams(load_context(engine, shop_id=shop_id, clients=clients), None) for _ in range(2)]
        for reports in await asyncio.gather(*runs):
            assert all(r.status == "success" for r in reports), [(r.stream, r.error) for r in reports]


async def run_day(
    engine: Engine, app, *, steps: int, clients, step: int = STEP, repeat: int = 1, overlap: bool = False
) -> dict[str, int]:
    world: World = app.state.world
    shops = add_shops(engine, world)
    add_owners(engine, world, shops)
    await sync_all(shops, clients)  # first sync: silent
    with Session(engine) as s:
        assert s.scalar(select(text("count(*)")).select_from(Notification)) == 0
    for _ in range(steps):
        world.advance(step)
        for _ in range(repeat):
            await (overlapping(shops, clients) if overlap else sync_all(shops, clients))
    return shops


def assert_exact(engine: Engine, world: World, shops: dict[str, int]) -> None:
    for name, shop_id in shops.items():
        want = expected(world, name, notify_from(engine, shop_id), world.now_dt())
        got = stored(engine, shop_id)
        missing, extra = want - got, got - want
        assert not missing and not extra, f"{name}: missing {sorted(missing)[:5]}, extra {sorted(extra)[:5]}"
        assert all(n == 1 for n in got.values())
        assert sum(want.values()) > 0, f"{name}: the scenario produced no transitions to compare"


@pytest.fixture(scope="module")
async def day(engine: Engine):
    """One sandbox day (24 h, a sync every 15 min) shared by the read-only tests below."""
    app = make_sandbox(scenario="lively")
    async with clients_for(app) as clients:
        shops = await run_day(engine, app, steps=96, step=900, clients=clients)
    yield engine, app.state.world, shops
    from storage.models import Base

    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


def test_a_normal_day(day) -> None:
    engine, world, shops = day
    assert_exact(engine, world, shops)
    with Session(engine) as s:
        kinds = {k for (k,) in s.execute(text("SELECT DISTINCT kind FROM notifications"))}
    assert {"new_order", "cancellation", "buyout", "negative_review", "critical_stock"} <= kinds


def test_stock_moved_between_warehouses_is_silent(day) -> None:
    engine, world, shops = day
    for name, shop_id in shops.items():
        model = world.wb[name].stock if name in world.wb else world.allegro[name].stock
        since = notify_from(engine, shop_id).timestamp()
        transfers = [m for m in model.moves if m.kind == "transfer" and m.at > since]
        if name.startswith("wb"):
            assert transfers, f"{name}: the day had no transfer to check"
        # Exactly the sandbox's crossings, of which transfers make none.
        want = expected(world, name, notify_from(engine, shop_id), world.now_dt())
        got = stored(engine, shop_id)
        assert {e for e in got if e[0] == "critical_stock"} == {e for e in want if e[0] == "critical_stock"}


def test_multi_item_basket_is_one_message(day) -> None:
    engine, world, shops = day
    with Session(engine) as s:
        baskets = s.execute(
            text(
                "SELECT n.payload->>'basket_id', array_agg(n.id ORDER BY n.id) FROM notifications n "
                "WHERE n.shop_id = :shop AND n.kind = 'new_order' GROUP BY 1 HAVING count(*) > 1"
            ),
            {"shop": shops["wb1"]},
        ).all()
        assert baskets, "the day had no multi-item basket"
        owner = s.scalar(select(Membership.person_id).where(Membership.shop_id == shops["wb1"]))
        update_settings(s, person_id=owner, values={"grouping_enabled": False})
        items, after = [], 0
        while True:
            page = outbox.poll(s, person_id=owner, after=after, limit=200, now=world.now_dt() + timedelta(hours=1))
            items += page.items
            if page.next_cursor == after:
                break
            after = page.next_cursor
        s.rollback()
    by_ids = {tuple(i.notification_ids): i for i in items}
    for basket, ids in baskets:
        item = by_ids[tuple(ids)]
        assert item.text.count("• ") == len(ids) and basket in item.text


def test_review_answered_after_it_arrived_notifies_once(day) -> None:
    engine, world, shops = day
    with Session(engine) as s:
        rows = s.execute(
            text(
                "SELECT r.external_id, count(n.id) FROM reviews r JOIN notifications n "
                "ON n.shop_id = r.shop_id AND n.kind = 'negative_review' "
                "AND n.dedupe_key = r.shop_id || :kind || r.external_id || :new "
                "WHERE r.shop_id = :shop AND r.is_answered GROUP BY 1"
            ),
            {"shop": shops["wb1"], "kind": ":negative_review:", "new": ":new"},
        ).all()
    assert rows, "no review of the day was answered later"
    assert all(count == 1 for _, count in rows)


async def test_a_day_with_faults(clean_engine: Engine) -> None:
    app = make_sandbox(scenario="lively", faults=FAULTS, seed=7, slow_seconds=0.01, timeout_seconds=0.5)
    async with clients_for(app, timeouts=Timeouts(read=0.2)) as clients:
        shops = await run_day(clean_engine, app, steps=32, step=900, clients=clients)
    assert len([r for r in app.state.world.log.entries() if r.fault]) >= 5, "the faults really happened"
    assert_exact(clean_engine, app.state.world, shops)


async def test_the_same_sync_run_twice(clean_engine: Engine) -> None:
    app = make_sandbox(scenario="lively")
    async with clients_for(app) as clients:
        shops = await run_day(clean_engine, app, steps=16, step=900, clients=clients, repeat=2)
    assert_exact(clean_engine, app.state.world, shops)


async def test_two_overlapping_syncs(clean_engine: Engine) -> None:
    """Two runs of every stream of a shop at once (as if the per-shop lock were not there)."""
    app = make_sandbox(scenario="lively")
    async with clients_for(app) as clients:
        shops = await run_day(clean_engine, app, steps=16, step=900, clients=clients, overlap=True)
    assert_exact(clean_engine, app.state.world, shops)


async def test_a_backfill_is_silent(clean_engine: Engine) -> None:
    app = make_sandbox(scenario="lively")
    world: World = app.state.world
    async with clients_for(app) as clients:
        shops = await run_day(clean_engine, app, steps=8, step=900, clients=clients)
        with Session(clean_engine) as s:
            before = s.scalar(select(text("count(*)")).select_from(Notification))
        since = (world.now_dt() - timedelta(days=3)).date()
        for shop_id in shops.values():
            reports = await backfill_one(shop_id, since=since, clients=clients)
            assert reports and all(r.status == "success" for r in reports)
        with Session(clean_engine) as s:
            assert s.scalar(select(text("count(*)")).select_from(Notification)) == before
        # A sync after the backfill finds the backfilled rows already there: still exact.
        world.advance(900)
        await sync_all(shops, clients)
    assert_exact(clean_engine, world, shops)
