"""Allegro streams of one shop: orders (event journal -> checkout forms), offers stock, returns.

Orders follow the event journal from the id of the last event processed, which is stored in
the same transaction as the orders it led to. The first sync backs up the order history
through the checkout-form listing (silently) and then starts the journal at the event that
was newest *before* the listing began, so nothing falls between the two. When the journal
has moved past the 60-day retention since our cursor, the gap is healed from the listing by
`updatedAt`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from connectors.errors import CredentialsRejected
from storage import stock as stock_store
from storage import upserts
from storage.sync_state import RunCounts, set_cursor
from tasks import normalize
from tasks.context import StreamReport, SyncContext, batched, count_page, iso, read_cursor, run_stream
from tasks.notifying import notify_changes, notify_stock
from tasks.retry import stream_task
from tasks.tokens import refresh_shop_token

EVENTS_STREAM = "allegro_events"
ALLEGRO_HISTORY_DAYS = 365
# Listing pages hold 100 orders: write them 2,000 at a time (one transaction, one merge).
LISTING_BATCH = 2_000


def _retention(ctx: SyncContext) -> tuple[timedelta, timedelta]:
    """The journal's retention, and a margin to heal a little before its edge (occurredAt is
    not strictly ordered with ids, and clocks differ)."""
    retention = timedelta(hours=ctx.settings.allegro_event_retention_hours)
    return retention, retention / 10


def _token(ctx: SyncContext) -> str:
    return ctx.credentials["access_token"]


async def with_fresh_token(ctx: SyncContext, body: Callable[[], Awaitable[None]]) -> None:
    """A 401 mid-stream means the access token died early (revoked, expired): refresh once, go on."""
    try:
        await body()
    except CredentialsRejected:
        ctx.log.info("access token of shop %s rejected: refreshing it", ctx.shop.name)
        ctx.credentials = await refresh_shop_token(ctx.engine, ctx.clients, shop_id=ctx.shop.id, force=True)
        await body()


def _write_orders(
    session: Session,
    ctx: SyncContext,
    forms: list[Any],
    *,
    events: list[Any] = (),
    cursor: dict[str, Any] | None,
    cursor_stream: str = EVENTS_STREAM,
) -> Any:
    if events:
        upserts.insert_allegro_events(session, shop_id=ctx.shop.id, rows=[normalize.allegro_event(e) for e in events])
    result = upserts.upsert_orders(session, shop_id=ctx.shop.id, rows=[normalize.allegro_order(f) for f in forms])
    notify_changes(session, ctx=ctx, stream="allegro_orders", result=result)
    if cursor is not None:
        set_cursor(session, shop_id=ctx.shop.id, stream=cursor_stream, value=cursor)
    return result


async def _listing(ctx: SyncContext, counts: RunCounts, since: datetime, until: datetime, by: str) -> None:
    pages = ctx.clients.allegro.iter_checkout_form_pages(_token(ctx), since, until, by=by)
    async for batch in batched(pages, LISTING_BATCH):
        result = await ctx.in_transaction(lambda s, items=batch.items: _write_orders(s, ctx, items, cursor=None))
        count_page(counts, batch, result)


async def _first_sync(ctx: SyncContext, counts: RunCounts) -> dict[str, Any]:
    stats = await ctx.clients.allegro.event_stats(_token(ctx))
    counts.requests += 1
    now = ctx.now()
    days = min(ctx.settings.initial_history_days, ALLEGRO_HISTORY_DAYS)
    until = max(now, stats.occurred_at or now) + timedelta(days=1)
    await _listing(ctx, counts, now - timedelta(days=days), until, "lineItems.boughtAt")
    cursor = {"last_event_id": stats.latest_event_id, "last_event_at": iso(stats.occurred_at or now)}
    await ctx.in_transaction(lambda s: set_cursor(s, shop_id=ctx.shop.id, stream=EVENTS_STREAM, value=cursor))
    return cursor


async def _journal(ctx: SyncContext, counts: RunCounts, cursor: dict[str, Any]) -> None:
    last_at = datetime.fromisoformat(cursor["last_event_at"])
    retention, margin = _retention(ctx)
    healed = False
    got_page = False
    async for page in ctx.clients.allegro.iter_order_event_pages(_token(ctx), cursor.get("last_event_id")):
        got_page = True
        newest = max((e.occurred_at for e in page.items), default=last_at)
        if not healed and newest - last_at > retention - margin:
            # Events between our cursor and the oldest retained one may be gone: read the orders
            # that changed since then from the listing before going on with the journal.
            ctx.log.warning("shop %s: event journal cursor is older than the retention; healing", ctx.shop.name)
            await _listing(ctx, counts, last_at - margin, newest + margin, "updatedAt")
            healed = True
        ids = list(dict.fromkeys(e.checkout_form_id for e in page.items))
        batch = await ctx.clients.allegro.checkout_forms(_token(ctx), ids)
        last_at = max(last_at, newest)
        new_cursor = {"last_event_id": page.cursor, "last_event_at": iso(last_at)}
        result = await ctx.in_transaction(
            lambda s, forms=batch.forms, events=page.items, c=new_cursor: _write_orders(
                s, ctx, forms, events=events, cursor=c
            )
        )
        count_page(counts, page, result)
        counts.requests += len(ids)
        if batch.missing:
            ctx.log.info(
                "shop %s: %d order(s) no longer readable (merged or older than 365 days)",
                ctx.shop.name,
                len(batch.missing),
            )
    if not got_page:
        counts.requests += 1


async def _orders_stream(ctx: SyncContext, counts: RunCounts) -> None:
    async def body() -> None:
        cursor = await ctx.db(read_cursor, ctx, EVENTS_STREAM)
        if cursor is None:
            cursor = await _first_sync(ctx, counts)
        await _journal(ctx, counts, cursor)

    await with_fresh_token(ctx, body)


async def allegro_orders(ctx: SyncContext) -> StreamReport:
    return await run_stream(ctx, "allegro_orders", lambda c: _orders_stream(ctx, c))


async def _offers_stream(ctx: SyncContext, counts: RunCounts) -> None:
    snapshot_id = f"{ctx.shop.id}-{uuid.uuid4().hex}"

    async def body() -> None:
        async for page in ctx.clients.allegro.iter_offer_pages(_token(ctx)):
            products = [normalize.allegro_offer(o) for o in page.items]
            stock = [normalize.allegro_offer_stock(o) for o in page.items]

            def write(s: Session, products: list[Any] = products, stock: list[Any] = stock) -> Any:
                stock_store.add_snapshot_page(s, snapshot_id=snapshot_id, shop_id=ctx.shop.id, rows=stock)
                return upserts.upsert_products(s, shop_id=ctx.shop.id, rows=products)

            count_page(counts, page, await ctx.in_transaction(write))

    try:
        await with_fresh_token(ctx, body)
        await ctx.in_transaction(lambda s: _merge_stock(s, ctx, snapshot_id))
    except BaseException:
        await ctx.in_transaction(lambda s: stock_store.discard_snapshot(s, snapshot_id=snapshot_id))
        raise


def _merge_stock(session: Session, ctx: SyncContext, snapshot_id: str) -> None:
    result = stock_store.merge_snapshot(session, snapshot_id=snapshot_id, shop_id=ctx.shop.id)
    notify_stock(session, ctx=ctx, result=result)


async def allegro_offers(ctx: SyncContext) -> StreamReport:
    return await run_stream(ctx, "allegro_offers", lambda c: _offers_stream(ctx, c))


async def _returns_stream(ctx: SyncContext, counts: RunCounts) -> None:
    async def body() -> None:
        cursor = await ctx.db(read_cursor, ctx, "allegro_returns")
        since = datetime.fromisoformat(cursor["newest"]) - timedelta(days=1) if cursor else None
        newest = datetime.fromisoformat(cursor["newest"]) if cursor else None
        async for page in ctx.clients.allegro.iter_customer_return_pages(_token(ctx), created_from=since):
            rows = [normalize.allegro_customer_return(r) for r in page.items]
            times = [r.created_at for r in page.items if r.created_at is not None]
            newest = max([*times, newest] if newest else times, default=None)
            value = {"newest": iso(newest)} if newest else None

            def write(s: Session, rows: list[Any] = rows, value: Any = value) -> Any:
                result = upserts.upsert_customer_returns(s, shop_id=ctx.shop.id, rows=rows)
                notify_changes(s, ctx=ctx, stream="allegro_returns", result=result)
                if value:
                    set_cursor(s, shop_id=ctx.shop.id, stream="allegro_returns", value=value)
                return result

            count_page(counts, page, await ctx.in_transaction(write))

    await with_fresh_token(ctx, body)


async def allegro_returns(ctx: SyncContext) -> StreamReport:
    return await run_stream(ctx, "allegro_returns", lambda c: _returns_stream(ctx, c))


async def backfill_window(
    ctx: SyncContext,
    since: datetime,
    until: datetime,
    counts: RunCounts,
    *,
    progress_stream: str,
    on_page: Callable[[datetime], Awaitable[None]],
) -> None:
    """Every order bought in [since, until], split under the 10k cap. Each page is written with
    its resume point (every order bought before it is stored) in one transaction."""

    async def body() -> None:
        pages = ctx.clients.allegro.iter_checkout_form_pages(_token(ctx), since, until)
        async for batch in batched(pages, LISTING_BATCH):
            resume = {"resume": iso(batch.cursor)}
            result = await ctx.in_transaction(
                lambda s, items=batch.items, c=resume: _write_orders(
                    s, ctx, items, cursor=c, cursor_stream=progress_stream
                )
            )
            count_page(counts, batch, result)
            await on_page(batch.cursor)

    await with_fresh_token(ctx, body)


# The streams as Prefect tasks, named as they show in the UI.
sync_allegro_orders = stream_task("sync-allegro-orders")(allegro_orders)
sync_allegro_offers = stream_task("sync-allegro-offers")(allegro_offers)
sync_allegro_returns = stream_task("sync-allegro-returns")(allegro_returns)
