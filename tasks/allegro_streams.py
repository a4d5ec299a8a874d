"""Allegro streams of one shop: orders (event journal -> checkout forms), history, offers, returns.

Orders follow the event journal from the id of the last event processed, which is stored in
the same transaction as the orders it led to. A shop's first sync takes the journal's newest
event as its starting point and plans the backup of the order history in one transaction; the
history stream then reads it through the checkout-form listing, window by window, each batch
written with how far it got (storage.history), so a retry or the next sync continues where it
stopped and nothing falls between the listing and the journal. When the journal has moved past
the 60-day retention since our cursor, the gap is healed from the listing by `updatedAt`.

Every call takes the shop's token from `tokens(ctx)`: a 401 renews it (from the database if
another process rotated it, else by a refresh under the shop's lock) and the same request is
sent again, however often the token dies in one run.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from storage import allegro_merges, history, upserts
from storage import stock as stock_store
from storage.history import FIRST_SYNC, HistoryProgress
from storage.sync_state import RunCounts, set_cursor
from tasks import normalize
from tasks.context import CURSOR_OF, Batch, StreamReport, SyncContext, batched, count_page, iso, run_stream
from tasks.notifying import notify_changes, notify_stock
from tasks.pipeline import overlapped
from tasks.retry import stream_task
from tasks.tokens import ShopTokens

# "allegro_events": the journal's cursor, read by the orders stream's run as it begins (tasks.context).
EVENTS_STREAM = CURSOR_OF["allegro_orders"]
ALLEGRO_HISTORY_DAYS = 365
# Listing pages hold 100 orders: write them 1,000 at a time (one transaction, one merge). With
# fetching overlapped, two batches are in memory: 2,000 forms a batch cost ~30 MB more at peak
# than 1,000 and were no faster against the latency-realistic sandbox (benchmarks/backfill).
LISTING_BATCH = 1_000
# History is read in windows of at most a week of orders: the unit a resumed read skips.
HISTORY_WINDOW = timedelta(days=7)


def _retention(ctx: SyncContext) -> tuple[timedelta, timedelta]:
    """The journal's retention, and a margin to heal a little before its edge (occurredAt is
    not strictly ordered with ids, and clocks differ)."""
    retention = timedelta(hours=ctx.settings.allegro_event_retention_hours)
    return retention, retention / 10


def tokens(ctx: SyncContext) -> ShopTokens:
    """The shop's access token for the client (one per run: requests share its renewals)."""
    if ctx.allegro_tokens is None:
        ctx.allegro_tokens = ShopTokens(
            ctx.unfenced_engine or ctx.engine, ctx.clients, shop_id=ctx.shop.id, credentials=ctx.credentials
        )
    return ctx.allegro_tokens


def _write_orders(
    session: Session,
    ctx: SyncContext,
    forms: list[Any],
    *,
    events: list[Any] = (),
    cursor: dict[str, Any] | None = None,
    read: tuple[str, datetime] | None = None,
) -> Any:
    """Orders (and the events that led to them), their notifications, and what they cover: the
    journal cursor, or how far a history read got (`read`: its name and resume point)."""
    if events:
        upserts.insert_allegro_events(session, shop_id=ctx.shop.id, rows=[normalize.allegro_event(e) for e in events])
    result = upserts.upsert_orders(session, shop_id=ctx.shop.id, rows=[normalize.allegro_order(f) for f in forms])
    _link_merges(session, ctx, result)
    notify_changes(session, ctx=ctx, stream="allegro_orders", result=result)
    if cursor is not None:
        set_cursor(session, shop_id=ctx.shop.id, stream=EVENTS_STREAM, value=cursor)
    if read is not None:
        history.advance_read(session, shop_id=ctx.shop.id, name=read[0], done_until=read[1])
    return result


