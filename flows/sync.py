"""sync-shop and sync-all: orchestration only (which shop, which streams, in what order).

One sync of a shop at a time, across processes and machines: a lease row in PostgreSQL with a
fencing token (storage.leases), renewed while the sync runs. A second sync of the same shop
skips and says so in its log; a sync whose lease was lost (it stalled past the lease and
another took the shop over) stops with LeaseLost and writes nothing more. The first sync of a shop is
silent; when it has finished every stream, the shop's notify-from point is set. A stream that
resumes where it stopped (the Allegro order history) does not hold that back: the shop says
"history incomplete" until it is done, and notifies live changes meanwhile.

Only a WB key the marketplace refuses marks a shop `broken`. An Allegro 401 is answered by the
client (renew the token, send the request again); tokens refused even then fail the run
(AccessTokenRejected, tried again next sync), and only `invalid_grant` on a refresh means the
owner must log in again (`needs_reauth`).
"""

from __future__ import annotations

# First: marks when the flows' code began to be imported (flows.startup: where start-up goes).
from flows import startup  # isort: skip

# isort: split
import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import anyio
from prefect import Task, flow, runtime, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.context import FlowRunContext
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from connectors.errors import AccessTokenRejected, CredentialsRejected, ReauthRequired
from flows import fanout
from flows.common import flow_run_id, reap_shop, shop_label, slug
from flows.logs import run_logger
from flows.pool import queue_limits
from flows.summary import summary_key, sync_summary
from sellerpulse.settings import get_settings
from storage.backoff import record_outcome
from storage.db import get_engine
from storage.leases import LeaseBusy, LeaseLost, hold
from storage.migrate import require_head
from storage.models import Shop, ShopStatus, SyncRun
from storage.reaping import reap
from storage.shops import set_status
from storage.sync_state import database_now, synced_since
from tasks import allegro_streams as allegro
from tasks import wb_streams as wb
from tasks.clients import Clients, borrowed_or_new, make_clients
from tasks.context import StreamReport, SyncContext, load_context, settled
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
startup.mark("flows_loaded")


def sync_run_name() -> str:
    shop_id = runtime.flow_run.parameters.get("shop_id")
    marketplace, name = shop_label(int(shop_id))
    return f"sync-{marketplace}-{slug(name)}-{datetime.now(UTC):%Y%m%d-%H%M%S}"


def _mark_first_sync_done(engine: Engine, shop_id: int, at: datetime) -> None:
    """From `at` on, changes notify. Set once: a later sync never moves it."""
    with Session(engine) as session, session.begin():
        session.execute(update(Shop).where(Shop.id == shop_id, Shop.notify_from.is_(None)).values(notify_from=at))


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
    for name in chosen:
        run = _stream_runner(table[name], mode)
        stream = f"{ctx.shop.marketplace}_{name}"  # as the stream records its own runs
        try:
            reports.append(await run(ctx))
        except LeaseLost as exc:
            # Another process has the shop now: nothing more may be written; the caller raises.
            reports.append(StreamReport(stream=stream, status="failed", error=f"LeaseLost: {exc}"))
            break
        except AUTH_STOPS as exc:
            # The other streams would be refused too: stop (a WB key refused: tell the owners once).
            reports.append(StreamReport(stream=stream, status="failed", error=f"{type(exc).__name__}: {exc}"))
            if isinstance(exc, CredentialsRejected) and ctx.shop.marketplace == "wb":
                await ctx.db(mark_broken, ctx.engine, shop_id=ctx.shop.id, reason=str(exc))
            break
        except Exception as exc:  # noqa: BLE001 - recorded in the run and the summary; others go on
            reports.append(StreamReport(stream=stream, status="failed", error=f"{type(exc).__name__}: {exc}"))
    return reports


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


def succeeded_before(engine: Engine, *, shop_id: int) -> set[str]:
    """The streams of the shop that have had a successful sync run."""
    with Session(engine) as session:
        query = select(SyncRun.stream).where(
            SyncRun.shop_id == shop_id, SyncRun.status == "success", SyncRun.kind == "sync"
        )
        return set(session.scalars(query.distinct()))


