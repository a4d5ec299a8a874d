"""backfill: read a shop's history for a date range, silently, resumably.

- Allegro: the checkout-form listing by `lineItems.boughtAt`, split under the 10,000 offset cap,
  as a history read (storage.history): the shop shows "history incomplete" until it is done.
- WB: orders and sales by `flag=0` from the oldest day (`flag=1` day by day only where it is
  cheaper or needed, see tasks.wb_history), clamped to WB's 90-day retention (and said so);
  reviews: every review WB has, both lists and the archive.

Progress is stored per (shop, range) in the same transaction as the rows it covers, so a
re-run with the same parameters continues where the last one stopped. A backfill is silent
about history; a change that happened after the shop's notify-from point notifies, whichever
of the backfill and the sync writes it first (the dedupe keys make the second a no-op). A
progress artifact shows how far it is while it runs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from uuid import UUID

from prefect import flow, runtime
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.context import FlowRunContext

from connectors.timeutil import MSK
from connectors.wildberries.retention import history_window
from flows.common import flow_run_id, reap_shop, shop_label, slug, summary_markdown
from flows.logs import run_logger
from flows.summary import summary_key
from storage.db import get_engine
from storage.leases import LeaseBusy, hold
from storage.migrate import require_head
from storage.sync_state import RunCounts
from tasks import allegro_streams, wb_history, wb_reviews
from tasks.clients import Clients, borrowed_or_new
from tasks.context import StreamReport, SyncContext, load_context, run_stream

# WB "orders": the statistics reports, orders and sales.
BACKFILL_STREAMS = {"wb": ("orders", "reviews"), "allegro": ("orders",)}


def backfill_run_name() -> str:
    params = runtime.flow_run.parameters
    marketplace, name = shop_label(int(params["shop_id"]))
    return f"backfill-{marketplace}-{slug(name)}-{params.get('since')}-{params.get('until') or 'now'}"


class Progress:
    """A Prefect progress artifact inside a flow run; a log line outside."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.artifact_id: UUID | None = None
        self.last = -1.0

    async def start(self) -> None:
        if FlowRunContext.get() is not None:
            self.artifact_id = await create_progress_artifact(progress=0.0, description=self.title)

    async def update(self, fraction: float) -> None:
        percent = round(max(0.0, min(1.0, fraction)) * 100, 1)
        if percent == self.last:
            return
        self.last = percent
        if self.artifact_id is not None:
            await update_progress_artifact(self.artifact_id, progress=percent)
        run_logger().info("%s: %.1f%%", self.title, percent)


def _progress_stream(marketplace: str, since: date, until: date) -> str:
    return f"backfill:{marketplace}:{since.isoformat()}:{until.isoformat()}"


async def _wb_history(
    ctx: SyncContext, since: date, until: date, chosen: list[str], progress: Progress
) -> list[StreamReport]:
    window = history_window(since, until, ctx.now())
    if window.note:
        ctx.log.warning("%s", window.note)
    parts = [*(("orders", "sales") if "orders" in chosen else ()), *(("reviews",) if "reviews" in chosen else ())]
    reports: list[StreamReport] = []
    for i, part in enumerate(parts):

        async def on_progress(fraction: float, i: int = i) -> None:
            await progress.update((i + min(1.0, fraction)) / len(parts))

        if part == "reviews":
            reports.append(await wb_reviews.wb_reviews(ctx, full=True))
            continue

        async def body(counts: RunCounts, part: str = part, on_progress: Any = on_progress) -> None:
            key = _progress_stream("wb", since, until)
            await wb_history.backfill_statistics(ctx, part, window, counts, progress_key=key, on_progress=on_progress)

        report = await run_stream(ctx, f"backfill_wb_{part}", body)
        report.note = window.note
        reports.append(report)
    await progress.update(1.0)
    return reports


async def _allegro_window(ctx: SyncContext, since: date, until: date, progress: Progress) -> StreamReport:
    start = datetime.combine(since, time.min, UTC)
    end = datetime.combine(until, time.max, UTC)
    span = (end - start).total_seconds() or 1.0

    async def on_page(point: datetime) -> None:
        await progress.update((point - start).total_seconds() / span)

    async def body(counts: RunCounts) -> None:
        await allegro_streams.backfill_window(ctx, start, end, counts, on_page=on_page)
        await progress.update(1.0)

    return await run_stream(ctx, "backfill_allegro_orders", body)


async def backfill_one(
    shop_id: int,
    since: date,
    until: date | None = None,
    streams: list[str] | None = None,
    *,
    clients: Clients | None = None,
) -> list[StreamReport]:
    """The body of the backfill flow, callable without Prefect (tests, benchmarks)."""
    logger = run_logger()
    engine = get_engine()
    async with borrowed_or_new(clients) as clients:
        try:
            ctx = load_context(engine, shop_id=shop_id, clients=clients, kind="backfill", flow_run_id=flow_run_id())
            ctx.log = logger
            until = until or ctx.now().astimezone(MSK).date()
            if since > until:
                raise ValueError(f"since ({since}) is after until ({until})")
            chosen = streams or list(BACKFILL_STREAMS[ctx.shop.marketplace])
            unknown = set(chosen) - set(BACKFILL_STREAMS[ctx.shop.marketplace])
            if unknown:
                raise ValueError(f"backfill of {ctx.shop.marketplace} cannot read: {', '.join(sorted(unknown))}")
            progress = Progress(f"backfill of {ctx.shop.name} {since}..{until}")
            await progress.start()
            seconds = clients.settings.sync_lease_seconds
            async with hold(engine, shop_id=shop_id, kind="backfill", seconds=seconds) as lease:
                ctx.hold(lease)
                await ctx.db(reap_shop, ctx)
                if ctx.shop.marketplace == "wb":
                    return await _wb_history(ctx, since, until, chosen, progress)
                return [await _allegro_window(ctx, since, until, progress)]
        except LeaseBusy:
            logger.info("another backfill of shop %s is running: this one skips", shop_id)
            return []


@flow(name="backfill", flow_run_name=backfill_run_name, retries=0)
async def backfill(
    shop_id: int, since: date, until: date | None = None, streams: list[str] | None = None
) -> dict[str, Any]:
    """Read a shop's orders (and WB sales) between two dates (history silently); re-run to resume."""
    require_head(get_engine())
    reports = await backfill_one(shop_id, since, until, streams)
    marketplace, name = shop_label(shop_id)
    await create_markdown_artifact(
        key=summary_key("backfill", shop_id, name),
        markdown=summary_markdown(f"Backfill of {marketplace} shop {name}, {since} to {until or 'today'}", reports),
    )
    result: dict[str, Any] = {r.stream: r.counts.as_dict() for r in reports}
    notes = sorted({r.note for r in reports if r.note})
    if notes:
        result["notes"] = notes
    return result
