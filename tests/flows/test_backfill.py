"""Backfill: every order of the range once, silently, resumable."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from connectors.timeutil import MSK
from flows.backfill import backfill_one
from flows.common import summary_markdown
from flows.sync import sync_one
from sandbox.world import World
from storage import upserts
from storage.models import Notification, Order, SyncCursor
from tasks.wb_history import choose_mode
from tests.flows.conftest import add_shops, clients_for, make_sandbox
from tests.flows.truth import stored_orders, stored_sales


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


def _statistics_calls(world: World, since_seq: int = 0) -> list[dict[str, str]]:
    calls = world.log.entries(host="wb-statistics", since_seq=since_seq)
    return [dict(part.split("=", 1) for part in r.query.split("&")) | {"path": r.path} for r in calls]


def _orders_from(world: World, shop: str, first: date) -> dict[str, dict]:
    return {k: v for k, v in world.wb_orders(shop).items() if date.fromisoformat(v["date"][:10]) >= first}


def _sales_from(world: World, shop: str, first: date) -> dict[str, dict]:
    return {k: v for k, v in world.wb_sales(shop).items() if date.fromisoformat(v["date"][:10]) >= first}


async def test_wb_backfill_reads_with_flag0_resumes_where_it_stopped_and_is_silent(
    clean_engine: Engine, monkeypatch
) -> None:
    app = make_sandbox(scenario="tiny:wb_orders=2000,history_days=60", wb_row_cap=300)
    world: World = app.state.world
    shops = add_shops(clean_engine, world)
    today = world.now_dt().date()
    since = today - timedelta(days=60)
    real = upserts.upsert_orders
    calls = {"n": 0}

    def dies_on_third_page(session, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("injected: killed mid-backfill")
        return real(session, **kw)

    async with clients_for(app, wb_statistics_page_rows=300) as clients:
        monkeypatch.setattr(upserts, "upsert_orders", dies_on_third_page)
        with pytest.raises(RuntimeError, match="injected"):
            await backfill_one(shops["wb1"], since, today, clients=clients)
        monkeypatch.setattr(upserts, "upsert_orders", real)
        with Session(clean_engine) as s:
            progress = s.scalars(select(SyncCursor.value).where(SyncCursor.stream.like("backfill:wb:%:orders"))).one()
        assert progress["mode"] == "flag0" and progress["from"]  # two pages written, their point stored with them
        seq = max(r.seq for r in world.log.entries())
        reports = await backfill_one(shops["wb1"], since, today, clients=clients)
    assert [r.status for r in reports] == ["success"] * 3
    # The re-run went on from the stored point: the first two pages were not read again.
    resumed = [c for c in _statistics_calls(world, seq) if c["path"] == "/api/v1/supplier/orders"]
    assert resumed[0]["dateFrom"] > since.isoformat() + "T00:00:00" and resumed[0]["flag"] == "0"
    # flag=0 only: a request per 300 rows, never one per day.
    everything = _statistics_calls(world)
    assert {c["flag"] for c in everything} == {"0"}
    orders_truth, sales_truth = _orders_from(world, "wb1", since), _sales_from(world, "wb1", since)
    assert len([c for c in everything if c["path"] == "/api/v1/supplier/orders"]) <= len(orders_truth) // 300 + 4
    assert orders_truth.keys() <= stored_orders(clean_engine, shops["wb1"]).keys()
    assert sales_truth.keys() <= stored_sales(clean_engine, shops["wb1"]).keys()
    latest = world.wb_orders("wb1")
    stale = [k for k, v in stored_orders(clean_engine, shops["wb1"]).items() if v != latest[k]]
    assert not stale
    assert _notifications(clean_engine) == 0


async def test_wb_backfill_is_clamped_to_the_90_days_wb_keeps_and_says_so(clean_engine: Engine) -> None:
    app = make_sandbox(scenario="tiny:wb_orders=900,history_days=120")
    world: World = app.state.world
    shops = add_shops(clean_engine, world)
    today = world.now_dt().date()
    async with clients_for(app) as clients:
        reports = await backfill_one(shops["wb1"], today - timedelta(days=180), today, clients=clients)
    oldest = (world.now_dt().astimezone(MSK) - timedelta(days=90)).date()
    notes = {r.stream: r.note for r in reports}
    assert "90 days" in notes["backfill_wb_orders"] and str(oldest) in notes["backfill_wb_orders"]
    assert notes["backfill_wb_sales"] == notes["backfill_wb_orders"]
    # Nothing was asked for before the oldest day WB still holds.
    calls = _statistics_calls(world)
    assert calls and all(c["dateFrom"][:10] >= oldest.isoformat() for c in calls)
    assert (
        _orders_from(world, "wb1", oldest + timedelta(days=1)).keys()
        <= stored_orders(clean_engine, shops["wb1"]).keys()
    )
    assert "90 days" in summary_markdown("backfill", reports)


async def test_wb_backfill_falls_back_to_days_where_flag0_cannot_advance(clean_engine: Engine) -> None:
    # Two rows a response: a basket of three or more rows sharing one lastChangeDate cannot be
    # paged past with flag=0; the range is then read day by day.
    app = make_sandbox(scenario="tiny", wb_row_cap=2)
    world: World = app.state.world
    shops = add_shops(clean_engine, world)
    today = world.now_dt().date()
    since = today - timedelta(days=10)
    async with clients_for(app, wb_statistics_page_rows=2) as clients:
        reports = await backfill_one(shops["wb1"], since, today, streams=["orders"], clients=clients)
    assert [r.status for r in reports] == ["success", "success"]
    flags = [c["flag"] for c in _statistics_calls(world) if c["path"] == "/api/v1/supplier/orders"]
    assert "0" in flags and flags.count("1") == 11  # each day of the range once, after flag=0 got stuck
    assert _orders_from(world, "wb1", since).keys() <= stored_orders(clean_engine, shops["wb1"]).keys()
    with Session(clean_engine) as s:
        done = s.scalars(select(SyncCursor.value).where(SyncCursor.stream.like("backfill:wb:%:orders"))).one()
    assert done == {"mode": "days", "done": True}


async def test_a_short_wb_range_far_back_is_read_day_by_day(clean_engine: Engine) -> None:
    app = make_sandbox(scenario="tiny:wb_orders=2000,history_days=60", wb_row_cap=300)
    world: World = app.state.world
    shops = add_shops(clean_engine, world)
    today = world.now_dt().date()
    async with clients_for(app, wb_statistics_page_rows=300) as clients:
        await sync_one(shops["wb1"], streams=["orders", "sales"], clients=clients)  # what the shop holds
        seq = max(r.seq for r in world.log.entries())
        day = today - timedelta(days=50)
        reports = await backfill_one(shops["wb1"], day, day + timedelta(days=1), streams=["orders"], clients=clients)
    assert all(r.status == "success" for r in reports)
    calls = _statistics_calls(world, seq)
    # Two days by flag=1 (4 requests) instead of ~6 flag=0 pages per report from 50 days ago to now.
    assert sorted((c["path"], c["flag"], c["dateFrom"]) for c in calls) == sorted(
        (path, "1", d.isoformat())
        for path in ("/api/v1/supplier/orders", "/api/v1/supplier/sales")
        for d in (day, day + timedelta(days=1))
    )


def test_flag1_is_chosen_only_when_it_takes_fewer_requests() -> None:
    assert choose_mode(days=90, rows_changed_since=0, page_rows=80_000) == "flag0"
    assert choose_mode(days=90, rows_changed_since=5_000_000, page_rows=80_000) == "flag0"  # 63 requests
    assert choose_mode(days=90, rows_changed_since=8_000_000, page_rows=80_000) == "days"  # 101 requests
    assert choose_mode(days=2, rows_changed_since=200_000, page_rows=80_000) == "days"
    assert choose_mode(days=3, rows_changed_since=200_000, page_rows=80_000) == "flag0"


def test_cli_says_a_wb_range_beyond_90_days_is_gone_and_reads_nothing(clean_engine: Engine) -> None:
    world = make_sandbox().state.world
    shops = add_shops(clean_engine, world)
    cli = Path(sys.executable).with_name("sellerpulse")
    done = subprocess.run(
        [
            str(cli),
            "backfill",
            "--shop",
            str(shops["wb1"]),
            "--since",
            "2020-01-01",
            "--until",
            "2020-02-01",
            "--streams",
            "orders",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "WB keeps statistics for 90 days" in done.stderr and "nothing between 2020-01-01" in done.stderr
    assert "Traceback" not in done.stderr
    with Session(clean_engine) as s:
        assert s.scalars(select(SyncCursor)).all() == []  # no flow ran
