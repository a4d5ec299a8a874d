"""The runs of one sync-all cycle share its shops (flows.fanout): each is given every due shop
of its marketplace and the cycle's start, and a shop is synced once per cycle however many runs
reach it (the check is made under the shop's lease). The sandbox and real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from flows.fanout import due_again, rotated, runs_to_start
from flows.sync import sync_many, sync_one
from storage.models import SyncRun
from storage.sync_state import database_now, synced_since
from tasks.clients import Clients


def _runs_per_stream(engine: Engine, since) -> dict[tuple[int, str], int]:
    with Session(engine) as s:
        rows = s.execute(
            select(SyncRun.shop_id, SyncRun.stream, func.count())
            .where(SyncRun.kind == "sync", SyncRun.started_at >= since)
            .group_by(SyncRun.shop_id, SyncRun.stream)
        ).all()
    return {(shop, stream): n for shop, stream, n in rows}


async def test_two_runs_of_a_cycle_sync_each_shop_once_and_a_later_cycle_syncs_them_again(
    clean_engine: Engine, clients: Clients, shops: dict[str, int]
) -> None:
    ids = sorted(shops.values())
    since = database_now(clean_engine)
    # A WB shop's order feed read on its own schedule (flows.feed) is not the cycle's sync of it.
    wb = next(i for name, i in shops.items() if name.startswith("wb"))
    assert await sync_one(wb, ["feed"], clients=clients)
    assert synced_since(clean_engine, ids, since) == set()

    first, second = await asyncio.gather(
        sync_many(ids, concurrency=2, as_flows=False, since=since),
        sync_many(rotated(ids, 1, 2), concurrency=2, as_flows=False, since=since),
    )
    assert {i: sorted([first[i], second[i]]) for i in ids} == {i: ["ok", "skipped"] for i in ids}
    runs = _runs_per_stream(clean_engine, since)
    assert {shop for shop, _ in runs} == set(ids)
    twice = {k: n for k, n in runs.items() if n != 1 and k != (wb, "wb_feed")}
    assert twice == {}, f"synced twice in one cycle: {twice}"
    assert runs[(wb, "wb_feed")] == 2  # its own read and the sync's
    assert synced_since(clean_engine, ids, since) == set(ids)

    # A run of the same cycle that starts late finds nothing left to do.
    late = await sync_many(ids, concurrency=2, as_flows=False, since=since)
    assert set(late.values()) == {"skipped"}
    assert _runs_per_stream(clean_engine, since) == runs
    # The next cycle syncs every shop again.
    nxt = await sync_many(ids, concurrency=2, as_flows=False, since=database_now(clean_engine))
    assert set(nxt.values()) == {"ok"}


def test_a_cycle_starts_a_run_per_batch_of_due_shops_within_the_queues_free_slots() -> None:
    assert runs_to_start(200, batch_size=100, free=4) == 2
    assert runs_to_start(201, batch_size=100, free=4) == 3
    assert runs_to_start(1000, batch_size=100, free=4) == 4  # the queue's limit bounds it
    assert runs_to_start(10, batch_size=5, free=0) == 0  # every slot taken: none piles up
    assert runs_to_start(10, batch_size=5, free=-1) == 0  # more running than the limit (it was lowered)
    assert runs_to_start(0, batch_size=5, free=3) == 0


def test_each_run_of_a_cycle_gets_every_shop_from_a_different_place() -> None:
    ids = list(range(1, 11))
    parts = [rotated(ids, p, 3) for p in range(3)]
    assert all(sorted(p) == ids for p in parts)
    assert [p[0] for p in parts] == [1, 4, 7]
    assert rotated([], 0, 2) == [] and rotated(ids, 0, 1) == ids


async def test_a_shop_falls_due_again_once_its_last_sync_began_an_interval_ago(
    clean_engine: Engine, clients: Clients, shops: dict[str, int]
) -> None:
    wb = sorted(i for name, i in shops.items() if name.startswith("wb"))
    assert await sync_one(wb[0], clients=clients)
    due, since = due_again(clean_engine, {"wb"}, interval=timedelta(hours=1))
    assert due == wb[1:] and since < database_now(clean_engine) - timedelta(minutes=59)
    due, _ = due_again(clean_engine, {"wb"}, interval=timedelta(0))
    assert due == wb  # an interval on: every shop again
    assert due_again(clean_engine, {"allegro"}, interval=timedelta(0))[0] == sorted(
        i for name, i in shops.items() if name.startswith("allegro")
    )
