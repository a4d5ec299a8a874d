"""A WB order's status in the API's order views is what happened to it: statistics' orders know
only a cancellation, the sales report a buyout or a return (days later), the order feed all of
them in real time. After a sync and feed reads against the sandbox, every stored order shows the
status of its latest real transition (storage.queries.ORDER_STATUSES)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from flows.sync import sync_one
from sandbox.world import World
from storage import queries
from tests.flows.conftest import add_shops, clients_for, make_sandbox
from tests.notify.scenario import sync_all

REFRESH = 1800
SCENARIO = "tiny:wb_orders=2500,history_days=10,live=1"
STATUS_AFTER = {"new_order": "new", "cancellation": "cancelled", "buyout": "delivered", "return": "returned"}


def _truth(world: World, shop: str) -> dict[str, str]:
    """srid -> the status its latest transition so far left it in."""
    latest: dict[str, str] = {}
    for t in world.transitions(shop):  # oldest first
        if t.kind in STATUS_AFTER:
            latest[t.entity_id] = STATUS_AFTER[t.kind]
    return latest


def _shown(engine: Engine, shop_id: int, status: str | None = None) -> dict[str, tuple[str, bool]]:
    """srid -> (status, is_cancelled) as the API's order list pages them."""
    out: dict[str, tuple[str, bool]] = {}
    with Session(engine) as session:
        offset = 0
        while True:
            rows, total = queries.recent_orders(session, shop_id=shop_id, status=status, limit=200, offset=offset)
            out.update({r.external_id: (r.status, r.is_cancelled) for r in rows})
            offset += len(rows)
            if not rows or offset >= total:
                return out


def _mismatches(shown: dict[str, tuple[str, bool]], truth: dict[str, str]) -> list[tuple[str, str, str]]:
    return [(srid, got, truth[srid]) for srid, (got, _) in shown.items() if srid in truth and got != truth[srid]]


async def _read_feed(shops: dict[str, int], clients) -> None:
    for shop_id in shops.values():
        reports = await sync_one(shop_id, ["feed"], clients=clients)
        assert [r.status for r in reports] == ["success"], [(r.stream, r.error) for r in reports]


async def test_each_wb_order_shows_the_status_of_what_last_happened_to_it(clean_engine: Engine) -> None:
    app = make_sandbox(scenario=SCENARIO, wb_statistics_refresh_s=REFRESH, seed=4)
    world: World = app.state.world
    async with clients_for(app) as clients:
        shops = {name: sid for name, sid in add_shops(clean_engine, world).items() if name.startswith("wb")}
        shop_id = shops["wb1"]
        await sync_all(shops, clients)
        await _read_feed(shops, clients)
        shown = _shown(clean_engine, shop_id)
        truth = _truth(world, "wb1")
        kinds = Counter(truth[srid] for srid in shown if srid in truth)
        assert {"new", "cancelled", "delivered", "returned"} <= set(kinds), kinds
        assert not _mismatches(shown, truth), _mismatches(shown, truth)[:5]

        # Five hours on, only the feed read (statistics list none of it yet): still exact.
        for _ in range(30):
            world.advance(600)
            await _read_feed(shops, clients)
        shown, truth = _shown(clean_engine, shop_id), _truth(world, "wb1")
        assert not _mismatches(shown, truth), _mismatches(shown, truth)[:5]
        assert all(cancelled == (status == "cancelled") for status, cancelled in shown.values())

        # The status filter selects by the same status the list shows.
        for status in ("new", "cancelled", "delivered", "returned"):
            only = _shown(clean_engine, shop_id, status)
            assert only and only == {s: v for s, v in shown.items() if v[0] == status}, status