def sync_verdict(reports: list[StreamReport]) -> dict[str, Any]:
    """For the back-off (storage.backoff): a sync fails when none of its streams succeeded (a
    stream the marketplace limits for now has not failed: the shop is not backed off for it)."""
    if any(settled(r) for r in reports):
        return {"ok": True, "error": None}
    failed = [r for r in reports if r.error]
    return {"ok": False, "error": f"{failed[0].stream}: {failed[0].error}" if failed else "no stream ran"}


def _record_backoff(engine: Engine, *, shop_id: int, ok: bool, error: str | None) -> None:
    settings = get_settings()
    backoff = record_outcome(
        engine,
        shop_id=shop_id,
        ok=ok,
        error=error,
        base=settings.sync_backoff_base_seconds,
        cap=settings.sync_backoff_max_seconds,
    )
    if backoff is not None and backoff.failures > 1:
        run_logger().warning(
            "shop %s failed %d syncs in a row: the scheduled sync leaves it out until %s",
            shop_id,
            backoff.failures,
            f"{backoff.next_attempt_at:%Y-%m-%d %H:%M:%S %Z}",
        )


def mark_broken(engine: Engine, *, shop_id: int, reason: str) -> None:
    """The marketplace refused the shop's token: stop syncing it and tell its owners."""
    with Session(engine) as session, session.begin():
        shop = session.get(Shop, shop_id)
        if shop is not None and set_status(session, shop=shop, status=ShopStatus.broken, reason=reason):
            notify_shop_status(session, shop=shop, kind="shop_needs_reauth")


async def _synced(shop_id: int, since: datetime) -> bool:
    return shop_id in await anyio.to_thread.run_sync(synced_since, get_engine(), [shop_id], since)


async def sync_one(
    shop_id: int,
    streams: list[str] | None = None,
    *,
    clients: Clients | None = None,
    wait_seconds: float = 0.0,
    unless_synced_since: datetime | None = None,
    one_task_run: bool = False,
) -> list[StreamReport]:
    """The body of sync-shop, callable without Prefect (tests, benchmarks). [] if another sync
    holds the shop, or (`unless_synced_since`) a sync of it began at or after that time (checked
    under the lease: two runs of a cycle never both sync a shop); LeaseLost if this one lost its
    lease on the way (it wrote nothing after). `one_task_run`: inside a flow run, the streams
    are one task run (`shop_streams`) instead of one each."""
    logger = run_logger()
    engine = get_engine()
    async with borrowed_or_new(clients) as clients:
        seconds = clients.settings.sync_lease_seconds
        try:
            async with hold(engine, shop_id=shop_id, kind="sync", seconds=seconds, wait_seconds=wait_seconds) as lease:
                startup.mark("first_lease")
                if unless_synced_since is not None and await _synced(shop_id, unless_synced_since):
                    logger.info("shop %s was synced in this cycle already: this run skips it", shop_id)
                    return []
                ctx = load_context(engine, shop_id=shop_id, clients=clients, flow_run_id=flow_run_id())
                ctx.log = logger
                ctx.hold(lease)
                await ctx.db(reap_shop, ctx)
                if ctx.shop.status != ShopStatus.active.value:
                    logger.info("shop %s is %s: not syncing", ctx.shop.name, ctx.shop.status)
                    return []
                started = ctx.now()
                one_task = one_task_run and FlowRunContext.get() is not None
                reports = await (shop_streams(ctx, streams) if one_task else run_streams(ctx, streams))
                ctx.check_lease()  # lost on the way (the fence refused a write): say so, write nothing more
                await ctx.db(_record_backoff, ctx.engine, shop_id=shop_id, **sync_verdict(reports))
                if ctx.shop.notify_from is None and streams is None:
                    earlier = await ctx.db(succeeded_before, ctx.engine, shop_id=shop_id)
                    if first_sync_done(ctx.shop.marketplace, reports, earlier):
                        # Anything that happened after the first sync started may have been missed by it.
                        await ctx.db(_mark_first_sync_done, ctx.engine, shop_id, started)
                return reports
        except LeaseBusy:
            logger.info("another sync of shop %s is running: this one skips", shop_id)
            return []


