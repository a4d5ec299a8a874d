"""WB orders and sales history for a backfill, at the speed WB allows.

WB statistics allow one request a minute per method. `flag=0` answers up to ~80,000 rows changed
since `dateFrom` per request (a small shop's whole 90 days in one call); `flag=1` answers one
calendar day per request (90 days of orders and sales: 180 requests, 3 hours). So history is
read with `flag=0` from the oldest day wanted, paging by `lastChangeDate` (boundary rows
deduplicated, a page that does not advance never asked again), and with `flag=1` only where
that is cheaper or the only way:

- a short range far back: fewer days than the `flag=0` requests it takes to read from its first
  day to now (estimated from the rows the shop already holds that changed since then);
- a `flag=0` read stuck on a full page at one `lastChangeDate`: the range is read day by day.

Callers clamp the range to WB's 90-day retention first (connectors.wildberries.retention).
Each stream's progress is stored in the same transaction as its rows, under
`{progress_key}:{orders|sales}`: `{"mode": "flag0", "from": <lastChangeDate>}`,
`{"mode": "days", "next_day": <day>}`, then `{"mode": ..., "done": true}`; a re-run resumes there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from connectors.errors import PagingStalled
from connectors.timeutil import MSK
from connectors.wildberries.retention import HistoryWindow
from storage import upserts
from storage.sync_state import RunCounts, set_cursor
from tasks import normalize
from tasks.context import SyncContext, count_page, iso
from tasks.pipeline import overlapped
from tasks.wb_streams import log_row_errors, write_statistics_page

FLAG0, DAYS = "flag0", "days"
OnProgress = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Statistics:
    """What differs between the orders and the sales report."""

    kind: str  # orders | sales
    rules_stream: str  # whose notification rules its rows go through
    table: str
    mapper: Any

    @property
    def upsert(self) -> Any:
        return getattr(upserts, f"upsert_{self.kind}")  # looked up per call, like the sync's streams

    def pages(self, ctx: SyncContext, since: datetime) -> Any:
        wb = ctx.clients.wb
        read = wb.iter_orders if self.kind == "orders" else wb.iter_sales
        return read(
            ctx.credentials["token"], since, full_page_rows=ctx.settings.wb_statistics_page_rows, raise_on_stall=True
        )

    async def day(self, ctx: SyncContext, day: date) -> Any:
        wb = ctx.clients.wb
        read = wb.orders_for_day if self.kind == "orders" else wb.sales_for_day
        return await read(ctx.credentials["token"], day)


REPORTS = {
    "orders": Statistics("orders", "wb_orders", "orders", normalize.wb_order),
    "sales": Statistics("sales", "wb_sales", "wb_sales", normalize.wb_sale),
}


def choose_mode(*, days: int, rows_changed_since: int, page_rows: int) -> str:
    """`flag=1` day by day only when it takes fewer requests than `flag=0` from the first day."""
    return DAYS if days < rows_changed_since // page_rows + 1 else FLAG0


async def backfill_statistics(
    ctx: SyncContext,
    kind: str,
    window: HistoryWindow,
    counts: RunCounts,
    *,
    progress_key: str,
    on_progress: OnProgress,
) -> None:
    """Every `kind` row dated in the window, resuming where a previous run of this key stopped."""
    report, key = REPORTS[kind], f"{progress_key}:{kind}"
    state = await ctx.cursor(key) or {}
    if state.get("done") or window.empty:
        return
    start = datetime.combine(window.since, time.min, MSK)
    if not state:
        days = (window.until - window.since).days + 1
        changed = await ctx.db(_rows_changed_since, ctx, report.table, start)
        chosen = choose_mode(days=days, rows_changed_since=changed, page_rows=ctx.settings.wb_statistics_page_rows)
        ctx.log.info(
            "backfill of wb %s %s..%s: %s",
            kind,
            window.since,
            window.until,
            "flag=0" if chosen == FLAG0 else "flag=1 by day",
        )
        state = {"mode": chosen}
    if state["mode"] == FLAG0:
        resume = datetime.fromisoformat(state["from"]) if state.get("from") else start
        stuck = await _by_last_change(ctx, report, key, start, resume, counts, on_progress)
        if stuck is None:
            await _done(ctx, key, FLAG0)
            return
        ctx.log.warning(
            "wb %s: flag=0 is stuck on a full page at %s; reading %s..%s day by day",
            kind,
            stuck,
            window.since,
            window.until,
        )
        state = {"mode": DAYS}
    first = date.fromisoformat(state["next_day"]) if state.get("next_day") else window.since
    await _by_day(ctx, report, key, window, first, counts, on_progress)
    await _done(ctx, key, DAYS)


async def _by_last_change(
    ctx: SyncContext,
    report: Statistics,
    key: str,
    start: datetime,
    resume: datetime,
    counts: RunCounts,
    on_progress: OnProgress,
) -> datetime | None:
    """flag=0 from `resume` to now; returns where paging got stuck, or None when it finished."""
    span = max(1.0, (ctx.now() - start).total_seconds())
    written = 0

    async def write(page: Any) -> None:
        nonlocal written
        value = None if page.cursor is None else {"mode": FLAG0, "from": iso(page.cursor)}
        await _write(ctx, report, key, page, value, counts)
        written += 1
        if page.cursor is not None:
            await on_progress((page.cursor - start).total_seconds() / span)

    try:
        # The next page is read while one is written (tasks.pipeline): at most two in memory.
        await overlapped(report.pages(ctx, resume), write)
    except PagingStalled as exc:
        return exc.at  # type: ignore[return-value]
    if not written:
        counts.requests += 1
    return None


async def _by_day(
    ctx: SyncContext,
    report: Statistics,
    key: str,
    window: HistoryWindow,
    first: date,
    counts: RunCounts,
    on_progress: OnProgress,
) -> None:
    total = (window.until - window.since).days + 1

    async def days() -> AsyncIterator[tuple[date, Any]]:
        day = first
        while day <= window.until:
            yield day, await report.day(ctx, day)
            day += timedelta(days=1)

    async def write(read: tuple[date, Any]) -> None:
        day, page = read
        following = day + timedelta(days=1)
        await _write(ctx, report, key, page, {"mode": DAYS, "next_day": following.isoformat()}, counts)
        await on_progress((following - window.since).days / total)

    # The next day is fetched while one is written (tasks.pipeline).
    await overlapped(days(), write)


async def _write(
    ctx: SyncContext, report: Statistics, key: str, page: Any, progress: dict[str, Any] | None, counts: RunCounts
) -> None:
    """A page's rows with the progress that covers them (None: a part of a response), one transaction."""
    write = partial(
        write_statistics_page,
        ctx=ctx,
        stream=report.rules_stream,
        items=page.items,
        mapper=report.mapper,
        upsert=report.upsert,
        cursor=progress,
        cursor_stream=key,
    )
    count_page(counts, page, await ctx.in_transaction(write))
    log_row_errors(ctx, key, page)


async def _done(ctx: SyncContext, key: str, mode: str) -> None:
    await ctx.in_transaction(
        lambda s: set_cursor(s, shop_id=ctx.shop.id, stream=key, value={"mode": mode, "done": True})
    )


def _rows_changed_since(ctx: SyncContext, table: str, since: datetime) -> int:
    with Session(ctx.engine) as session:
        return (
            session.scalar(
                text(f"SELECT count(*) FROM {table} WHERE shop_id = :shop AND source_updated_at >= :since"),  # noqa: S608 - our own table names
                {"shop": ctx.shop.id, "since": since},
            )
            or 0
        )
