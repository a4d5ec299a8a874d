"""WB reads against the in-process sandbox, compared with its ground truth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors import errors
from connectors.timeutil import msk_to_utc
from tests.connectors.sandbox_harness import make_sandbox

HISTORY_START = datetime(2026, 11, 1, tzinfo=UTC)  # before the tiny scenario's 10 days of history


@pytest.fixture
def sb():  # type: ignore[no-untyped-def]
    return make_sandbox(scenario="tiny:wb_orders=300", rate_limits=False, wb_row_cap=37)


async def test_orders_flag0_pages_dedupe_boundaries_and_match_ground_truth(sb) -> None:  # type: ignore[no-untyped-def]
    truth = sb.world.wb_orders("wb1")
    async with sb.wb() as wb:
        pages = [p async for p in wb.iter_orders(sb.wb_token(), HISTORY_START)]
    got = {}
    for page in pages:
        assert page.errors == []
        for order in page.items:
            prev = got.get(order.srid)
            assert prev is None or order.last_change_date > prev.last_change_date  # only real changes repeat
            got[order.srid] = order
    assert set(got) == set(truth)
    for srid, row in truth.items():
        assert got[srid].raw == row
        assert got[srid].last_change_date == msk_to_utc(row["lastChangeDate"])
    assert len(pages) > 5  # the 37-row cap forced real paging
    assert pages[-1].cursor == max(o.last_change_date for o in got.values())
    assert all(o.last_change_date.tzinfo is UTC for o in got.values())


async def test_paging_from_a_stored_cursor_reads_only_newer_rows_and_stops(sb) -> None:  # type: ignore[no-untyped-def]
    async with sb.wb() as wb:
        pages = [p async for p in wb.iter_orders(sb.wb_token(), HISTORY_START)]
        cursor = pages[-1].cursor
        before = len(sb.requests("wb-statistics"))
        again = [p async for p in wb.iter_orders(sb.wb_token(), cursor)]
    # An idle account: one request, and only the boundary rows come back (idempotent upserts).
    assert len(sb.requests("wb-statistics")) - before == 1
    assert all(o.last_change_date == cursor for p in again for o in p.items)


async def test_sales_keep_returns_apart_by_sale_id(sb) -> None:  # type: ignore[no-untyped-def]
    truth = sb.world.wb_sales("wb1")
    async with sb.wb() as wb:
        sales = [s async for p in wb.iter_sales(sb.wb_token(), HISTORY_START) for s in p.items]
    assert {s.sale_id for s in sales} == set(truth)
    assert all(s.is_return == (s.for_pay < 0 or s.sale_id.startswith("R")) for s in sales)


async def test_flag1_reads_one_moscow_day(sb) -> None:  # type: ignore[no-untyped-def]
    truth = sb.world.wb_orders("wb1")
    day = msk_to_utc(next(iter(truth.values()))["date"]).astimezone(UTC) + timedelta(hours=3)
    async with sb.wb() as wb:
        page = await wb.orders_for_day(sb.wb_token(), day.date())
    assert page.items and all((o.date + timedelta(hours=3)).date() == day.date() for o in page.items)


async def test_stocks_feedbacks_cards(sb) -> None:  # type: ignore[no-untyped-def]
    token = sb.wb_token()
    async with sb.wb() as wb:
        stock = [r async for p in wb.iter_stock_pages(token, limit=7) for r in p.items]
        reviews = [r async for p in wb.iter_feedbacks(token, take=5) for r in p.items]
        archived = [r async for p in wb.iter_feedback_archive(token, take=3) for r in p.items]
        cards = [c async for p in wb.iter_cards(token, limit=2) for c in p.items]
    truth_stock = sb.world.wb_stock("wb1")
    assert {(r.nm_id, r.chrt_id, r.warehouse_id): r.quantity for r in stock} == truth_stock
    # Both lists and the archive: every review, each in one place.
    assert {r.id for r in reviews} | {r.id for r in archived} == set(sb.world.wb_reviews("wb1"))
    assert not {r.id for r in reviews} & {r.id for r in archived}
    assert {r.is_answered for r in reviews} <= {True, False}
    assert len({c.nm_id for c in cards}) == len(cards) == len(sb.world.wb["wb1"].products)


async def test_fbs_new_list_and_statuses(sb) -> None:  # type: ignore[no-untyped-def]
    token = sb.wb_token()
    now = sb.world.now_dt()
    async with sb.wb() as wb:
        new = await wb.fbs_new_orders(token)
        listed = [
            o
            async for p in wb.iter_fbs_orders(token, date_from=now - timedelta(days=29), date_to=now, limit=10)
            for o in p.items
        ]
        statuses = await wb.fbs_order_statuses(token, [o.id for o in listed])
    assert new.errors == [] and listed
    assert len({o.id for o in listed}) == len(listed)
    assert {s.id for s in statuses.items} == {o.id for o in listed}


async def test_wrong_category_token_is_credentials_rejected_at_once(sb) -> None:  # type: ignore[no-untyped-def]
    token = sb.world.mint_wb_token("wb1", ["content"])
    async with sb.wb() as wb:
        with pytest.raises(errors.CredentialsRejected):
            [p async for p in wb.iter_orders(token, HISTORY_START)]
    assert len(sb.requests("wb-statistics")) == 1