@flow(name="sync-shop", flow_run_name=sync_run_name, retries=0)
async def sync_shop(shop_id: int, streams: list[str] | None = None) -> dict[str, Any]:
    """Sync every stream (or the given ones) of one shop."""
    require_head(get_engine())
    started = datetime.now(UTC)
    reports = await sync_one(shop_id, streams)
    marketplace, name = shop_label(shop_id)
    await create_markdown_artifact(
        key=summary_key("sync", shop_id, name),
        markdown=sync_summary(
            get_engine(),
            shop_id=shop_id,
            title=f"Sync of {marketplace} shop {name}",
            reports=reports,
            flow_run_id=flow_run_id(),
            since=started,
        ),
        description="per stream: counts, requests, time; retries, cursors reached, notifications created",
    )
    failed = [r.stream for r in reports if not settled(r)]
    if failed:
        raise RuntimeError(f"stream(s) failed: {', '.join(failed)} (see the summary artifact)")
    return {r.stream: r.counts.as_dict() for r in reports}


def sync_all_run_name() -> str:
    return f"sync-all-{datetime.now(UTC):%Y%m%d-%H%M%S}"


async def sync_many(
    shop_ids: list[int], *, concurrency: int, as_flows: bool, since: datetime | None = None
) -> dict[int, str]:
    """Shops in this process, at most `concurrency` at a time per marketplace (WB's slow
    limits never hold up Allegro's shops). `as_flows`: each a sync-shop subflow (its own run
    and summary artifact, for `serve`); otherwise the bare body, each shop's streams one task
    run of the calling flow (a batch of a worker: cheap for the server), every shop on the same clients
    (building a set costs ~160 ms of CPU: SSL contexts, one per host). `since`: shops synced at
    or after it are skipped ("skipped"), the check made under each shop's lease."""
    logger = run_logger()
    markets = await anyio.to_thread.run_sync(shop_marketplaces, get_engine(), shop_ids)
    startup.mark("shops_looked_up")
    gates = {m: asyncio.Semaphore(max(1, concurrency)) for m in set(markets.values())}

    async def one(shop_id: int, clients: Clients | None) -> str:
        async with gates[markets[shop_id]]:
            try:
                if as_flows:
                    await sync_shop(shop_id)
                    return "ok"
                if since is not None and await _synced(shop_id, since):
                    return "skipped"  # done by another run of this cycle: no lease taken
                reports = await sync_one(shop_id, clients=clients, unless_synced_since=since, one_task_run=True)
            except Exception as exc:  # noqa: BLE001 - one shop failing must not stop the others
                logger.warning("sync of shop %s failed: %s", shop_id, exc)
                return "failed"
            if not reports:
                return "skipped"
            return "ok" if all(settled(r) for r in reports) else "failed"

    known = [i for i in shop_ids if i in markets]  # a shop deleted since the batch was made: gone
    if as_flows:
        results = await asyncio.gather(*(one(i, None) for i in known))
    else:
        async with make_clients() as shared:
            results = await asyncio.gather(*(one(i, shared) for i in known))
    found = dict(zip(known, results, strict=True))
    return {i: found.get(i, "skipped") for i in shop_ids}


def shop_marketplaces(engine: Engine, shop_ids: list[int]) -> dict[int, str]:
    """Each existing shop's marketplace, in one query."""
    with Session(engine) as session:
        rows = session.execute(select(Shop.id, Shop.marketplace).where(Shop.id.in_(shop_ids))).tuples().all()
    return dict(rows)


def _reap_all() -> None:
    logger = run_logger()
    failing_after = timedelta(seconds=get_settings().sync_failing_after_seconds)
    for dead in reap(get_engine(), failing_after=failing_after):
        logger.warning("run %s (%s) of shop %s had crashed: marked failed", dead.run_id, dead.stream, dead.shop_id)


