"""The WB reviews stream: a complete backup of every review, cheap to keep up to date.

WB lists a review in one of three places: unanswered and answered in `/api/v1/feedbacks`,
and the archive (`/api/v1/feedbacks/archive`), where a review goes once it is answered,
after 30 days without an answer, and at once when it has no text and no photos (so a
rating-only review is never in `/api/v1/feedbacks` at all).

- A full read (a shop's first sync, a backfill, or a shop never read this way) takes all three.
- An incremental read takes every unanswered review (new negative reviews live there), and
  the newest of the answered list and of the archive, newest first in small pages, down to
  the horizon: the previous read minus `review_lookback_days` (for reviews WB shows late), or
  further back to the oldest review we hold as unanswered that left the unanswered list since
  (answered, or archived: its new state is read where it went, never guessed). The archive
  scan stops at the first page past the horizon that holds reviews we already have.

Each page is written with its notifications in one transaction; the stream's cursor
(`{"read_at"}`) moves when a read has finished.
"""

from __future__ import annotations

from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from storage import upserts
from storage.merge import MergeResult
from storage.sync_state import RunCounts, set_cursor
from tasks import normalize
from tasks.context import SyncContext, count_page, iso, run_stream
from tasks.notifying import notify_changes

STREAM = "wb_reviews"
# Incremental scans want the newest few: small pages, so a shop with a large archive does not
# download 5,000 reviews a sync to find where the known ones start.
SCAN_TAKE = 200
# After this long without an answer WB archives a review (rule 2); a held-unanswered review
# that left the unanswered list is looked for where it went until this (+ the look-back) passed.
UNANSWERED_ARCHIVE_DAYS = 30


@dataclass
class Moved:
    """Reviews we hold as unanswered that WB no longer lists as unanswered."""

    count: int = 0
    oldest: datetime | None = None


async def wb_reviews(ctx: SyncContext, *, full: bool | None = None) -> Any:
    """The stream with its run record; `full=None`: full when the shop was never read in full."""
    return await run_stream(ctx, STREAM if ctx.kind == "sync" else "backfill_wb_reviews", lambda c: read(ctx, c, full))


async def read(ctx: SyncContext, counts: RunCounts, full: bool | None = None) -> None:
    cursor = await ctx.cursor(STREAM)
    previous = datetime.fromisoformat(cursor["read_at"]) if cursor and cursor.get("read_at") else None
    full = previous is None if full is None else full
    started = ctx.now()
    token = ctx.credentials["token"]
    wb = ctx.clients.wb

    listed: set[str] = set()
    async for page in wb.iter_feedbacks(token, answered=False):
        listed.update(item.id for item in page.items)
        listed.update(error.key for error in page.errors if error.key)
        await _write(ctx, counts, page, archived=False)

    if full:
        async for page in wb.iter_feedbacks(token, answered=True):
            await _write(ctx, counts, page, archived=False)
        async for page in wb.iter_feedback_archive(token):
            await _write(ctx, counts, page, archived=True)
    else:
        moved = await ctx.db(_moved, ctx, listed, started)
        horizon = (previous or started) - timedelta(days=ctx.settings.review_lookback_days)
        if moved.oldest is not None and moved.oldest < horizon:
            horizon = moved.oldest
        ctx.log.debug("%s: %d review(s) left the unanswered list; reading back to %s", STREAM, moved.count, horizon)
        answered = wb.iter_feedbacks(token, answered=True, date_from=horizon, order="dateDesc", take=SCAN_TAKE)
        async for page in answered:
            await _write(ctx, counts, page, archived=False)
        async with aclosing(wb.iter_feedback_archive(token, take=SCAN_TAKE)) as pages:
            async for page in pages:
                result = await _write(ctx, counts, page, archived=True)
                oldest = min((item.created_date for item in page.items), default=None)
                if result.unchanged and oldest is not None and oldest < horizon:
                    break  # past the horizon, among reviews we already hold: the rest is known

    lost = await ctx.db(_moved, ctx, listed, started)
    if lost.count:
        # Neither answered nor archived where WB lists them: left as they are (WB may have
        # removed them), never marked answered on a guess.
        ctx.log.info("%s: %d review(s) held as unanswered are listed nowhere now", STREAM, lost.count)
    if ctx.kind == "sync":
        await ctx.in_transaction(
            lambda s: set_cursor(s, shop_id=ctx.shop.id, stream=STREAM, value={"read_at": iso(started)})
        )


async def _write(ctx: SyncContext, counts: RunCounts, page: Any, *, archived: bool) -> MergeResult:
    rows = [normalize.wb_review(item) for item in page.items]

    def write(session: Session) -> MergeResult:
        result = upserts.upsert_reviews(session, shop_id=ctx.shop.id, rows=rows)
        notify_changes(session, ctx=ctx, stream=STREAM, result=result)
        if archived and rows:
            _mark_archived(session, ctx.shop.id, [r["external_id"] for r in rows])
        return result

    result = await ctx.in_transaction(write)
    count_page(counts, page, result)
    return result


def _mark_archived(session: Session, shop_id: int, ids: list[str]) -> None:
    # Not a payload column: the review is the same whichever list serves it.
    session.execute(
        text("UPDATE reviews SET archived = true WHERE shop_id = :shop AND NOT archived AND external_id = ANY(:ids)"),
        {"shop": shop_id, "ids": ids},
    )


def _moved(ctx: SyncContext, listed: set[str], now: datetime) -> Moved:
    """Held as unanswered, not archived, not listed as unanswered now, and young enough for WB
    to have moved it somewhere we can still find it."""
    window = timedelta(days=UNANSWERED_ARCHIVE_DAYS + ctx.settings.review_lookback_days)
    with Session(ctx.engine) as session:
        count, oldest = session.execute(
            text(
                "SELECT count(*), min(created_at_source) FROM reviews WHERE shop_id = :shop "
                "AND NOT is_answered AND NOT archived AND created_at_source >= :since "
                "AND NOT (external_id = ANY(:listed))"
            ),
            {"shop": ctx.shop.id, "since": now - window, "listed": list(listed)},
        ).one()
    return Moved(count, oldest)
