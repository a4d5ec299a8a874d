"""The sandbox's WB order feed and statistics refresh: one world, the feed at once, statistics at
their next refresh; the feed's period, paging and limit rules."""

from __future__ import annotations

import httpx

from sandbox.timefmt import utc_z
from sandbox.transport import SandboxTransport

FEED = "/wb-analytics/api/analytics/v1/order-feed"


async def test_a_new_order_is_in_the_feed_at_once_and_in_statistics_at_the_next_refresh(make_app) -> None:
    app = make_app(scenario="tiny:live=1", rate_limits=False, wb_statistics_refresh_s=1800)
    world = app.state.world
    model = world.wb["wb1"].orders
    i = model.visible_count(world.now())
    world.advance(model.appear(i) - world.now() + 1)
    if world.now() % 1800 < 2:  # landed on a refresh: take the next order
        i += 1
        world.advance(model.appear(i) - world.now() + 1)
    srid, headers = model.srid(i), {"Authorization": world.wb_token("wb1")}
    async with httpx.AsyncClient(transport=SandboxTransport(app=app), base_url="http://sb") as sb:
        body = {"selectedPeriod": {"start": utc_z(world.now() - 3 * 86400)}, "pagination": {"limit": 10_000}}
        feed = (await sb.post(FEED, json=body, headers=headers)).json()["data"]["orders"]
        stats = (
            await sb.get("/wb-statistics/api/v1/supplier/orders", params={"dateFrom": "2026-11-01"}, headers=headers)
        ).json()
        assert srid in {r["srid"] for r in feed} and srid not in {r["srid"] for r in stats}
        world.advance(1800 - world.now() % 1800)  # the next refresh
        stats = (
            await sb.get("/wb-statistics/api/v1/supplier/orders", params={"dateFrom": "2026-11-01"}, headers=headers)
        ).json()
        assert srid in {r["srid"] for r in stats}


async def test_an_order_statistics_list_days_late_is_in_the_feed_from_when_it_was_placed(make_app) -> None:
    """The 1-3 days are the statistics pipeline's (facts page); the feed is real time. Its later
    statuses come when statistics show them, and the transitions say it was placed at its date."""
    app = make_app(scenario="tiny:live=1,wb_orders=2500", rate_limits=False)
    world = app.state.world
    model = world.wb["wb1"].orders
    i = model.visible_count(world.now())
    while not (model.order_date(i) > world.now() and model.appear(i) - model.order_date(i) > 86400):
        i += 1
    srid, headers = model.srid(i), {"Authorization": world.wb_token("wb1")}
    world.advance(model.order_date(i) - world.now() - 1)
    assert srid not in world.wb_feed("wb1"), "not before it is placed"
    world.advance(2)
    async with httpx.AsyncClient(transport=SandboxTransport(app=app), base_url="http://sb") as sb:
        body = {"selectedPeriod": {"start": utc_z(world.now() - 600)}, "pagination": {"limit": 10_000}}
        rows = {r["srid"]: r for r in (await sb.post(FEED, json=body, headers=headers)).json()["data"]["orders"]}
    assert rows[srid]["status"] == "created" and rows[srid]["createdAt"] == rows[srid]["updatedAt"]
    assert srid not in world.wb_orders("wb1"), "statistics list it a day or more later"
    placed = [t for t in world.transitions("wb1") if t.entity_id == srid and t.kind == "new_order"]
    assert [t.at.timestamp() for t in placed] == [model.order_date(i)]
    world.advance(model.appear(i) - world.now())
    assert srid in world.wb_orders("wb1") and world.wb_feed("wb1")[srid]["status"] == "created"


async def test_the_feeds_period_paging_and_limit(make_app) -> None:
    app = make_app(scenario="tiny:live=1")
    world = app.state.world
    headers = {"Authorization": world.wb_token("wb1")}
    async with httpx.AsyncClient(transport=SandboxTransport(app=app), base_url="http://sb") as sb:
        too_old = {"selectedPeriod": {"start": utc_z(world.now() - 32 * 86400)}}
        assert (await sb.post(FEED, json=too_old, headers=headers)).status_code == 400
        world.advance(60)
        first = {"selectedPeriod": {"start": utc_z(world.now() - 5 * 86400)}, "pagination": {"limit": 5}}
        answer = (await sb.post(FEED, json=first, headers=headers)).json()["data"]
        assert (await sb.post(FEED, json=first, headers=headers)).status_code == 429  # 1 request a minute
        times = [r["updatedAt"] for r in answer["orders"]]
        assert len(times) == 5 and times == sorted(times, reverse=True)  # newest status first
        world.advance(3 * 3600)  # new orders, new statuses
        later = {**first, "pagination": {"limit": 5, "offset": 5, "snapshotTime": answer["snapshotTime"]}}
        page2 = (await sb.post(FEED, json=later, headers=headers)).json()["data"]
        assert page2["snapshotTime"] == answer["snapshotTime"]
        assert all(r["updatedAt"] <= times[-1] for r in page2["orders"])  # cut from the same snapshot
        assert not {r["srid"] for r in page2["orders"]} & {r["srid"] for r in answer["orders"]}
