"""The WB order feed against the sandbox and PostgreSQL: new orders, cancellations, buyouts and
returns notify once, from the feed, minutes after they happen; when statistics catch up (their
30-minute refresh, then a full sync) nothing is notified twice and nothing is missing; feed rows
with a field missing never break a sync.

The sandbox's statistics refresh every 30 minutes here (as WB's); the feed is real time.
"""

from __future__ import annotations

from collections import Counter

import httpx
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from connectors.ratelimit import RateLimits
from flows.sync import sync_one
from sandbox.transport import SandboxTransport
from sandbox.wb.orders import CANCEL_DELAY, SALE_DELAY
from sandbox.world import World
from sellerpulse.cli_status import shop_rows
from storage.models import Notification, WbFeedOrder
from storage.shops import create_shop
from tasks.clients import Clients
from tests.flows.conftest import add_shops, clients_for, make_sandbox, sandbox_settings
from tests.notify.scenario import add_owners, assert_exact, expected, notify_from, stored, sync_all

REFRESH = 1800
# 250 WB orders a day, 10 days of history: each kind of transition happens within a few hours.
SCENARIO = "tiny:wb_orders=2500,history_days=10,live=1"
KINDS = {"new_order", "cancellation", "buyout", "return"}


def _wb_only(engine: Engine, world: World) -> dict[str, int]:
    shops = {name: sid for name, sid in add_shops(engine, world).items() if name.startswith("wb")}
    add_owners(engine, world, shops)
    return shops


def _sources(engine: Engine, shop_id: int) -> Counter:
    """(kind, entity) -> where the stored notification came from ("feed" or "statistics")."""
    with Session(engine) as s:
        rows = s.execute(
            select(Notification.dedupe_key, Notification.payload).where(Notification.shop_id == shop_id)
        ).all()
    return Counter((key.split(":")[1], key.split(":")[2], payload.get("source", "statistics")) for key, payload in rows)


def _to_next_refresh(world: World) -> None:
    """Onto a statistics refresh, plus one: statistics then hold everything that happened."""
    world.advance(REFRESH - world.now() % REFRESH)


async def _feed_steps(shops: dict[str, int], world: World, clients, *, steps: int, step: float) -> None:
    for _ in range(steps):
        world.advance(step)
        for shop_id in shops.values():
            reports = await sync_one(shop_id, ["feed"], clients=clients)
            assert [r.status for r in reports] == ["success"], [(r.stream, r.error) for r in reports]


async def test_each_transition_notifies_once_from_the_feed_and_not_again_when_statistics_catch_up(
    clean_engine: Engine,
) -> None:
    app = make_sandbox(scenario=SCENARIO, wb_statistics_refresh_s=REFRESH, seed=3)
    world: World = app.state.world
    async with clients_for(app) as clients:
        shops = _wb_only(clean_engine, world)
        await sync_all(shops, clients)  # first sync: silent
        shop_id = shops["wb1"]
        assert stored(clean_engine, shop_id) == Counter()
        start = notify_from(clean_engine, shop_id)

        # Only the feed runs, every 10 minutes, for 5 hours: everything notified comes from it.
        await _feed_steps(shops, world, clients, steps=30, step=600)
        from_feed = stored(clean_engine, shop_id)
        want = Counter({k: n for k, n in expected(world, "wb1", start, world.now_dt()).items() if k[0] in KINDS})
        assert {kind for kind, _ in from_feed} == KINDS, "each kind happened and was seen by the feed"
        assert all(n == 1 for n in from_feed.values())
        # Everything, new orders statistics list days late included: the feed shows them placed.
        assert from_feed == want, f"missing {sorted(want - from_feed)[:5]}, extra {sorted(from_feed - want)[:5]}"

        # Statistics catch up: their refresh passes, a full sync reads them.
        _to_next_refresh(world)
        await sync_all(shops, clients)
        assert_exact(clean_engine, world, shops)
        after = _sources(clean_engine, shop_id)
        for kind, entity in from_feed:
            assert after[(kind, entity, "feed")] == 1, (kind, entity)
            assert after[(kind, entity, "statistics")] == 0, (kind, entity)


async def test_feed_rows_missing_a_field_never_break_the_sync(clean_engine: Engine) -> None:
    app = make_sandbox(scenario=SCENARIO, wb_statistics_refresh_s=REFRESH, wb_feed_drift=0.3, seed=5)
    world: World = app.state.world
    async with clients_for(app) as clients:
        shops = _wb_only(clean_engine, world)
        await sync_all(shops, clients)
        await _feed_steps(shops, world, clients, steps=12, step=600)
        got = stored(clean_engine, shops["wb1"])
        assert all(n == 1 for n in got.values()) and not got - expected(
            world, "wb1", notify_from(clean_engine, shops["wb1"]), world.now_dt()
        )
        with Session(clean_engine) as s:
            kept = s.scalar(select(func.count()).select_from(WbFeedOrder).where(WbFeedOrder.shop_id == shops["wb1"]))
        shown = world.wb_feed("wb1")
        assert 0 < kept < len(shown), "rows the feed could not place were skipped, the rest stored"
        _to_next_refresh(world)
        await sync_all(shops, clients)
        assert_exact(clean_engine, world, shops)  # statistics filled in whatever the feed's drift hid


