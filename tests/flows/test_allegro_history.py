"""The Allegro history listing (first sync, backfills) is resumable: progress is stored with its
rows, a retry or the next run continues and never reads a finished window again, and the shop
says "history incomplete" until it is done."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import parse_qs

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from flows.backfill import backfill_one
from flows.sync import sync_one
from sandbox.transport import SandboxTransport
from sandbox.world import World
from storage.history import history_complete, history_status, pending_reads
from storage.models import Notification, Order, Shop
from tests.flows.conftest import add_shops, clients_for, make_sandbox
from tests.flows.truth import assert_allegro_matches, stored_orders

SCENARIO = "tiny:allegro_orders=3000,history_days=60"


class BreakingTransport(SandboxTransport):
    """While `broken`, every order-listing request after the first `ok` answers 503."""

    def __init__(self, *, app, ok: int) -> None:  # type: ignore[no-untyped-def]
        super().__init__(app=app)
        self.ok, self.listed, self.broken = ok, 0, True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.broken and request.url.path.endswith("/order/checkout-forms"):
            self.listed += 1
            if self.listed > self.ok:
                body = {"errors": [{"code": "ServiceUnavailable", "message": "try later"}]}
                return httpx.Response(503, json=body, request=request)
        return await super().handle_async_request(request)


def _last_seq(world: World) -> int:
    return max((r.seq for r in world.log.entries()), default=0)


def _listed_from(world: World, since_seq: int) -> list[datetime]:
    """The lower bound of every order-listing request made after `since_seq`."""
    out = []
    for r in world.log.entries(host="allegro-api", since_seq=since_seq):
        if r.path == "/order/checkout-forms":
            out.append(datetime.fromisoformat(parse_qs(r.query)["lineItems.boughtAt.gte"][0]))
    return out


def _count(engine: Engine, model, **where) -> int:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        query = select(func.count()).select_from(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return s.scalar(query) or 0


async def test_an_interrupted_first_sync_continues_where_it_stopped(clean_engine: Engine) -> None:
    app = make_sandbox(scenario=SCENARIO)
    world: World = app.state.world
    shop_id = add_shops(clean_engine, world)["allegro1"]
    transport = BreakingTransport(app=app, ok=12)
    async with clients_for(app, transport=transport) as clients:
        first = await sync_one(shop_id, clients=clients)
        assert any(r.status == "failed" for r in first)
        stored = _count(clean_engine, Order, shop_id=shop_id)
        assert 0 < stored < len(world.allegro_checkout_forms("allegro1"))
        with Session(clean_engine) as s:
            assert history_complete(s, shop_id=shop_id) is False
            [pending] = pending_reads(s, shop_id=shop_id)
            shop = s.get(Shop, shop_id)
            assert shop.status == "active"
            # A history that cannot be finished yet does not keep the shop silent forever: live
            # changes notify from the first sync on, while the rest of the history is read.
            assert shop.notify_from is not None
        assert pending.done_until is not None and pending.done_until > pending.since, "progress was stored"
        transport.broken = False
        seq = _last_seq(world)
        second = await sync_one(shop_id, clients=clients)
    assert all(r.status == "success" for r in second), [(r.stream, r.error) for r in second]
    read_again = _listed_from(world, seq)
    assert read_again and min(read_again) >= pending.done_until, "a finished window was read again"
    assert_allegro_matches(clean_engine, world, "allegro1", shop_id)
    with Session(clean_engine) as s:
        assert history_complete(s, shop_id=shop_id) is True
        assert pending_reads(s, shop_id=shop_id) == []
    assert _count(clean_engine, Notification) == 0  # history is history: nothing notified


async def test_an_interrupted_backfill_resumes_and_the_shop_says_history_incomplete_until_done(
    clean_engine: Engine,
) -> None:
    app = make_sandbox(scenario=SCENARIO)
    world: World = app.state.world
    shops = add_shops(clean_engine, world)
    shop_id = shops["allegro1"]
    today = world.now_dt().date()
    since = today - timedelta(days=55)
    transport = BreakingTransport(app=app, ok=0)
    transport.broken = False
    async with clients_for(app, transport=transport) as clients:
        await sync_one(shop_id, clients=clients)
        with Session(clean_engine) as s:
            assert history_status(s, shop_ids=list(shops.values())) == {shop_id: True, shops["wb1"]: False}
        transport.ok, transport.listed, transport.broken = 10, 0, True
        with pytest.raises(Exception, match="server error"):
            await backfill_one(shop_id, since, today, clients=clients)
        with Session(clean_engine) as s:
            assert history_complete(s, shop_id=shop_id) is False
            [pending] = pending_reads(s, shop_id=shop_id)
        assert pending.done_until is not None and pending.done_until > pending.since
        transport.broken = False
        seq = _last_seq(world)
        reports = await backfill_one(shop_id, since, today, clients=clients)
    assert reports and all(r.status == "success" for r in reports)
    read_again = _listed_from(world, seq)
    assert read_again and min(read_again) >= pending.done_until
    assert stored_orders(clean_engine, shop_id).keys() == world.allegro_checkout_forms("allegro1").keys()
    with Session(clean_engine) as s:
        assert history_complete(s, shop_id=shop_id) is True


async def test_a_write_failing_mid_overlap_loses_and_repeats_nothing(clean_engine: Engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The second history batch fails to write while the batch after it is being fetched: only
    the first batch and its resume point are stored, and the next run reads from there."""
    from tasks import allegro_streams

    app = make_sandbox(scenario=SCENARIO)
    world: World = app.state.world
    shop_id = add_shops(clean_engine, world)["allegro1"]
    real, points = allegro_streams._write_orders, []

    def failing_second_batch(session, ctx, forms, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs.get("read") is not None:
            points.append((kwargs["read"][1], len(forms)))
            if len(points) == 2:
                raise RuntimeError("the database went away mid-batch")
        return real(session, ctx, forms, **kwargs)

    monkeypatch.setattr(allegro_streams, "_write_orders", failing_second_batch)
    async with clients_for(app) as clients:
        first = await sync_one(shop_id, clients=clients)
        assert [r.stream for r in first if r.status == "failed"] == ["allegro_history"]
        (written_until, written_forms), _ = points
        with Session(clean_engine) as s:
            [pending] = pending_reads(s, shop_id=shop_id)
        assert pending.done_until == written_until  # progress only for the batch written
        assert _count(clean_engine, Order, shop_id=shop_id) == written_forms  # the failed one left nothing
        monkeypatch.setattr(allegro_streams, "_write_orders", real)
        seq = _last_seq(world)
        assert all(r.status == "success" for r in await sync_one(shop_id, clients=clients))
    read_again = _listed_from(world, seq)
    assert read_again and min(read_again) >= written_until
    truth = world.allegro_checkout_forms("allegro1")
    assert stored_orders(clean_engine, shop_id).keys() == truth.keys()
    assert _count(clean_engine, Order, shop_id=shop_id) == len(truth)
    assert_allegro_matches(clean_engine, world, "allegro1", shop_id)
