"""The order feed's own schedule (flows/feed.py), below the flow: every active WB shop's feed is
read, nothing else; a shop whose sync holds it is skipped; the feed's 1/min bucket paces reads."""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from flows.feed import active_wb_shop_ids, read_feeds
from flows.sync import sync_one
from sandbox.world import World
from storage.leases import hold
from storage.models import Shop, SyncCursor
from tests.flows.conftest import clients_for


def _cursors(engine: Engine) -> dict[tuple[int, str], dict]:
    with Session(engine) as s:
        return {(c.shop_id, c.stream): c.value for c in s.scalars(select(SyncCursor))}


async def test_the_feed_flow_reads_each_active_wb_shop_and_skips_one_being_synced(
    clean_engine: Engine, sandbox_app, world: World, shops: dict[str, int]
) -> None:
    async with clients_for(sandbox_app) as clients:
        await sync_one(shops["wb1"], clients=clients)  # first sync
        assert active_wb_shop_ids() == [shops["wb1"]]  # Allegro shops have no feed
        before = _cursors(clean_engine)
        world.advance(60)
        assert await read_feeds(active_wb_shop_ids(), clients=clients) == {shops["wb1"]: "ok"}
        after = _cursors(clean_engine)
        changed = {key for key in after if after[key] != before.get(key)}
        assert changed == {(shops["wb1"], "wb_feed")}, "the feed and nothing else"
        world.advance(60)
        async with hold(clean_engine, shop_id=shops["wb1"], kind="sync", seconds=60):  # a sync runs
            assert await read_feeds([shops["wb1"]], clients=clients) == {shops["wb1"]: "skipped"}
        with Session(clean_engine) as s, s.begin():
            s.get(Shop, shops["wb1"]).status = "disabled"
        assert active_wb_shop_ids() == []