def _link_merges(session: Session, ctx: SyncContext, result: Any) -> None:
    """Forms merged into a newer one (their line items live on under it) are linked to it, and
    the rules see the links: a merged form's purchases were announced under their own forms."""
    if not result.ids:
        return
    made = allegro_merges.link(session, shop_id=ctx.shop.id, external_ids=list(result.ids))
    if made:
        ctx.log.info("shop %s: %d checkout form(s) merged into a newer one, kept and linked", ctx.shop.name, len(made))
    if result.changes and not ctx.silent:
        links = allegro_merges.links_of(session, shop_id=ctx.shop.id, external_ids=[c.key for c in result.changes])
        result.changes = allegro_merges.annotate(result.changes, links)


async def _listing(ctx: SyncContext, counts: RunCounts, since: datetime, until: datetime, by: str) -> None:
    pages = ctx.clients.allegro.iter_checkout_form_pages(tokens(ctx), since, until, by=by)
    async for batch in batched(pages, LISTING_BATCH):
        result = await ctx.in_transaction(lambda s, items=batch.items: _write_orders(s, ctx, items))
        count_page(counts, batch, result)


async def _baseline(ctx: SyncContext, counts: RunCounts) -> dict[str, Any]:
    """The journal cursor. On a shop's first sync: the journal's newest event, stored with the
    plan of the history read in one transaction (whatever happens later starts from there)."""
    cursor = await ctx.cursor(EVENTS_STREAM)
    if cursor is not None:
        return cursor
    stats = await ctx.clients.allegro.event_stats(tokens(ctx))
    counts.requests += 1
    now = ctx.now()
    days = min(ctx.settings.initial_history_days, ALLEGRO_HISTORY_DAYS)
    until = max(now, stats.occurred_at or now) + timedelta(days=1)
    cursor = {"last_event_id": stats.latest_event_id, "last_event_at": iso(stats.occurred_at or now)}

    def plan(session: Session) -> None:
        history.begin_read(session, shop_id=ctx.shop.id, name=FIRST_SYNC, since=now - timedelta(days=days), until=until)
        set_cursor(session, shop_id=ctx.shop.id, stream=EVENTS_STREAM, value=cursor)

    await ctx.in_transaction(plan)
    return cursor


async def _journal(ctx: SyncContext, counts: RunCounts, cursor: dict[str, Any]) -> None:
    last_at = datetime.fromisoformat(cursor["last_event_at"])
    retention, margin = _retention(ctx)
    healed = False
    got_page = False
    async for page in ctx.clients.allegro.iter_order_event_pages(tokens(ctx), cursor.get("last_event_id")):
        got_page = True
        newest = max((e.occurred_at for e in page.items), default=last_at)
        if not healed and newest - last_at > retention - margin:
            # Events between our cursor and the oldest retained one may be gone: read the orders
            # that changed since then from the listing before going on with the journal.
            ctx.log.warning("shop %s: event journal cursor is older than the retention; healing", ctx.shop.name)
            await _listing(ctx, counts, last_at - margin, newest + margin, "updatedAt")
            healed = True
        ids = list(dict.fromkeys(e.checkout_form_id for e in page.items))
        batch = await ctx.clients.allegro.checkout_forms(tokens(ctx), ids)
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
                "shop %s: %d order(s) no longer readable (merged into a new form, linked when it is read; "
                "or older than 365 days)",
                ctx.shop.name,
                len(batch.missing),
            )
    if not got_page:
        counts.requests += 1


async def _orders_stream(ctx: SyncContext, counts: RunCounts) -> None:
    await _journal(ctx, counts, await _baseline(ctx, counts))


async def allegro_orders(ctx: SyncContext) -> StreamReport:
    return await run_stream(ctx, "allegro_orders", lambda c: _orders_stream(ctx, c))


