"""The WB order feed connector against the sandbox: snapshot paging, its own 1/min bucket, and
tolerance of rows it cannot fully read."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

import pytest

from connectors.ratelimit import BucketRegistry, RateLimits
from connectors.wildberries import client as wb_client
from connectors.wildberries.paging import OrderFeedPaginator
from tests.connectors.sandbox_harness import make_sandbox


def test_only_pages_after_the_first_send_the_first_answers_snapshot() -> None:
    paging = OrderFeedPaginator(start="2026-11-01T00:00:00.000Z", limit=2)
    assert "snapshotTime" not in paging.request_body()["pagination"]
    paging.update_state(2, "2026-11-23T09:00:00Z")
    paging.update_state(2, "2026-11-23T09:05:00Z")  # a later answer's own snapshot is not followed
    body = paging.request_body()["pagination"]
    assert body == {"limit": 2, "offset": 4, "snapshotTime": "2026-11-23T09:00:00Z"}
    paging.update_state(1, None)
    assert not paging.has_next_page


async def test_a_paged_read_is_one_snapshot_even_while_the_world_moves() -> None:
    sb = make_sandbox(scenario="tiny:wb_orders=2000,live=1", rate_limits=False)
    world = sb.world
    truth = world.wb_feed("wb1")  # as the feed shows it now: the snapshot the read will pin
    seen: Counter = Counter()
    async with sb.wb() as wb:
        async for page in wb.iter_order_feed(sb.wb_token(), world.now_dt() - timedelta(days=40), now=world.now_dt(),
                                             limit=250):  # fmt: skip
            assert page.errors == [] and page.cursor is not None
            seen.update(item.srid for item in page.items)
            world.advance(300)  # new orders and status changes between pages (1/min in real life)
    assert set(seen) <= set(truth) and all(n == 1 for n in seen.values())
    assert set(seen) == set(truth)
    assert len([r for r in sb.requests("wb-analytics")]) >= 8


async def test_feed_reads_share_their_own_one_a_minute_bucket() -> None:
    """Two reads back to back: the second waits a minute for the feed's bucket (not the other
    analytics methods' 3/min), and the sandbox, limits on, refuses nothing."""
    sb = make_sandbox(rate_limits=True)
    world = sb.world
    clock = [0.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds
        world.advance(seconds)

    sb.registry = BucketRegistry(clock=lambda: clock[0])
    async with sb.wb(limits=RateLimits(), sleep=sleep, clock=lambda: clock[0]) as wb:
        for _ in range(2):
            async for _page in wb.iter_order_feed(sb.wb_token(), world.now_dt(), now=world.now_dt()):
                pass
        async for _page in wb.iter_stock_pages(sb.wb_token()):  # another analytics bucket: no wait
            pass
    # A minute and the feed's room for a late sender (RateLimits.for_category), not the 20 s of
    # the other analytics methods' 3/min.
    feed = RateLimits().for_category("wb_order_feed")
    assert len(waits) == 1 and waits[0] == pytest.approx(60 + feed.tolerance) and 60 < waits[0] < 66
    assert world.limiter.refused() == {}


async def test_rows_missing_fields_are_read_and_unknown_shapes_logged_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(wb_client, "_feed_shapes_logged", set())
    sb = make_sandbox(scenario="tiny:wb_orders=2000", rate_limits=False, wb_feed_drift=0.3)
    caplog.set_level(logging.WARNING, logger="connectors.wildberries")
    items = []
    async with sb.wb() as wb:
        for _ in range(2):
            async for page in wb.iter_order_feed(sb.wb_token(), sb.world.now_dt() - timedelta(days=30),
                                                 now=sb.world.now_dt(), limit=500):  # fmt: skip
                assert page.errors == []  # every row has its srid: none is dropped by the parser
                items += page.items
    assert {i.srid for i in items} == set(sb.world.wb_feed("wb1"))
    assert any(i.status == "inTransit" for i in items) and any(i.status is None for i in items)
    assert any(i.nm_id is None for i in items) and any(i.seller_price is None for i in items)
    messages = Counter(r.getMessage() for r in caplog.records)
    assert messages and all(n == 1 for n in messages.values()), messages