@flow(name="sync-all", flow_run_name=sync_all_run_name, retries=0)
async def sync_all(
    concurrency: int | None = None, shops: list[int] | None = None, fan_out: bool = False
) -> dict[Any, Any]:
    """Every due shop (active, not backed off), or the given ones. `fan_out`: as runs of
    sync-batch on the work pool, one queue per marketplace (flows.fanout), not waited for:
    {"batches": [flow run ids]}; otherwise here, at most `concurrency` shops at a time per
    marketplace: {shop id: "ok" | "failed" | "skipped"}. `concurrency`: default SYNC_CONCURRENCY."""
    logger = run_logger()
    concurrency = concurrency or get_settings().sync_concurrency
    _reap_all()
    due = fanout.due_shops(get_engine(), only=shops)
    if not fan_out:
        ids = sorted(i for group in due.values() for i in group)
        return await sync_many(ids, concurrency=concurrency, as_flows=True)
    settings = get_settings()
    since = database_now(get_engine())  # this cycle: a run skips shops synced since
    active = await fanout.active_batches()
    limits = {q.name: q.limit for q in queue_limits(settings)}
    started = await fanout.start_batches(
        due,
        batch_size=settings.sync_batch_size,
        concurrency=concurrency,
        limits=limits,
        active=active,
        since=since,
        interval=settings.sync_interval_seconds,
    )
    for marketplace in sorted(due):
        runs = sum(1 for s in started if s.marketplace == marketplace)
        logger.info(
            "%s: %d due shop(s); %d batch run(s) started, %d still going or waiting (queue limit %d)",
            marketplace,
            len(due[marketplace]),
            runs,
            active.get(fanout.queue_name(marketplace), 0),
            limits.get(marketplace, 0),
        )
    return {"batches": [s.flow_run_id for s in started]}


def sync_batch_run_name() -> str:
    ids = runtime.flow_run.parameters.get("shop_ids") or []
    marketplace = shop_label(int(ids[0]))[0] if ids else "none"
    return f"sync-batch-{marketplace}-{len(ids)}-shops-{datetime.now(UTC):%Y%m%d-%H%M%S}"


@flow(name="sync-batch", flow_run_name=sync_batch_run_name, retries=0)
async def sync_batch(
    shop_ids: list[int], concurrency: int = 4, since: datetime | None = None, stay_seconds: float | None = None
) -> dict[str, str]:
    """Sync these shops (one marketplace's, started by sync-all), `concurrency` at a time.
    `since` (the cycle's start): a shop synced since then is skipped, by whichever run of the
    cycle synced it; the shops' leases keep two runs from syncing one shop at once. Then the run
    stays `stay_seconds` from its start (default KEEP_PULLING_INTERVALS sync intervals), syncing
    the marketplace's shops as they fall due again (not synced for SYNC_INTERVAL_SECONDS; looked
    for every tenth of an interval): one process start serves several cycles (flows.fanout)."""
    startup.mark("flow_body")
    engine = get_engine()
    require_head(engine)
    startup.mark("schema_checked")
    interval = timedelta(seconds=get_settings().sync_interval_seconds)
    stay = fanout.KEEP_PULLING_INTERVALS * interval.total_seconds() if stay_seconds is None else stay_seconds
    ends = time.monotonic() + stay
    results = await sync_many(shop_ids, concurrency=concurrency, as_flows=False, since=since)
    failed = {i for i, r in results.items() if r == "failed"}
    markets = set((await anyio.to_thread.run_sync(shop_marketplaces, engine, shop_ids)).values())
    poll = max(1.0, interval.total_seconds() / 10)
    while since is not None and time.monotonic() < ends:
        due, since = await anyio.to_thread.run_sync(partial(fanout.due_again, engine, markets, interval=interval))
        if due:
            more = await sync_many(due, concurrency=concurrency, as_flows=False, since=since)
            failed |= {i for i, r in more.items() if r == "failed"}
            results |= more
            if not set(more.values()) <= {"skipped"}:
                continue  # it synced some: look again at once
        # Nothing due that is not being synced (or held by a dead run's lease) yet.
        await asyncio.sleep(max(0.0, min(poll, ends - time.monotonic())))
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(results)} shop(s) failed: {sorted(failed)[:20]} (see sync_runs)")
    return {str(k): v for k, v in results.items()}
