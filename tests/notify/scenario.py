"""Helpers of the sandbox scenario tests (see test_scenarios.py for what they compare)."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from flows.sync import run_streams, sync_one
from sandbox.world import World
from storage.db import get_engine
from storage.models import Membership, Notification, Person, Shop
from storage.settings_repo import update_settings
from tasks.context import load_context
from tests.flows.conftest import add_shops

STEP = 300  # seconds of sandbox time between syncs (the default schedule is 3 min)
COMPARED = {"new_order", "cancellation", "buyout", "return", "negative_review", "critical_stock"}
FAULTS = "*:429=0.08,5xx=0.08,reset=0.04,truncate=0.04,slow=0.02,timeout=0.02;allegro-api:dup=0.3"


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
    """(kind, entity) per real transition in (since, until]. An Allegro order is one new_order
    whichever of its stages falls in the range: bought, or paid (bought before, paid after)."""
    kinds = {"review": "negative_review", "stock_low": "critical_stock", "payment": "new_order"}
    out: Counter = Counter()
    for t in world.transitions(name, since, until):
        key = (kinds.get(t.kind, t.kind), t.entity_id)
        if key[0] in COMPARED and not (key[0] == "new_order" and key in out):
            out[key] += 1
    return out


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


def assert_notified_once(engine: Engine, world: World, shops: dict[str, int]) -> None:
    """Nothing notified twice, and every order, cancellation, buyout, return and negative review
    the activity made is notified (none lost). Not asserted: that nothing else is (what
    happened between the sandbox's start and a shop's first sync, by the workers' clock, the
    shops' notify_from, may be notified too). Shared by the cluster tests (tests/cli/test_cluster_cli.py
    and its smaller form, tests/flows/test_batch_workers.py)."""
    events = 0
    for name, shop_id in shops.items():
        want = expected(world, name, notify_from(engine, shop_id), world.now_dt())
        got = stored(engine, shop_id)
        assert all(n == 1 for n in got.values()), f"{name}: notified twice: {[k for k, n in got.items() if n > 1]}"
        want_events = Counter({k: n for k, n in want.items() if k[0] != "critical_stock"})
        missing = want_events - got
        assert not missing, f"{name}: not notified: {sorted(missing)[:5]}"
        events += sum(want_events.values())
    assert events > 0, "the activity produced nothing to notify"


def merged_unseen(world: World, name: str, want: Counter, got: Counter) -> None:
    """An Allegro purchase merged into a new form before any sync read it under its own id (it
    answers 404 by then) is announced once, under the new form: drop its own new_order."""
    merges = world.allegro_merges(name) if name in world.allegro else {}
    for old, new in merges.items():
        if want[("new_order", old)] and not got[("new_order", old)] and got[("new_order", new)]:
            del want[("new_order", old)]


def assert_exact(engine: Engine, world: World, shops: dict[str, int]) -> None:
    for name, shop_id in shops.items():
        want = expected(world, name, notify_from(engine, shop_id), world.now_dt())
        got = stored(engine, shop_id)
        merged_unseen(world, name, want, got)
        missing, extra = want - got, got - want
        assert not missing and not extra, f"{name}: missing {sorted(missing)[:5]}, extra {sorted(extra)[:5]}"
        assert all(n == 1 for n in got.values())
        assert sum(want.values()) > 0, f"{name}: the scenario produced no transitions to compare"
