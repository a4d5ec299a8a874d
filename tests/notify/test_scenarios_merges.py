"""Allegro order merges end to end (sandbox -> sync -> PostgreSQL -> outbox -> poll -> API).

A buyer pays several purchases together: Allegro merges them into a new checkout form and the
old ids answer 404 (allegro-api issues 1111, 2829, 10406). sellerpulse keeps the old forms'
backups, links each to the new form, stores the new one once with every line item, and tells
each person about the purchases exactly once (no second new order for the merged form, no
cancellation for the ids that went away), whether the merge is seen by the journal, by a
backfill, or after a silent first sync.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from api.app import create_app
from flows.backfill import backfill_one
from sandbox.transport import SandboxTransport
from sandbox.world import World
from storage import apikeys, outbox
from storage.db import session_scope
from storage.models import Membership, Notification, Order, OrderLine, Person
from storage.settings_repo import update_settings
from tests.api.conftest import RecordingLauncher
from tests.flows.conftest import add_shops, clients_for, make_sandbox
from tests.flows.truth import assert_allegro_matches
from tests.notify.scenario import STEP, add_owners, assert_exact, run_day, sync_all

# An Allegro order every ~2.4 min (two purchases inside the 10 minutes before payment), no
# merges of the scenario's own: the tests merge through the operator API.
OPERATOR = "lively:history_days=0.5,allegro_orders=300,allegro_merges=0"


def _people(engine: Engine, world: World, shops: dict[str, int]) -> tuple[int, int]:
    """The owner (default settings: paid orders) and a member who asked for unpaid orders too."""
    owners = add_owners(engine, world, shops)
    with Session(engine) as session, session.begin():
        unpaid = Person(telegram_id=800_001, language="en")
        session.add(unpaid)
        session.flush()
        session.add(Membership(shop_id=shops["allegro1"], person_id=unpaid.id, role="member"))
        update_settings(session, person_id=unpaid.id, values={"notify_unpaid_orders": True, "grouping_enabled": False})
        update_settings(session, person_id=owners["allegro1"], values={"grouping_enabled": False})
        return owners["allegro1"], unpaid.id


def _delivered(engine: Engine, person_id: int) -> Counter:
    """(kind, order id) of every message the person's bot would send, all pages."""
    seen: Counter = Counter()
    after = 0
    later = datetime.now(UTC) + timedelta(days=1)  # every group closed
    with Session(engine) as session:
        keys = dict(session.execute(select(Notification.id, Notification.dedupe_key)).all())
        while True:
            page = outbox.poll(session, person_id=person_id, after=after, limit=200, now=later)
            for item in page.items:
                for nid in item.notification_ids:
                    seen[(item.kind, keys[nid].split(":")[2])] += 1
            if not page.items or page.next_cursor == after:
                return seen
            after = page.next_cursor


def _two_unpaid(world: World) -> tuple[int, int]:
    m = world.allegro["allegro1"].orders
    k = m.visible_count(world.now())
    while not (m.paid(k) and m.paid(k + 1)):
        k += 1
    world.advance(m.appear(k + 1) + 30 - world.now())  # both bought, neither paid
    return k, k + 1


async def _merge(app: Any, forms: list[str]) -> str:
    async with httpx.AsyncClient(transport=SandboxTransport(app=app), base_url="http://sandbox") as c:
        r = await c.post("/_sandbox/allegro/merge", json={"shop": "allegro1", "forms": forms})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def _orders(engine: Engine, shop_id: int) -> dict[str, Order]:
    with Session(engine, expire_on_commit=False) as s:
        return {o.external_id: o for o in s.scalars(select(Order).where(Order.shop_id == shop_id))}


def _line_keys(engine: Engine, order_id: int) -> set[str]:
    with Session(engine) as s:
        return set(s.scalars(select(OrderLine.line_key).where(OrderLine.order_id == order_id)))


