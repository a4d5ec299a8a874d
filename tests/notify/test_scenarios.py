"""Syncs against the sandbox: the notifications equal the sandbox's real transitions exactly.

Every test runs the real sync (flows.sync.sync_one, wired to storage.outbox in tasks/notifying.py):
connect the sandbox's shops, run the (silent) first sync, then let sandbox time
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

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from connectors.http import Timeouts
from flows.backfill import backfill_one
from flows.sync import sync_one
from sandbox.world import World
from storage import outbox
from storage.models import Membership, Notification, Person, Shop
from tests.flows.conftest import clients_for, make_sandbox
from tests.notify.scenario import FAULTS, assert_exact, run_day, sync_all


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


async def test_lost_allegro_authorisation_tells_the_owners_once(clean_engine: Engine) -> None:
    app = make_sandbox(scenario="lively")
    world: World = app.state.world
    async with clients_for(app) as clients:
        shops = await run_day(clean_engine, app, steps=1, step=900, clients=clients)
        with Session(clean_engine) as s, s.begin():
            member = Person(telegram_id=123_456, language="en")
            s.add(member)
            s.flush()
            s.add(Membership(shop_id=shops["allegro1"], person_id=member.id, role="member"))
            member_id = member.id
        world.revoke_allegro("allegro1")
        world.advance(900)
        for _ in range(2):  # the second sync skips the shop: it needs the owner now
            await sync_one(shops["allegro1"], clients=clients)
    with Session(clean_engine) as s:
        shop = s.get(Shop, shops["allegro1"])
        owner = s.scalar(select(Membership.person_id).where(Membership.shop_id == shop.id, Membership.role == "owner"))
        assert shop.status in {"needs_reauth", "broken"}
        alerts = outbox.poll(s, person_id=owner, now=datetime.now(UTC) + timedelta(hours=1)).items
        assert [i.kind for i in alerts if i.kind == "shop_needs_reauth"] == ["shop_needs_reauth"]
        seen_by_member = outbox.poll(s, person_id=member_id, now=datetime.now(UTC) + timedelta(hours=1)).items
        assert all(i.kind != "shop_needs_reauth" for i in seen_by_member)