async def read_history(
    ctx: SyncContext,
    counts: RunCounts,
    read: HistoryProgress,
    *,
    on_page: Callable[[datetime], Awaitable[None]] | None = None,
) -> None:
    """The rest of a history read: every order bought in [resume point, until], window by window,
    each batch written with its resume point while the next is fetched; the read is marked done
    at the end."""
    pages = ctx.clients.allegro.iter_checkout_form_pages(
        tokens(ctx), read.resume_from, read.until, window=HISTORY_WINDOW
    )

    async def write(batch: Batch) -> None:
        point = (read.name, batch.cursor)
        result = await ctx.in_transaction(lambda s: _write_orders(s, ctx, batch.items, read=point))
        count_page(counts, batch, result)
        if on_page is not None:
            await on_page(batch.cursor)

    # The next pages are fetched while a batch is written (tasks.pipeline): against the real
    # API each page is a round trip, and a 2,000-form write takes a while.
    await overlapped(batched(pages, LISTING_BATCH), write)
    await ctx.in_transaction(lambda s: history.finish_read(s, shop_id=ctx.shop.id, name=read.name))


def _first_sync_read(ctx: SyncContext) -> HistoryProgress | None:
    with Session(ctx.engine) as session:
        return history.get_read(session, shop_id=ctx.shop.id, name=FIRST_SYNC)


async def _history_stream(ctx: SyncContext, counts: RunCounts) -> None:
    if ctx.shop.history_complete:
        # As the sync began: first sync done, no read pending (only a first sync's baseline
        # begins the read this stream does): nothing to read, two round trips saved per sync.
        return
    await _baseline(ctx, counts)
    read = await ctx.db(_first_sync_read, ctx)
    if read is not None and not read.complete:
        await read_history(ctx, counts, read)


async def allegro_history(ctx: SyncContext) -> StreamReport:
    """The order history of the first sync, resumed where it stopped (nothing to do once read)."""
    return await run_stream(ctx, "allegro_history", lambda c: _history_stream(ctx, c))


async def _offers_stream(ctx: SyncContext, counts: RunCounts) -> None:
    snapshot_id = f"{ctx.shop.id}-{uuid.uuid4().hex}"
    try:
        # Every publication status: an ENDED offer is still what old orders point at.
        async for page in ctx.clients.allegro.iter_offer_pages(tokens(ctx)):
            products = [normalize.allegro_offer(o) for o in page.items]
            stock = [normalize.allegro_offer_stock(o) for o in page.items]

            def write(s: Session, products: list[Any] = products, stock: list[Any] = stock) -> Any:
                stock_store.add_snapshot_page(s, snapshot_id=snapshot_id, shop_id=ctx.shop.id, rows=stock)
                return upserts.upsert_products(s, shop_id=ctx.shop.id, rows=products)

            count_page(counts, page, await ctx.in_transaction(write))
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
    cursor = await ctx.cursor("allegro_returns")
    since = datetime.fromisoformat(cursor["newest"]) - timedelta(days=1) if cursor else None
    newest = datetime.fromisoformat(cursor["newest"]) if cursor else None
    async for page in ctx.clients.allegro.iter_customer_return_pages(tokens(ctx), created_from=since):
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


async def allegro_returns(ctx: SyncContext) -> StreamReport:
    return await run_stream(ctx, "allegro_returns", lambda c: _returns_stream(ctx, c))


async def backfill_window(
    ctx: SyncContext,
    since: datetime,
    until: datetime,
    counts: RunCounts,
    *,
    on_page: Callable[[datetime], Awaitable[None]] | None = None,
) -> None:
    """Every order bought in [since, until], split under the 10k cap, as a history read of its
    own: a re-run with the same range continues where the last one stopped (one that had
    finished reads the range again), and the shop shows "history incomplete" until it is done."""
    name = history.backfill_name(since, until)

    def begin(session: Session) -> HistoryProgress:
        read = history.begin_read(session, shop_id=ctx.shop.id, name=name, since=since, until=until)
        return history.restart_read(session, shop_id=ctx.shop.id, name=name) if read.complete else read

    await read_history(ctx, counts, await ctx.in_transaction(begin), on_page=on_page)


# The streams as Prefect tasks, named as they show in the UI.
sync_allegro_orders = stream_task("sync-allegro-orders")(allegro_orders)
sync_allegro_history = stream_task("backup-allegro-history")(allegro_history)
sync_allegro_offers = stream_task("sync-allegro-offers")(allegro_offers)
sync_allegro_returns = stream_task("sync-allegro-returns")(allegro_returns)
