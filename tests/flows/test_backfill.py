"""Backfill: every order of the range once, silently, resumable."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from flows.backfill import backfill_one
from sandbox.world import World
from storage import upserts
from storage.models import Notification, Order, SyncCursor
from tests.flows.conftest import add_shops, clients_for, make_sandbox
from tests.flows.truth import stored_orders


def _notifications(engine: Engine) -> int:
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(Notification))


async def test_allegro_backfill_of_a_30000_order_window_stores_every_order_once(clean_engine: Engine) -> None:
    app = make_sandbox(scenario="tiny:allegro_orders=30000,history_days=20")
    world: World = app.state.world
    shops = add_shops(clean_engine, world)
    today = world.now_dt().date()
    async with clients_for(app) as clients:
        reports = await backfill_one(shops["allegro1"], today - timedelta(days=25), today, clients=clients)
    assert reports[0].status == "success", reports[0].error
    truth = world.allegro_checkout_forms("allegro1")
    assert len(truth) >= 30_000
    stored = stored_orders(clean_engine, shops["allegro1"])
    assert stored.keys() == truth.keys()
    with Session(clean_engine) as s:
        rows = s.scalar(select(func.count()).select_from(Order).where(Order.shop_id == shops["allegro1"]))
    assert rows == len(truth)  # once each: the key is unique, and nothing else slipped in
    assert _notifications(clean_engine) == 0
    # The 10k listing cap was really in play: the range was read as several windows, never past the cap.
    listing = [r for r in world.log.entries(host="allegro-api") if r.path == "/order/checkout-forms"]
    assert all(r.status == 200 for r in listing)
    windows = {part for r in listing for part in r.query.split("&") if part.startswith("lineItems.boughtAt.gte=")}
    assert len(windows) >= 3


async def test_wb_backfill_resumes_where_it_stopped_and_is_silent(clean_engine: Engine, monkeypatch) -> None:
    app = make_sandbox(scenario="lively")
    world: World = app.state.world
    shops = add_shops(clean_engine, world)
    today = world.now_dt().date()
    since = today - timedelta(days=3)
    real = upserts.upsert_sales
    calls = {"n": 0}

    def dies_on_third_day(session, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("injected: killed mid-backfill")
        return real(session, **kw)

    async with clients_for(app) as clients:
        monkeypatch.setattr(upserts, "upsert_sales", dies_on_third_day)
        with pytest.raises(RuntimeError, match="injected"):
            await backfill_one(shops["wb1"], since, today, clients=clients)
        monkeypatch.setattr(upserts, "upsert_sales", real)
        with Session(clean_engine) as s:
            progress = s.scalars(select(SyncCursor.value).where(SyncCursor.stream.like("backfill:wb:%"))).one()
        assert progress == {"next_day": (since + timedelta(days=2)).isoformat()}
        seq = max(r.seq for r in world.log.entries())
        await backfill_one(shops["wb1"], since, today, clients=clients)
    # The re-run started at the third day: days already done were not read again.
    days_read = {r.query for r in world.log.entries(host="wb-statistics", since_seq=seq)}
    assert all(f"dateFrom={(since + timedelta(days=d)).isoformat()}" not in q for q in days_read for d in (0, 1))
    truth = {k: v for k, v in world.wb_orders("wb1").items() if date.fromisoformat(v["date"][:10]) >= since}
    stored = stored_orders(clean_engine, shops["wb1"])
    assert truth.keys() <= stored.keys()
    assert _notifications(clean_engine) == 0
