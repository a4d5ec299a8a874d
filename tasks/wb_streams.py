"""Wildberries streams of one shop: orders, sales, stock, reviews, cards.

Each page is written in one transaction together with the cursor that covers it (and the
notifications it causes), so an interrupted stream resumes where it stopped and a re-read
page changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from storage import stock as stock_store
from storage import upserts
from storage.merge import MergeResult
from storage.sync_state import RunCounts, set_cursor
from tasks import normalize
from tasks.context import StreamReport, SyncContext, count_page, iso, read_cursor, run_stream
from tasks.notifying import notify_changes, notify_stock
from tasks.retry import stream_task

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
    cursor = await ctx.db(read_cursor, ctx, stream)
    since = _since(ctx, cursor, "last_change")
    wb = ctx.clients.wb
    full = ctx.settings.wb_statistics_page_rows
    read = wb.iter_orders if kind == "orders" else wb.iter_sales
    pages = read(_token(ctx), since, full_page_rows=full)
    mapper = normalize.wb_order if kind == "orders" else normalize.wb_sale
    upsert = upserts.upsert_orders if kind == "orders" else upserts.upsert_sales
    got_page = False
    async for page in pages:
        got_page = True
        new_cursor = _advance(cursor, "last_change", page.cursor)
        write = partial(
            _write_page, ctx=ctx, stream=stream, items=page.items, mapper=mapper, upsert=upsert, cursor=new_cursor
        )
        result = await ctx.in_transaction(write)
        count_page(counts, page, result)
        if page.errors:
            first = page.errors[0]
            ctx.log.warning(
                "%s: %d malformed row(s) skipped, first at %d: %s", stream, len(page.errors), first.index, first.message
            )
        cursor = new_cursor or cursor
        # Hold no reference while the connector fetches the next page: one page in memory, not two.
        del page, write
    if not got_page:
        counts.requests += 1


def _write_page(
    session: Session,
    *,
    ctx: SyncContext,
    stream: str,
    items: list[Any],
    mapper: Any,
    upsert: Any,
    cursor: dict[str, Any] | None,
) -> MergeResult:
    """One statistics page and its cursor, in the caller's transaction. The page is merged in
    chunks: only a chunk's normalised rows and staging values are in memory at a time."""
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
        set_cursor(session, shop_id=ctx.shop.id, stream=stream, value=cursor)
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


async def _reviews_stream(ctx: SyncContext, counts: RunCounts) -> None:
    """Every unanswered review (new negative reviews live there), then answered ones of recent weeks."""
    token = _token(ctx)
    unanswered: set[str] = set()
    async for page in ctx.clients.wb.iter_feedbacks(token, answered=False):
        unanswered.update(item.id for item in page.items)
        unanswered.update(error.key for error in page.errors if error.key)
        await _write_reviews(ctx, counts, page)
    since = ctx.now() - timedelta(days=ctx.settings.review_lookback_days)
    async for page in ctx.clients.wb.iter_feedbacks(token, answered=True, date_from=since):
        await _write_reviews(ctx, counts, page)
    # A review we hold as unanswered that WB no longer lists as unanswered was answered (maybe
    # long after it was written, beyond the answered look-back).
    await ctx.in_transaction(lambda s: _mark_answered_elsewhere(s, ctx.shop.id, unanswered))


async def _write_reviews(ctx: SyncContext, counts: RunCounts, page: Any) -> None:
    rows = [normalize.wb_review(item) for item in page.items]

    def write(session: Session) -> Any:
        result = upserts.upsert_reviews(session, shop_id=ctx.shop.id, rows=rows)
        notify_changes(session, ctx=ctx, stream="wb_reviews", result=result)
        return result

    count_page(counts, page, await ctx.in_transaction(write))


def _mark_answered_elsewhere(session: Session, shop_id: int, unanswered: set[str]) -> None:
    session.execute(
        text(
            "UPDATE reviews SET is_answered = true, updated_at = now() "
            "WHERE shop_id = :shop AND NOT is_answered AND NOT (external_id = ANY(:ids))"
        ),
        {"shop": shop_id, "ids": list(unanswered)},
    )


async def wb_reviews(ctx: SyncContext) -> StreamReport:
    return await run_stream(ctx, "wb_reviews", lambda c: _reviews_stream(ctx, c))


async def _cards_stream(ctx: SyncContext, counts: RunCounts) -> None:
    cursor = await ctx.db(read_cursor, ctx, "wb_cards")
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


# -- backfill: flag=1, one Moscow calendar day at a time ---------------------------------------


async def backfill_day(ctx: SyncContext, day: date, counts: RunCounts, *, progress_stream: str) -> None:
    """Orders and sales whose `date` is on `day` (flag=1): written with the day marked done, in one
    transaction, so a re-run of the backfill resumes at the first day not written."""
    token = _token(ctx)
    orders = await ctx.clients.wb.orders_for_day(token, day)
    sales = await ctx.clients.wb.sales_for_day(token, day)
    order_rows = [normalize.wb_order(item) for item in orders.items]
    sale_rows = [normalize.wb_sale(item) for item in sales.items]

    def write(session: Session) -> tuple[Any, Any]:
        written_orders = upserts.upsert_orders(session, shop_id=ctx.shop.id, rows=order_rows)
        written_sales = upserts.upsert_sales(session, shop_id=ctx.shop.id, rows=sale_rows)
        # History stays silent, a live change the sync has not written yet notifies (once).
        notify_changes(session, ctx=ctx, stream="wb_orders", result=written_orders)
        notify_changes(session, ctx=ctx, stream="wb_sales", result=written_sales)
        next_day = (day + timedelta(days=1)).isoformat()
        set_cursor(session, shop_id=ctx.shop.id, stream=progress_stream, value={"next_day": next_day})
        return written_orders, written_sales

    written_orders, written_sales = await ctx.in_transaction(write)
    count_page(counts, orders, written_orders)
    count_page(counts, sales, written_sales)


# The streams as Prefect tasks, named as they show in the UI.
sync_wb_orders = stream_task("sync-wb-orders")(wb_orders)
sync_wb_sales = stream_task("sync-wb-sales")(wb_sales)
sync_wb_stock = stream_task("snapshot-wb-stock")(wb_stock)
sync_wb_reviews = stream_task("sync-wb-reviews")(wb_reviews)
sync_wb_cards = stream_task("refresh-wb-cards")(wb_cards)
