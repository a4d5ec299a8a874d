"""A sync under its shop's lease (storage.leases), with the sandbox and real PostgreSQL: two
syncs of one shop never run at once, a renewed lease outlives its length for a long sync, and
a sync that stalled past its lease while another took the shop over writes nothing after that
point: the shop's data and notifications end exact (nothing lost, nothing duplicated)."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, text

from flows.backfill import backfill_one
from flows.sync import sync_one
from sandbox.transport import SandboxTransport
from sandbox.world import World
from storage import leases
from storage.leases import LeaseLost
from storage.models import Base
from tasks.clients import Clients
from tests.flows.conftest import add_shops, clients_for, make_sandbox
from tests.flows.truth import assert_wb_matches
from tests.notify.scenario import add_owners, expected, notify_from, stored

ORDERS = "/api/v1/supplier/orders"  # the WB statistics orders report: the third stream's first call


class GatedTransport(SandboxTransport):
    """The sandbox, except that requests for `path` wait until `gate` is set (a marketplace
    that hangs, or a process that stalls before its next request goes out)."""

    def __init__(self, app: FastAPI, path: str) -> None:
        super().__init__(app=app)
        self.path, self.gate, self.waiting = path, asyncio.Event(), asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(self.path):
            self.waiting.set()
            await self.gate.wait()
        return await super().handle_async_request(request)


def _fingerprint(engine: Engine) -> dict[str, tuple[int, int]]:
    """Per table: rows, and the newest writing transaction among them (any insert or update
    after a point shows as a larger xmin, any delete as fewer rows)."""
    out = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            q = f'SELECT count(*), coalesce(max(xmin::text::bigint), 0) FROM "{table.name}"'
            out[table.name] = tuple(conn.execute(text(q)).one())
    return out


async def _wait(event: asyncio.Event, what: str, task: asyncio.Task[Any]) -> None:
    """Until `event` is set, failing if `task` ends first (or after a deadline)."""
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter, task}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    assert event.is_set() and not task.done(), f"{what}: {task.exception() if task.done() else 'timed out'}"


async def test_two_syncs_of_one_shop_at_once_one_runs_the_other_skips(
    clean_engine: Engine, sandbox_app: FastAPI, shops: dict[str, int]
) -> None:
    transport = GatedTransport(sandbox_app, ORDERS)
    async with clients_for(sandbox_app, transport=transport) as slow, clients_for(sandbox_app) as fast:
        first = asyncio.create_task(sync_one(shops["wb1"], clients=slow))
        await _wait(transport.waiting, "the first sync reaching the orders", first)
        # The first holds the shop (no connection held meanwhile): the second skips at once.
        assert await sync_one(shops["wb1"], clients=fast) == []
        transport.gate.set()
        reports = await first
    assert reports and all(r.status == "success" for r in reports), [(r.stream, r.error) for r in reports]
    # Released at the end: the next sync runs.
    async with clients_for(sandbox_app) as clients:
        assert await sync_one(shops["wb1"], clients=clients)


async def test_a_sync_longer_than_its_lease_keeps_it_by_renewing(
    clean_engine: Engine, sandbox_app: FastAPI, shops: dict[str, int]
) -> None:
    seconds = 1.5
    transport = GatedTransport(sandbox_app, ORDERS)
    async with clients_for(sandbox_app, transport=transport, sync_lease_seconds=seconds) as clients:
        sync = asyncio.create_task(sync_one(shops["wb1"], clients=clients))
        await _wait(transport.waiting, "the sync reaching the orders", sync)
        # The marketplace hangs for three lease lengths: every try to take the shop fails.
        until = time.monotonic() + 3 * seconds
        while time.monotonic() < until:
            assert leases.take(clean_engine, shop_id=shops["wb1"], kind="sync", seconds=seconds) is None
            await asyncio.sleep(0.1)
        transport.gate.set()
        reports = await sync
    assert reports and all(r.status == "success" for r in reports), [(r.stream, r.error) for r in reports]
    assert leases.take(clean_engine, shop_id=shops["wb1"], kind="sync", seconds=seconds) is not None


async def test_a_stalled_sync_whose_lease_was_taken_over_writes_nothing_after(
    clean_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_sandbox(scenario="lively")
    world: World = app.state.world
    shop_ids = add_shops(clean_engine, world)
    shop = shop_ids["wb1"]
    add_owners(clean_engine, world, {"wb1": shop})
    seconds = 1.5
    async with clients_for(app, sync_lease_seconds=seconds) as clients:
        assert await sync_one(shop, clients=clients)  # first sync: silent, sets notify-from
        world.advance(900)

        # The stalled process: its next orders request and its heartbeat both hang (as a
        # process paused by the kernel, or a machine that froze, would), then it wakes.
        stalled_token: list[int] = []
        woken = threading.Event()
        real_renew = leases.renew

        def renew(engine: Engine, lease: leases.Lease) -> bool:
            if lease.token in stalled_token:
                woken.wait(60)
                raise ConnectionError("stalled: this heartbeat never reaches the database")
            return real_renew(engine, lease)

        monkeypatch.setattr(leases, "renew", renew)
        transport = GatedTransport(app, ORDERS)
        async with clients_for(app, transport=transport, sync_lease_seconds=seconds) as stalling:
            a = asyncio.create_task(sync_one(shop, clients=stalling))
            await _wait(transport.waiting, "the first sync reaching the orders", a)
            with clean_engine.connect() as conn:
                stalled_token.append(conn.execute(text("SELECT token FROM sync_leases")).scalar_one())
            # Its lease runs out; another process takes the shop over and syncs it all.
            b = await sync_one(shop, clients=clients, wait_seconds=30)
            assert b and all(r.status == "success" for r in b), [(r.stream, r.error) for r in b]
            world.advance(900)  # more happens: what the stalled one reads next is news
            before = _fingerprint(clean_engine)
            transport.gate.set()
            woken.set()
            with pytest.raises(LeaseLost, match="expired or was taken over"):
                await a
        assert _fingerprint(clean_engine) == before, "the stalled sync wrote after losing its lease"
        # The next sync brings what the stalled one could not write; it reaps the stalled run.
        c = await sync_one(shop, clients=clients)
        assert c and all(r.status == "success" for r in c), [(r.stream, r.error) for r in c]
    assert_wb_matches(clean_engine, world, "wb1", shop)
    want, got = expected(world, "wb1", notify_from(clean_engine, shop), world.now_dt()), stored(clean_engine, shop)
    assert want == got and sum(want.values()) > 0 and all(n == 1 for n in got.values())
    with clean_engine.connect() as conn:
        runs = conn.execute(
            text("SELECT status, error FROM sync_runs WHERE lease_token = :t AND stream = 'wb_orders'"),
            {"t": stalled_token[0]},
        ).all()
    assert [(s, e.startswith("crashed:")) for s, e in runs] == [("failed", True)]


async def test_a_backfill_runs_under_a_lease_of_its_own_beside_a_sync(
    clean_engine: Engine, world: World, clients: Clients, shops: dict[str, int]
) -> None:
    shop = shops["wb1"]
    since = (world.now_dt() - timedelta(days=3)).date()
    other = leases.take(clean_engine, shop_id=shop, kind="backfill", seconds=60)
    assert other is not None
    assert await backfill_one(shop, since, clients=clients) == []  # another backfill holds the shop
    leases.release(clean_engine, other)
    sync = leases.take(clean_engine, shop_id=shop, kind="sync", seconds=60)  # a sync runs meanwhile
    assert sync is not None
    reports = await backfill_one(shop, since, clients=clients)
    assert reports and all(r.status == "success" for r in reports), [(r.stream, r.error) for r in reports]
    with clean_engine.connect() as conn:
        tokens = conn.execute(text("SELECT DISTINCT lease_token FROM sync_runs WHERE kind = 'backfill'")).all()
        left = conn.execute(text("SELECT kind FROM sync_leases")).scalars().all()
    # Every backfill run names the backfill's own lease (taken after the sync's); it is released.
    assert len(tokens) == 1 and tokens[0][0] > sync.token and left == ["sync"]