def _late_listed(world: World, *, after: float, want) -> int:
    """The first unit ordered after `after` that statistics list 1.5-3 days after its `date` and
    that `want` (a model predicate) selects."""
    m = world.wb["wb1"].orders
    i = m.visible_count(after)
    while not (m.order_date(i) > after and m.appear(i) - m.order_date(i) > 1.5 * 86400 and want(i)):
        i += 1
    return i


def _notified(engine: Engine, shop_id: int, kind: str, srid: str) -> list[str]:
    """Where each stored notification of this transition came from (one entry each)."""
    return [
        source for (k, e, source), n in _sources(engine, shop_id).items() if (k, e) == (kind, srid) for _ in range(n)
    ]


async def test_an_order_statistics_list_two_days_late_notifies_once_from_the_feed_when_placed(
    clean_engine: Engine,
) -> None:
    """The feed is real time; the 1-3 days by which statistics list some orders are theirs. Such
    an order is told within a feed read of its placement, not again when statistics list it days
    later; its cancellation or buyout once too; and one placed before the first sync, which
    statistics list after it, is history (no late "new order" days after the feed had it)."""
    app = make_sandbox(scenario=SCENARIO, wb_statistics_refresh_s=REFRESH, seed=3)
    world: World = app.state.world
    m = world.wb["wb1"].orders
    async with clients_for(app) as clients:
        shops = _wb_only(clean_engine, world)
        shop_id = shops["wb1"]
        await sync_all(shops, clients)  # first sync: silent
        start = notify_from(clean_engine, shop_id)
        t0 = world.now()
        cancelled = _late_listed(world, after=t0, want=m.cancelled)
        bought = _late_listed(world, after=t0, want=m.bought_out)
        placed_before = next(i for i in range(m.visible_count(t0), 10**6) if m.order_date(i) < t0 < m.appear(i))
        # (sandbox time, what happens): the feed is read a minute after each transition, a full
        # sync runs once statistics list each order (their next refresh after it appears).
        listed = {i: m.appear(i) + REFRESH - m.appear(i) % REFRESH + 1 for i in (cancelled, bought, placed_before)}
        steps = sorted(
            [(m.order_date(i) + 60, "feed", "new_order", i) for i in (cancelled, bought)]
            + [(m.appear(cancelled) + CANCEL_DELAY + 60, "feed", "cancellation", cancelled)]
            + [(m.appear(bought) + SALE_DELAY + 60, "feed", "buyout", bought)]
            + [(at, "statistics", None, i) for i, at in listed.items()]
        )
        told: list[tuple[str, int]] = []
        for at, what, kind, i in steps:
            world.advance(at - world.now())
            if what == "feed":
                reports = await sync_one(shop_id, ["feed"], clients=clients)
                assert [r.status for r in reports] == ["success"]
                assert _notified(clean_engine, shop_id, kind, m.srid(i)) == ["feed"], (kind, i)
                told.append((kind, i))
                if kind == "new_order":
                    assert m.srid(i) not in world.wb_orders("wb1"), "statistics have not listed it yet"
            else:
                await sync_all(shops, clients)
                assert m.srid(i) in world.wb_orders("wb1")
            for kind_told, j in told:  # nothing told twice, whoever sees it later
                assert _notified(clean_engine, shop_id, kind_told, m.srid(j)) == ["feed"], (kind_told, j)
        assert _notified(clean_engine, shop_id, "new_order", m.srid(placed_before)) == []

        _to_next_refresh(world)
        await sync_all(shops, clients)
        got = Counter({k: n for k, n in stored(clean_engine, shop_id).items() if k[0] in KINDS})
        want = Counter({k: n for k, n in expected(world, "wb1", start, world.now_dt()).items() if k[0] in KINDS})
        assert got == want, f"missing {sorted(want - got)[:5]}, extra {sorted(got - want)[:5]}"


def _base_token_shop(engine: Engine, world: World) -> tuple[int, str]:
    token = world.mint_wb_token("wb1", kind="base")  # the sandbox's Base rates (sandbox/ratelimit.py)
    with Session(engine) as session, session.begin():
        shop_id = create_shop(session, marketplace="wb", name="wb1", credentials={"token": token}).id
    add_owners(engine, world, {"wb1": shop_id})
    return shop_id, token


def _clients_on_the_sandbox_clock(app) -> Clients:
    """A wait WB asks for (a short 429) passes on the sandbox clock, as it would in real time."""
    world: World = app.state.world

    async def sleep(seconds: float) -> None:
        world.advance(max(0.0, seconds))

    settings = sandbox_settings(allegro_client_id=world.client_id, allegro_client_secret=world.client_secret)
    return Clients.from_settings(
        settings, transport=SandboxTransport(app=app), limits=RateLimits.unlimited(), now=world.now_dt, sleep=sleep
    )