def _assert_merged(engine: Engine, world: World, shop_id: int, old: dict[str, dict], new_id: str) -> None:
    """(a) the old forms' backups as last seen, linked; (b) the new form once, every line item."""
    stored = _orders(engine, shop_id)
    for old_id, raw in old.items():
        assert stored[old_id].raw == raw, "the old form's backup changed"
        assert stored[old_id].merged_into == new_id
    new = stored[new_id]
    items = {i["id"] for raw in old.values() for i in raw["lineItems"]}
    assert _line_keys(engine, new.id) == items and new.merged_into is None
    assert new.marketplace_status == "READY_FOR_PROCESSING"
    assert_allegro_matches(engine, world, "allegro1", shop_id)


def _assert_notified_once(engine: Engine, shop_id: int, people: tuple[int, int], old: list[str], new_id: str) -> None:
    """(c) one message per person for the purchases, no cancellation for the ids that went away."""
    with Session(engine) as s:
        keys = set(s.scalars(select(Notification.dedupe_key).where(Notification.shop_id == shop_id)))
    assert f"{shop_id}:new_order:{new_id}:bought" not in keys
    assert not [k for k in keys if ":cancellation:" in k and k.split(":")[2] in (*old, new_id)]
    owner, unpaid = (_delivered(engine, p) for p in people)
    assert owner[("new_order", new_id)] == 1 and not any(owner[("new_order", o)] for o in old)
    bought_first = all(unpaid[("new_order", o)] == 1 for o in old)
    assert unpaid[("new_order", new_id)] == (0 if bought_first else 1)
    assert sum(n for (kind, _), n in unpaid.items() if kind == "new_order" and _ in (*old, new_id)) >= 1


def _assert_api_shows_links(engine: Engine, shop_id: int, owner: int, old: list[str], new_id: str) -> None:
    """(e) the order views: `merged_into` on each old order, `merged_from` on the new one."""
    with session_scope(engine) as session:
        secret = apikeys.create_key(session, name="bot").secret
        telegram_id = session.get(Person, owner).telegram_id
    app = create_app(engine=engine, sync_launcher=RecordingLauncher())
    headers, q = {"X-API-Key": secret}, {"telegram_id": telegram_id, "limit": 200}
    with TestClient(app, raise_server_exceptions=False) as c:
        items = c.get(f"/api/v1/shops/{shop_id}/orders", params=q, headers=headers).json()["items"]
        by_id = {i["external_id"]: i for i in items}
        assert all(by_id[o]["merged_into"] == new_id for o in old) and by_id[new_id]["merged_into"] is None
        detail = c.get(f"/api/v1/shops/{shop_id}/orders/{by_id[new_id]['id']}", params=q, headers=headers).json()
        assert detail["merged_from"] == sorted(old) and len(detail["lines"]) >= len(old)
        old_detail = c.get(f"/api/v1/shops/{shop_id}/orders/{by_id[old[0]]['id']}", params=q, headers=headers)
        assert old_detail.json()["merged_into"] == new_id and old_detail.json()["merged_from"] == []


async def test_a_merge_of_announced_purchases_is_kept_linked_and_announced_once(clean_engine: Engine) -> None:
    app = make_sandbox(scenario=OPERATOR)
    world: World = app.state.world
    m = world.allegro["allegro1"].orders
    async with clients_for(app) as clients:
        shops = add_shops(clean_engine, world)
        people = _people(clean_engine, world, shops)
        await sync_all(shops, clients)  # first sync: silent
        ks = _two_unpaid(world)
        await sync_all(shops, clients)  # both purchases announced (bought)
        old_ids = [m.form_id(k) for k in ks]
        before = {o: _orders(clean_engine, shops["allegro1"])[o].raw for o in old_ids}
        new_id = await _merge(app, old_ids)
        for _ in range(4):
            world.advance(STEP)
            await sync_all(shops, clients)
    _assert_merged(clean_engine, world, shops["allegro1"], before, new_id)
    _assert_notified_once(clean_engine, shops["allegro1"], people, old_ids, new_id)
    assert _delivered(clean_engine, people[1])[("new_order", old_ids[0])] == 1  # had the bought ones
    _assert_api_shows_links(clean_engine, shops["allegro1"], people[0], old_ids, new_id)
    assert_exact(clean_engine, world, shops)


