"""A WB order the real-time order feed shows before statistics list it (they refresh every 30
minutes, marketplace-facts "Order feed") is in the API's order list and detail at once, marked
`in_statistics` false with the feed's fields; once statistics list it, its stored order takes
its place: never both, never counted in the figures before (storage.queries.ORDER_LIST)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from flows.sync import sync_one
from sandbox.world import World
from storage import queries
from storage.models import Order
from tests.flows.conftest import add_shops, clients_for, make_sandbox
from tests.notify.scenario import sync_all

SCENARIO = "tiny:wb_orders=2500,history_days=10,live=1"


def _listed(engine: Engine, shop_id: int, status: str | None = None) -> tuple[list, int]:
    rows, total, offset = [], None, 0
    with Session(engine) as session:
        while True:
            page, total = queries.recent_orders(session, shop_id=shop_id, status=status, limit=200, offset=offset)
            rows += page
            offset += len(page)
            if not page or offset >= total:
                return rows, total


def _counted(engine: Engine, shop_id: int) -> int:
    with Session(engine) as session:
        now = datetime.now(UTC)
        periods = queries.order_periods(session, shop_id=shop_id, now=now, tz=UTC)
    return {p.name: p.orders for p in periods}["30d"]


async def _read_feed(shop_id: int, clients) -> None:
    reports = await sync_one(shop_id, ["feed"], clients=clients)
    assert [r.status for r in reports] == ["success"], [(r.stream, r.error) for r in reports]


async def test_a_feed_only_wb_order_is_listed_until_statistics_list_it(clean_engine: Engine) -> None:
    app = make_sandbox(scenario=SCENARIO, wb_statistics_refresh_s=1800, seed=4)
    world: World = app.state.world
    async with clients_for(app) as clients:
        shops = {name: sid for name, sid in add_shops(clean_engine, world).items() if name.startswith("wb")}
        shop_id = shops["wb1"]
        await sync_all(shops, clients)
        await _read_feed(shop_id, clients)
        counted_before = _counted(clean_engine, shop_id)

        # Twenty minutes on, the feed read (statistics have not refreshed since).
        for _ in range(2):
            world.advance(600)
            await _read_feed(shop_id, clients)
        feed = world.wb_feed("wb1")
        rows, total = _listed(clean_engine, shop_id)
        shown = {r.external_id: r for r in rows}
        assert len(shown) == len(rows) == total  # each unit once
        feed_only = {r.external_id for r in rows if not r.in_statistics}
        assert feed_only, "the scenario placed no order in twenty minutes"
        assert set(feed) <= set(shown)  # every unit the feed shows is in the list
        assert all(srid in feed for srid in feed_only)
        for srid in feed_only:
            row, unit = shown[srid], feed[srid]
            assert row.bought_at is not None and row.basket_id is None and row.marketplace_status == unit["status"]
            assert row.status == {"created": "new", "cancel": "cancelled"}.get(unit["status"], row.status)
        assert Counter(r.status for r in rows if not r.in_statistics)["new"] > 0
        # The status filter finds them as the list shows them.
        news, _ = _listed(clean_engine, shop_id, "new")
        assert {r.external_id for r in news if not r.in_statistics} == {
            s for s in feed_only if shown[s].status == "new"
        }
        # Not in the figures: statistics are the record (the seller heard of them by notification).
        assert _counted(clean_engine, shop_id) == counted_before

        # Detail: the feed's one unit.
        with Session(clean_engine) as session:
            details = {s: queries.order_with_lines(session, shop_id=shop_id, order_id=shown[s].id) for s in feed_only}
        for srid, (order, lines) in details.items():
            assert order.external_id == srid and not order.in_statistics
            assert [(line.sku, line.quantity) for line in lines] == [(str(feed[srid]["nmId"]), 1)]

        # Statistics refresh and are synced: each stored order takes its feed-only unit's place.
        world.advance(1800)
        await sync_all({"wb1": shop_id}, clients)
        await _read_feed(shop_id, clients)
        rows, total = _listed(clean_engine, shop_id)
        assert len({r.external_id for r in rows}) == len(rows) == total
        now_listed = {r.external_id: r for r in rows}
        with Session(clean_engine) as session:
            stored = set(session.scalars(select(Order.external_id).where(Order.external_id.in_(feed_only))))
        moved = {s for s in feed_only if now_listed[s].in_statistics}
        assert moved and moved == stored, (len(moved), len(stored))
        assert _counted(clean_engine, shop_id) >= counted_before + len(moved)
        # The id shown while it was feed-only opens the stored order.
        with Session(clean_engine) as session:
            for srid in moved:
                order, _ = queries.order_with_lines(session, shop_id=shop_id, order_id=shown[srid].id)
                assert order.in_statistics and order.id == now_listed[srid].id != shown[srid].id
