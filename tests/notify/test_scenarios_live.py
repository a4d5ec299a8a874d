"""Live changes are never silenced: not by a first sync that came before the order, not by the
marketplace's clock being a little behind ours, not by a backfill that wrote the change before the
sync did; and a long first sync whose token keeps dying still ends with every order and exact
notifications afterwards.

Each test compares the outbox with the sandbox's real transitions (tests/notify/scenario.py):
none missing, none extra, none twice.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from flows.backfill import backfill_one
from flows.sync import sync_one
from sandbox.world import World
from storage.models import Notification, Shop
from tests.flows.conftest import add_shops, clients_for, make_sandbox
from tests.flows.truth import assert_allegro_matches
from tests.notify.scenario import add_owners, assert_exact, expected, run_day, stored, sync_all


def _notifications(engine: Engine) -> int:
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(Notification)) or 0


def _per_shop(engine: Engine) -> Counter:
    with Session(engine) as s:
        rows = s.execute(select(Notification.shop_id, func.count()).group_by(Notification.shop_id)).all()
    return Counter(dict(rows))


def _next_form(world: World, shop: str) -> int:
    """The index of the next Allegro order to be bought (the scenario is live)."""
    return world.allegro[shop].orders.visible_count(world.now())


async def test_an_allegro_order_bought_before_the_first_sync_and_paid_after_it_notifies(clean_engine: Engine) -> None:
    app = make_sandbox(scenario="lively")
    world: World = app.state.world
    model = world.allegro["allegro1"].orders
    k = _next_form(world, "allegro1")
    while not model.paid(k):
        k += 1
    world.advance(model.appear(k) + 60 - world.now())  # bought a minute ago, paid in nine
    form = model.form_id(k)
    assert world.allegro_checkout_forms("allegro1")[form]["status"] == "BOUGHT"
    async with clients_for(app) as clients:
        shops = await run_day(clean_engine, app, steps=8, step=900, clients=clients)
    assert stored(clean_engine, shops["allegro1"])[("new_order", form)] == 1
    assert_exact(clean_engine, world, shops)


async def test_a_new_order_stamped_a_few_seconds_before_notify_from_notifies(clean_engine: Engine) -> None:
    """Our clock runs 20 s ahead of the marketplace's: an order bought 10 s after the first sync
    started carries a boughtAt 10 s before the shop's notify-from point."""
    app = make_sandbox(scenario="lively")
    world: World = app.state.world
    model = world.allegro["allegro1"].orders
    k = _next_form(world, "allegro1")
    world.advance(model.appear(k) - 10 - world.now())
    started = world.now_dt()  # the first sync, by the marketplace's clock
    async with clients_for(app, skew=20) as clients:
        shops = add_shops(clean_engine, world)
        add_owners(clean_engine, world, shops)
        await sync_all(shops, clients)
        assert _notifications(clean_engine) == 0
        for _ in range(6):
            world.advance(900)
            await sync_all(shops, clients)
    with Session(clean_engine) as s:
        notify_from = s.get(Shop, shops["allegro1"]).notify_from
    assert model.appear(k) < notify_from.timestamp()  # the case this test is about
    form = model.form_id(k)
    assert stored(clean_engine, shops["allegro1"])[("new_order", form)] == 1
    for name, shop_id in shops.items():
        want, got = expected(world, name, started, world.now_dt()), stored(clean_engine, shop_id)
        assert want == got, f"{name}: missing {sorted(want - got)[:5]}, extra {sorted(got - want)[:5]}"


@pytest.mark.parametrize("backfill_first", [True, False], ids=["backfill-first", "sync-first"])
async def test_a_backfill_never_swallows_a_live_change(clean_engine: Engine, backfill_first: bool) -> None:
    """Backfill and sync of the same shops overlap in time: a change after notify-from notifies
    whichever of them writes it first, exactly once (WB and Allegro)."""
    app = make_sandbox(scenario="lively", seed=4)
    world: World = app.state.world
    async with clients_for(app) as clients:
        shops = await run_day(clean_engine, app, steps=2, step=900, clients=clients)
        by_backfill: Counter = Counter()
        for _ in range(3):
            world.advance(3 * 3600)  # orders, payments, cancellations, buyouts and returns meanwhile
            since = (world.now_dt() - timedelta(days=2)).date()
            if not backfill_first:
                await sync_all(shops, clients)
            before = _per_shop(clean_engine)
            for shop_id in shops.values():
                reports = await backfill_one(shop_id, since=since, clients=clients)
                assert reports and all(r.status == "success" for r in reports), [(r.stream, r.error) for r in reports]
            by_backfill += _per_shop(clean_engine) - before
            if backfill_first:
                await sync_all(shops, clients)
    assert_exact(clean_engine, world, shops)
    if backfill_first:
        # The backfill really was first to see live changes, on both marketplaces.
        assert by_backfill[shops["wb1"]] > 0 and by_backfill[shops["allegro1"]] > 0, by_backfill
    else:
        assert not by_backfill, "the sync had told them all already"


async def test_a_12000_order_first_sync_whose_token_dies_every_40_requests_with_5xx_faults(
    clean_engine: Engine,
) -> None:
    """The issue's case: the first sync stores every order, nothing is marked broken, and the
    syncs after it notify every real transition exactly once."""
    app = make_sandbox(
        scenario="tiny:allegro_orders=12000,history_days=60,live=1",
        allegro_token_requests=40,
        faults="*:5xx=0.05",
        seed=11,
    )
    world: World = app.state.world
    shops = {"allegro1": add_shops(clean_engine, world)["allegro1"]}
    add_owners(clean_engine, world, shops)
    async with clients_for(app) as clients:
        await sync_all(shops, clients)
        assert len(world.allegro_checkout_forms("allegro1")) >= 12_000
        assert_allegro_matches(clean_engine, world, "allegro1", shops["allegro1"])
        assert _notifications(clean_engine) == 0
        for _ in range(12):
            world.advance(1800)
            reports = await sync_one(shops["allegro1"], clients=clients)
            assert all(r.status == "success" for r in reports), [(r.stream, r.error) for r in reports]
    with Session(clean_engine) as s:
        assert s.get(Shop, shops["allegro1"]).status == "active"
    api = world.log.entries(host="allegro-api")
    assert sum(1 for r in api if r.status == 401) >= 5, "the token really died again and again"
    assert sum(1 for r in world.log.entries() if r.fault == "5xx") >= 10, "the faults really happened"
    assert_allegro_matches(clean_engine, world, "allegro1", shops["allegro1"])
    assert_exact(clean_engine, world, shops)
    kinds = Counter(kind for kind, _ in stored(clean_engine, shops["allegro1"]))
    assert kinds["new_order"] >= 20 and kinds["cancellation"] >= 1
