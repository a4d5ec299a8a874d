"""The WB order feed stream (`wb_feed`): the fast signal beside statistics.

Statistics refresh every 30 minutes; the feed is real time. Each read asks for the units whose
current status began since the previous read's snapshot minus `wb_feed_lookback_minutes` (the
first read: the feed's whole 31 days, silently, as history), and stores each unit's newest
status in `wb_feed_orders` (an older answer never overwrites a newer status). A transition the
feed sees first notifies at once, under the dedupe key statistics use for the same transition
(sellerpulse/notify/feed_rules.py), so statistics catching up later add nothing; statistics
stay the record of money and history, and their tables are never written from here.

Rows the feed sends that we cannot place (no srid, an unknown status, no status time) are
skipped and counted, never fatal: statistics bring those units anyway.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from storage import order_list, upserts
from storage.merge import MergeResult
from storage.sync_state import RunCounts, set_cursor
from tasks import normalize
from tasks.context import StreamReport, SyncContext, count_page, iso, run_stream
from tasks.notifying import notify_changes
from tasks.retry import stream_task
from tasks.wb_streams import log_row_errors

STREAM = "wb_feed"


async def wb_feed(ctx: SyncContext) -> StreamReport:
    return await run_stream(ctx, STREAM, lambda counts: read(ctx, counts))


async def read(ctx: SyncContext, counts: RunCounts) -> None:
    cursor = await ctx.cursor(STREAM)
    previous = datetime.fromisoformat(cursor["snapshot"]) if cursor and cursor.get("snapshot") else None
    now = ctx.now()
    since = (
        now - timedelta(days=31)
        if previous is None
        else previous - timedelta(minutes=ctx.settings.wb_feed_lookback_minutes)
    )
    snapshot: datetime | None = None
    skipped = 0
    async for page in ctx.clients.wb.iter_order_feed(ctx.credentials["token"], since, now=now):
        rows = [row for row in map(normalize.wb_feed_order, page.items) if row is not None]
        skipped += len(page.items) - len(rows)
        # The feed's first read is history (a shop synced for months before the feed existed
        # would otherwise hear of a month of buyouts again).
        result = await ctx.in_transaction(
            lambda s, rows=rows: write(s, ctx=ctx, rows=rows, notify=previous is not None)
        )
        count_page(counts, page, result)
        log_row_errors(ctx, STREAM, page)
        snapshot = page.cursor or snapshot
    if skipped:
        ctx.log.info("%s: %d row(s) without a known status or its time skipped", STREAM, skipped)
    reached = snapshot or now  # no snapshotTime from WB: our clock at the start of the read
    await ctx.in_transaction(
        lambda s: set_cursor(s, shop_id=ctx.shop.id, stream=STREAM, value={"snapshot": iso(reached)})
    )


def write(session: Session, *, ctx: SyncContext, rows: list[dict[str, Any]], notify: bool) -> MergeResult:
    """One feed page and its notifications, in the caller's transaction."""
    if notify and rows:
        _attach_statistics(session, ctx.shop.id, rows)
    result = upserts.upsert_wb_feed(session, shop_id=ctx.shop.id, rows=rows)
    # The units statistics listed since: out of the order list's feed-only part (storage.order_list).
    order_list.mark_listed(session, shop_id=ctx.shop.id)
    if notify:
        notify_changes(session, ctx=ctx, stream=STREAM, result=result)
    return result


def _attach_statistics(session: Session, shop_id: int, rows: list[dict[str, Any]]) -> None:
    """What statistics already hold of these units (money, basket, place), for the messages:
    statistics are the record; the feed only fills in until they catch up."""
    found = session.execute(
        text(
            "SELECT external_id, basket_id, total_amount, bought_at, raw->>'warehouseName', "
            "coalesce(raw->>'regionName', raw->>'oblastOkrugName'), raw->>'subject', raw->>'techSize' "
            "FROM orders WHERE shop_id = :shop AND external_id = ANY(:ids)"
        ),
        {"shop": shop_id, "ids": [row["srid"] for row in rows]},
    ).all()
    names = ("basket_id", "total_amount", "bought_at", "warehouse", "region", "name", "size")
    known = {r[0]: dict(zip(names, r[1:], strict=True)) for r in found}
    for row in rows:
        if row["srid"] in known:
            row["statistics"] = known[row["srid"]]


# As it shows in the Prefect UI.
sync_wb_feed = stream_task("sync-wb-feed")(wb_feed)
