"""The streams of a shop sync: which, in what order, and how each is run (a task run each, or
retried inside the shop's one task run); what makes a sync "full" and what the back-off hears.

One failing stream does not stop the others; a refused credential stops the rest (they would
be refused too), and a WB key the marketplace refuses marks the shop `broken`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from prefect import Task, task
from prefect.cache_policies import NONE
from prefect.context import FlowRunContext
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from connectors.errors import AccessTokenRejected, CredentialsRejected, ReauthRequired
from flows import startup
from flows.logs import run_logger
from storage.leases import LeaseLost
from storage.models import Shop, ShopStatus
from storage.shops import set_status
from tasks import allegro_streams as allegro
from tasks import wb_streams as wb
from tasks.context import StreamReport, SyncContext, discard_begun, settled
from tasks.notifying import notify_shop_status
from tasks.retry import call_retried
from tasks.wb_feed import sync_wb_feed

# Stream name -> Prefect task, per marketplace, in the order a sync runs them (cards and offers
# first: names and photos are there before the orders that mention them are notified).
STREAMS: dict[str, dict[str, Task[..., Any]]] = {
    "wb": {
        "cards": wb.sync_wb_cards,
        # The real-time feed before statistics: a transition both see notifies from the first
        # (the same dedupe key), so the feed's minute-old view wins the race it should win.
        "feed": sync_wb_feed,
        "orders": wb.sync_wb_orders,
        "sales": wb.sync_wb_sales,
        "stock": wb.sync_wb_stock,
        "reviews": wb.sync_wb_reviews,
    },
    "allegro": {
        "offers": allegro.sync_allegro_offers,
        "orders": allegro.sync_allegro_orders,
        "history": allegro.sync_allegro_history,
        "returns": allegro.sync_allegro_returns,
    },
}
# Streams that continue where they stopped and are tracked as the shop's history
# (storage.history): their failure does not keep a first sync from ending.
RESUMABLE = {"allegro_history"}
# The fast signal beside statistics (tasks/wb_feed.py): a token the feed refuses (some token
# types are refused, a Base token gets 1 request per 3 hours) must not keep a shop's first sync
# from ending; statistics, the record, bring every transition anyway.
FAST_SIGNALS = {"wb_feed"}
AUTH_STOPS = (CredentialsRejected, ReauthRequired, AccessTokenRejected)


def _stream_runner(task: Task[..., Any], mode: str) -> Callable[[SyncContext], Awaitable[StreamReport]]:
    if mode == "tasks":
        return task
    if mode == "retried":
        return partial(call_retried, task.fn)
    return task.fn


async def run_streams(ctx: SyncContext, streams: list[str] | None, *, mode: str | None = None) -> list[StreamReport]:
    """Every stream of the shop in order; one failing stream does not stop the others. `mode`:
    "tasks", each stream a task run (retries, UI: the default inside a flow run); "retried",
    the bare functions retried as their tasks would be (inside the shop's one task run,
    `shop_streams`); "bare", no retries (the default outside flows: tests, benchmarks)."""
    table = STREAMS[ctx.shop.marketplace]
    chosen = streams or list(table)
    unknown = sorted(set(chosen) - set(table))
    if unknown:
        raise ValueError(f"unknown stream(s) for {ctx.shop.marketplace}: {', '.join(unknown)}")
    in_flow = FlowRunContext.get() is not None
    mode = mode or ("tasks" if in_flow else "bare")
    reports: list[StreamReport] = []
    if in_flow and "first_stream" not in startup.phases():
        startup.mark("first_stream")
        run_logger().info("%s", startup.line())
    # Each stream's start in the transaction that ends the one before (tasks.context), when
    # every stream runs on this one context (a task run per stream may be handed a copy of it).
    ahead = mode != "tasks" and ctx.kind == "sync"
    try:
        for i, name in enumerate(chosen):
            following = chosen[i + 1] if ahead and i + 1 < len(chosen) else None
            ctx.next_stream = f"{ctx.shop.marketplace}_{following}" if following else None
            if not await _run_one(ctx, _stream_runner(table[name], mode), name, reports):
                break
    finally:
        ctx.next_stream = None
        if ctx.begun:  # begun ahead for a stream the loop did not reach
            await _discard_begun(ctx)
    return reports


async def _run_one(
    ctx: SyncContext, run: Callable[[SyncContext], Awaitable[StreamReport]], name: str, reports: list[StreamReport]
) -> bool:
    """One stream, its report added; False: the sync stops here."""
    stream = f"{ctx.shop.marketplace}_{name}"  # as the stream records its own runs
    try:
        reports.append(await run(ctx))
    except LeaseLost as exc:
        # Another process has the shop now: nothing more may be written; the caller raises.
        reports.append(StreamReport(stream=stream, status="failed", error=f"LeaseLost: {exc}"))
        return False
    except AUTH_STOPS as exc:
        # The other streams would be refused too: stop (a WB key refused: tell the owners once).
        reports.append(StreamReport(stream=stream, status="failed", error=f"{type(exc).__name__}: {exc}"))
        if isinstance(exc, CredentialsRejected) and ctx.shop.marketplace == "wb":
            await ctx.db(mark_broken, ctx.engine, shop_id=ctx.shop.id, reason=str(exc))
        return False
    except Exception as exc:  # noqa: BLE001 - recorded in the run and the summary; others go on
        reports.append(StreamReport(stream=stream, status="failed", error=f"{type(exc).__name__}: {exc}"))
    return True


async def _discard_begun(ctx: SyncContext) -> None:
    try:
        await ctx.in_transaction(lambda s: discard_begun(s, ctx))
    except Exception as exc:  # noqa: BLE001 - left running, they are reaped as crashed; the sync's outcome matters more
        ctx.log.warning("runs begun ahead for shop %s were not discarded: %s", ctx.shop.id, exc)


@task(name="sync-shop-streams", task_run_name="sync-streams-shop-{ctx.shop.id}", cache_policy=NONE)
async def shop_streams(ctx: SyncContext, streams: list[str] | None) -> list[StreamReport]:
    """Every stream of a batch run's shop as one task run, not one per stream: the Prefect
    server records a fifth of the task runs (each a run, its states and their events); each
    stream is still retried on transient failures as its own task would be."""
    return await run_streams(ctx, streams, mode="retried")


def first_sync_done(marketplace: str, reports: list[StreamReport], earlier: set[str] | None = None) -> bool:
    """Every stream of the marketplace succeeded, in this sync or an `earlier` one (a token the
    marketplace limits to a request every few hours may never get all of them in one sync), the
    resumable ones and fast signals aside."""
    ok = {r.stream for r in reports if r.status == "success"} | (earlier or set())
    wanted = {f"{marketplace}_{name}" for name in STREAMS[marketplace]} - RESUMABLE - FAST_SIGNALS
    return wanted <= ok


def sync_verdict(reports: list[StreamReport]) -> dict[str, Any]:
    """For the back-off (storage.backoff): a sync fails when none of its streams succeeded (a
    stream the marketplace limits for now has not failed: the shop is not backed off for it)."""
    if any(settled(r) for r in reports):
        return {"ok": True, "error": None}
    failed = [r for r in reports if r.error]
    return {"ok": False, "error": f"{failed[0].stream}: {failed[0].error}" if failed else "no stream ran"}


def mark_broken(engine: Engine, *, shop_id: int, reason: str) -> None:
    """The marketplace refused the shop's token: stop syncing it and tell its owners."""
    with Session(engine) as session, session.begin():
        shop = session.get(Shop, shop_id)
        if shop is not None and set_status(session, shop=shop, status=ShopStatus.broken, reason=reason):
            notify_shop_status(session, shop=shop, kind="shop_needs_reauth")
