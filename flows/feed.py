"""read-wb-feeds: the WB order feed of every active WB shop, on its own fast schedule.

Every sync reads the feed too (`sync-all`, every few minutes); under `sellerpulse serve` this
flow reads it about once a minute per shop besides, so a new order, a cancellation, a buyout or
a return reaches people about a minute after it happened. WB allows one feed request a minute
per account: the feed's own bucket (connectors.ratelimit, shared by every worker) paces the
requests of both flows. A shop whose sync is running is skipped: that sync reads the feed.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from prefect import flow
from sqlalchemy import select
from sqlalchemy.orm import Session

from flows.logs import run_logger
from flows.sync import sync_one
from storage.db import get_engine
from storage.leases import LeaseLost
from storage.models import Shop, ShopStatus
from tasks.clients import Clients, borrowed_or_new
from tasks.context import LIMITED, settled


def active_wb_shop_ids() -> list[int]:
    with Session(get_engine()) as session:
        query = select(Shop.id).where(Shop.status == ShopStatus.active.value, Shop.marketplace == "wb")
        return list(session.scalars(query.order_by(Shop.id)))


async def read_feeds(shop_ids: list[int], *, clients: Clients | None = None, concurrency: int = 4) -> dict[int, str]:
    """The `wb_feed` stream of each shop, at most `concurrency` at a time: shop id -> "ok",
    "failed", "limited" (WB allows this token no feed request yet: none sent) or "skipped" (its
    sync holds the shop, or it is not active)."""
    logger = run_logger()
    gate = asyncio.Semaphore(max(1, concurrency))
    async with borrowed_or_new(clients) as shared:

        async def one(shop_id: int) -> str:
            async with gate:
                try:
                    reports = await sync_one(shop_id, ["feed"], clients=shared)
                except LeaseLost as exc:  # it stalled past its lease: a sync took the shop over
                    logger.warning("order feed of shop %s stopped: %s", shop_id, exc)
                    return "failed"
            if not reports:
                return "skipped"
            failed = [r.error for r in reports if not settled(r)]
            if failed:
                logger.warning("order feed of shop %s failed: %s", shop_id, failed[0])
                return "failed"
            # WB limits this token's feed for hours (a Base token: 1 request per 3 hours): no
            # request was sent; the read goes on once allowed.
            return "limited" if any(r.status == LIMITED for r in reports) else "ok"

        results = await asyncio.gather(*(one(i) for i in shop_ids))
    return dict(zip(shop_ids, results, strict=True))


def read_wb_feeds_run_name() -> str:
    return f"read-wb-feeds-{datetime.now(UTC):%Y%m%d-%H%M%S}"


@flow(name="read-wb-feeds", flow_run_name=read_wb_feeds_run_name, retries=0)
async def read_wb_feeds(concurrency: int = 4) -> dict[int, str]:
    """The order feed of every active WB shop (the sync's other streams are not read)."""
    return await read_feeds(active_wb_shop_ids(), concurrency=concurrency)