async def test_a_base_token_ends_its_first_sync_waits_out_its_limits_and_statistics_catch_up(
    clean_engine: Engine,
) -> None:
    """A Base token: statistics orders 1 request per 3 h, sales 1 per 2 h, the feed 1 per 3 h. The
    first sync (full buckets) ends; later syncs and feed reads succeed for what they can read,
    and a limited method is asked once, told when, and not again before then (not every
    minute); the shop list says so; once allowed, statistics and the feed bring everything."""
    app = make_sandbox(scenario=SCENARIO, wb_statistics_refresh_s=REFRESH, seed=7, rate_limits=True)
    world: World = app.state.world
    async with _clients_on_the_sandbox_clock(app) as clients:
        shop_id, _token = _base_token_shop(clean_engine, world)
        first = await sync_one(shop_id, clients=clients)
        assert {r.stream: r.status for r in first} == dict.fromkeys([r.stream for r in first], "success")
        start = notify_from(clean_engine, shop_id)
        assert start is not None, "the first sync ended"

        # 3.5 hours as `sellerpulse serve` runs it: a feed read every 2 minutes, a sync every 10.
        end, statuses, step = world.now() + 3.5 * 3600, Counter(), 0
        while world.now() < end:
            world.advance(120)
            step += 1
            for report in await sync_one(shop_id, None if step % 5 == 0 else ["feed"], clients=clients):
                statuses[(report.stream, report.status)] += 1
        assert not [key for key in statuses if key[1] == "failed"], statuses
        assert statuses[("wb_orders", "limited")] and statuses[("wb_feed", "limited")], statuses
        assert statuses[("wb_cards", "success")] >= 15, "what the token may read is read every sync"
        refused = world.limiter.refused()
        for bucket in ("statistics.orders", "statistics.sales", "analytics.order_feed"):
            # Told once per limit period (~5 syncs and ~25 feed reads into each), never again early.
            assert refused.get(("wb1/base", bucket), 0) <= 2, (bucket, refused)
        orders_ok = [e for e in world.log.entries(path="/api/v1/supplier/orders") if e.status == 200]
        assert len(orders_ok) == 2 and orders_ok[1].at - orders_ok[0].at >= 3 * 3600, "read again once allowed"

        limited = shop_rows(clean_engine, now=world.now_dt())[0]["limited_until"]
        assert set(limited) >= {"feed"} and all(at > world.now_dt() for at in limited.values()), limited

        # Later, once every limit has passed: one sync brings whatever the limits held back.
        world.advance(3 * 3600)
        _to_next_refresh(world)
        assert {r.status for r in await sync_one(shop_id, clients=clients)} == {"success"}
        got = Counter({k: n for k, n in stored(clean_engine, shop_id).items() if k[0] in KINDS})
        want = Counter({k: n for k, n in expected(world, "wb1", start, world.now_dt()).items() if k[0] in KINDS})
        assert {kind for kind, _ in got} == KINDS
        assert got == want, f"missing {sorted(want - got)[:5]}, extra {sorted(got - want)[:5]}"
        assert shop_rows(clean_engine, now=world.now_dt())[0]["limited_until"] == {}


async def test_a_base_token_another_tool_just_used_still_ends_its_first_sync_stream_by_stream(
    clean_engine: Engine,
) -> None:
    """Its statistics buckets are spent when the shop is added: orders are allowed again in 3 h,
    sales in 2 h, not both in one sync. The first sync ends once each has succeeded."""
    app = make_sandbox(scenario=SCENARIO, wb_statistics_refresh_s=REFRESH, seed=9, rate_limits=True)
    world: World = app.state.world
    shop_id, token = _base_token_shop(clean_engine, world)
    async with httpx.AsyncClient(transport=SandboxTransport(app=app), base_url="http://sb") as other_tool:
        for kind in ("orders", "sales"):
            url = f"/wb-statistics/api/v1/supplier/{kind}"
            answer = await other_tool.get(url, params={"dateFrom": "2026-11-20"}, headers={"Authorization": token})
            assert answer.status_code == 200
    async with _clients_on_the_sandbox_clock(app) as clients:

        async def sync() -> dict[str, str]:
            return {r.stream: r.status for r in await sync_one(shop_id, clients=clients)}

        first = await sync()
        assert (first["wb_orders"], first["wb_sales"], first["wb_cards"]) == ("limited", "limited", "success")
        assert notify_from(clean_engine, shop_id) is None
        world.advance(2 * 3600 + 60)
        second = await sync()
        assert (second["wb_orders"], second["wb_sales"]) == ("limited", "success")
        assert notify_from(clean_engine, shop_id) is None
        world.advance(3600)
        third = await sync()
        assert third["wb_orders"] == "success" and set(third.values()) <= {"success", "limited"}
        assert notify_from(clean_engine, shop_id) is not None, "each stream succeeded once: the first sync ended"
    refused = world.limiter.refused()
    assert refused[("wb1/base", "statistics.orders")] == 1, "asked once, then not before the time WB named"