async def test_a_merge_after_a_silent_first_sync_links_the_history_and_announces_the_payment(
    clean_engine: Engine,
) -> None:
    app = make_sandbox(scenario=OPERATOR)
    world: World = app.state.world
    m = world.allegro["allegro1"].orders
    async with clients_for(app) as clients:
        shops = add_shops(clean_engine, world)
        people = _people(clean_engine, world, shops)
        ks = _two_unpaid(world)
        await sync_all(shops, clients)  # first sync: both forms backed up, silently
        old_ids = [m.form_id(k) for k in ks]
        before = {o: _orders(clean_engine, shops["allegro1"])[o].raw for o in old_ids}
        world.advance(60)  # paid a minute after the first sync (not in the same second)
        new_id = await _merge(app, old_ids)
        for _ in range(3):
            world.advance(STEP)
            await sync_all(shops, clients)
    _assert_merged(clean_engine, world, shops["allegro1"], before, new_id)
    _assert_notified_once(clean_engine, shops["allegro1"], people, old_ids, new_id)
    # Nobody heard of the purchases before: the payment is the one message, for both people.
    assert _delivered(clean_engine, people[1])[("new_order", new_id)] == 1
    assert_exact(clean_engine, world, shops)


async def test_a_merge_a_backfill_reads_before_the_journal_is_announced_once(clean_engine: Engine) -> None:
    app = make_sandbox(scenario=OPERATOR)
    world: World = app.state.world
    m = world.allegro["allegro1"].orders
    async with clients_for(app) as clients:
        shops = add_shops(clean_engine, world)
        people = _people(clean_engine, world, shops)
        await sync_all(shops, clients)
        ks = _two_unpaid(world)
        await sync_all(shops, clients)
        old_ids = [m.form_id(k) for k in ks]
        before = {o: _orders(clean_engine, shops["allegro1"])[o].raw for o in old_ids}
        new_id = await _merge(app, old_ids)
        world.advance(60)
        since = (world.now_dt() - timedelta(days=1)).date()
        reports = await backfill_one(shops["allegro1"], since=since, clients=clients)
        assert reports and all(r.status == "success" for r in reports), [(r.stream, r.error) for r in reports]
        assert new_id in _orders(clean_engine, shops["allegro1"])  # the backfill wrote it first
        for _ in range(3):
            world.advance(STEP)
            await sync_all(shops, clients)
    _assert_merged(clean_engine, world, shops["allegro1"], before, new_id)
    _assert_notified_once(clean_engine, shops["allegro1"], people, old_ids, new_id)
    assert_exact(clean_engine, world, shops)


async def test_the_scenarios_own_merges_over_a_day_lose_nothing_and_notify_exactly(clean_engine: Engine) -> None:
    app = make_sandbox(scenario="lively")
    world: World = app.state.world
    async with clients_for(app) as clients:
        shops = await run_day(clean_engine, app, steps=24, step=1800, clients=clients)
    for name in ("allegro1", "allegro2"):
        assert_allegro_matches(clean_engine, world, name, shops[name])
    assert_exact(clean_engine, world, shops)
    live = [t for t in world.transitions("allegro1", since=world.now_dt() - timedelta(hours=12)) if t.kind == "merge"]
    assert live, "the scenario merged no orders while it was synced"
    stored = _orders(clean_engine, shops["allegro1"])
    linked = [o for o in stored.values() if o.merged_into]
    assert linked and all(o.merged_into in stored for o in linked)
