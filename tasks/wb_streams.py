"""Wildberries streams of one shop: orders, sales, stock, cards (reviews: tasks.wb_reviews).

Each page is written in one transaction together with the cursor that covers it (and the
notifications it causes), so an interrupted stream resumes where it stopped and a re-read
page changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from storage import stock as stock_store
from storage import upserts
from storage.merge import MergeResult
from storage.sync_state import RunCounts, set_cursor
from tasks import normalize
from tasks.context import StreamReport, SyncContext, count_page, iso, run_stream
from tasks.notifying import notify_changes, notify_stock
from tasks.pipeline import overlapped
from tasks.retry import stream_task
from tasks.wb_reviews import wb_reviews

WB_HISTORY_DAYS = 90  # WB statistics keep 90 days
WRITE_CHUNK = 20_000


def _token(ctx: SyncContext) -> str:
    return ctx.credentials["token"]


def _since(ctx: SyncContext, cursor: dict[str, Any] | None, key: str) -> datetime:
    if cursor and cursor.get(key):
        return datetime.fromisoformat(cursor[key]) - timedelta(minutes=ctx.settings.wb_lookback_minutes)
    days = min(ctx.settings.initial_history_days, WB_HISTORY_DAYS)
    return ctx.now() - timedelta(days=days)


def _advance(cursor: dict[str, Any] | None, key: str, value: datetime | None) -> dict[str, Any] | None:
    """The cursor never moves backwards (a lookback re-read ends before the stored point)."""
    if value is None:
        return None
    stored = datetime.fromisoformat(cursor[key]) if cursor and cursor.get(key) else None
    return {key: iso(value if stored is None or value > stored else stored)}


async def _statistics_stream(ctx: SyncContext, counts: RunCounts, *, stream: str, kind: str) -> None:
    cursor = await ctx.cursor(stream)
    since = _since(ctx, cursor, "last_change")
    wb = ctx.clients.wb
    full = ctx.settings.wb_statistics_page_rows
    read = wb.iter_orders if kind == "orders" else wb.iter_sales
    pages = read(_token(ctx), since, full_page_rows=full)
    mapper = normalize.wb_order if kind == "orders" else normalize.wb_sale
    upsert = upserts.upsert_orders if kind == "orders" else upserts.upsert_sales
    state = {"cursor": cursor, "pages": 0}

    async def write(page: Any) -> None:
        new_cursor = _advance(state["cursor"], "last_change", page.cursor)
        write = partial(
            write_statistics_page,
            ctx=ctx,
            stream=stream,
            items=page.items,
            mapper=mapper,
            upsert=upsert,
            cursor=new_cursor,
        )
        count_page(counts, page, await ctx.in_transaction(write))
        log_row_errors(ctx, stream, page)
        state["cursor"] = new_cursor or state["cursor"]
        state["pages"] += 1

    # The next page is parsed (or the next response fetched) while one is written; at most one
    # page is being written and one read (tasks.pipeline).
    await overlapped(pages, write)
    if not state["pages"]:
        counts.requests += 1


def log_row_errors(ctx: SyncContext, stream: str, page: Any) -> None:
    if page.errors:
        first = page.errors[0]
        ctx.log.warning(
            "%s: %d malformed row(s) skipped, first at %d: %s", stream, len(page.errors), first.index, first.message
        )


def write_statistics_page(
    session: Session,
    *,
    ctx: SyncContext,
    stream: str,
    items: list[Any],
    mapper: Any,
    upsert: Any,
    cursor: dict[str, Any] | None,
    cursor_stream: str | None = None,
) -> MergeResult:
    """One statistics page and its cursor (of `cursor_stream`, default `stream`: the stream whose
    rules notify), in the caller's transaction. The page is merged in chunks: only a chunk's
    normalised rows and staging values are in memory at a time."""
    total = MergeResult()
    for start in range(0, len(items), WRITE_CHUNK):
        rows = [mapper(item) for item in items[start : start + WRITE_CHUNK]]
        written = upsert(session, shop_id=ctx.shop.id, rows=rows)
        notify_changes(session, ctx=ctx, stream=stream, result=written)
        total.inserted += written.inserted
        total.updated += written.updated
        total.unchanged += written.unchanged
        total.stale += written.stale
    if cursor is not None:
        set_cursor(session, shop_id=ctx.shop.id, stream=cursor_stream or stream, value=cursor)
    return total


async def wb_orders(ctx: SyncContext) -> StreamReport:
    return await run_stream(ctx, "wb_orders", lambda c: _statistics_stream(ctx, c, stream="wb_orders", kind="orders"))


async def wb_sales(ctx: SyncContext) -> StreamReport:
    return await run_stream(ctx, "wb_sales", lambda c: _statistics_stream(ctx, c, stream="wb_sales", kind="sales"))


async def _stock_stream(ctx: SyncContext, counts: RunCounts) -> None:
    snapshot_id = f"{ctx.shop.id}-{uuid.uuid4().hex}"
    try:
        async for page in ctx.clients.wb.iter_stock_pages(_token(ctx)):
            rows = [normalize.wb_stock(item) for item in page.items]
            await ctx.in_transaction(
                lambda s, rows=rows: stock_store.add_snapshot_page(
                    s, snapshot_id=snapshot_id, shop_id=ctx.shop.id, rows=rows
                )
            )
            counts.fetched += page.received
            counts.requests += 1
        result = await ctx.in_transaction(lambda s: _merge_stock(s, ctx, snapshot_id))
    except BaseException:
        await ctx.in_transaction(lambda s: stock_store.discard_snapshot(s, snapshot_id=snapshot_id))
        raise
    counts.updated += result.rows_changed


def _merge_stock(session: Session, ctx: SyncContext, snapshot_id: str) -> stock_store.StockMergeResult:
    result = stock_store.merge_snapshot(session, snapshot_id=snapshot_id, shop_id=ctx.shop.id)
    notify_stock(session, ctx=ctx, result=result)
    return result


async def wb_stock(ctx: SyncContext) -> StreamReport:
    return await run_stream(ctx, "wb_stock", lambda c: _stock_stream(ctx, c))


async def _cards_stream(ctx: SyncContext, counts: RunCounts) -> None:
    cursor = await ctx.cursor("wb_cards")
    refreshed = datetime.fromisoformat(cursor["refreshed_at"]) if cursor else None
    now = ctx.now()
    if refreshed and (now - refreshed).total_seconds() < ctx.settings.cards_refresh_seconds:
        return
    async for page in ctx.clients.wb.iter_cards(_token(ctx)):
        rows = [normalize.wb_product(item) for item in page.items]
        result = await ctx.in_transaction(
            lambda s, rows=rows: upserts.upsert_products(s, shop_id=ctx.shop.id, rows=rows)
        )
        count_page(counts, page, result)
    await ctx.in_transaction(
        lambda s: set_cursor(s, shop_id=ctx.shop.id, stream="wb_cards", value={"refreshed_at": iso(now)})
    )


async def wb_cards(ctx: SyncContext) -> StreamReport:
    return await run_stream(ctx, "wb_cards", lambda c: _cards_stream(ctx, c))


# The streams as Prefect tasks, named as they show in the UI.
sync_wb_orders = stream_task("sync-wb-orders")(wb_orders)
sync_wb_sales = stream_task("sync-wb-sales")(wb_sales)
sync_wb_stock = stream_task("snapshot-wb-stock")(wb_stock)
sync_wb_reviews = stream_task("sync-wb-reviews")(wb_reviews)
sync_wb_cards = stream_task("refresh-wb-cards")(wb_cards)
