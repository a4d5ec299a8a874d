"""The sync against the sandbox: the database ends equal to the marketplace's ground truth."""

from __future__ import annotations

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from flows.sync import sync_one
from sandbox.world import World
from storage.models import Notification, Shop, SyncRun
from tasks.clients import Clients
from tests.flows.truth import assert_allegro_matches, assert_wb_matches


async def test_first_sync_backs_up_everything_silently(
    clean_engine: Engine, world: World, clients: Clients, shops: dict[str, int]
) -> None:
    for name, shop_id in shops.items():
        reports = await sync_one(shop_id, clients=clients)
        assert all(r.status == "success" for r in reports), [(r.stream, r.error) for r in reports]

    assert_wb_matches(clean_engine, world, "wb1", shops["wb1"])
    assert_allegro_matches(clean_engine, world, "allegro1", shops["allegro1"])
    with Session(clean_engine) as s:
        assert s.scalar(select(func.count()).select_from(Notification)) == 0
        assert all(shop.notify_from is not None for shop in s.scalars(select(Shop)))
        runs = s.scalars(select(SyncRun)).all()
        assert {r.status for r in runs} == {"success"} and all(r.finished_at for r in runs)
