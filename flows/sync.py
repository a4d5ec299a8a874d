"""The sync flows: sync-shop (one shop), sync-all (every due shop: here, or fanned out as
sync-batch runs on the work pool), sync-batch (a batch of one marketplace's shops). They only
orchestrate; a shop's sync is flows.shop_sync, its streams flows.streams.

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
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import anyio
from prefect import flow, runtime
from prefect.artifacts import create_markdown_artifact

from flows import fanout
from flows.common import flow_run_id, shop_label, slug
from flows.logs import run_logger
from flows.pool import queue_limits
from flows.shop_sync import shop_marketplaces, sync_many, sync_one
from flows.streams import STREAMS, run_streams
from flows.summary import summary_key, sync_summary
from sellerpulse.settings import get_settings
from storage.db import get_engine
from storage.migrate import require_head
from storage.reaping import reap
from storage.sync_state import database_now
from tasks.clients import make_clients
from tasks.context import settled

# Re-exported: callers (tests, benchmarks, flows.feed) import them from here.
__all__ = ["STREAMS", "run_streams", "sync_all", "sync_batch", "sync_many", "sync_one", "sync_shop"]
startup.mark("flows_loaded")


def sync_run_name() -> str:
    shop_id = runtime.flow_run.parameters.get("shop_id")
    marketplace, name = shop_label(int(shop_id))
    return f"sync-{marketplace}-{slug(name)}-{datetime.now(UTC):%Y%m%d-%H%M%S}"


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
    # One client set for the whole run (a set is ~160 ms of CPU: its SSL contexts), however
    # many rounds it stays for.
    async with make_clients() as clients:
        results = await sync_many(shop_ids, concurrency=concurrency, as_flows=False, since=since, clients=clients)
        failed = {i for i, r in results.items() if r == "failed"}
        markets = set((await anyio.to_thread.run_sync(shop_marketplaces, engine, shop_ids)).values())
        poll = max(1.0, interval.total_seconds() / 10)
        while since is not None and time.monotonic() < ends:
            due, since = await anyio.to_thread.run_sync(partial(fanout.due_again, engine, markets, interval=interval))
            if due:
                more = await sync_many(due, concurrency=concurrency, as_flows=False, since=since, clients=clients)
                failed |= {i for i, r in more.items() if r == "failed"}
                results |= more
                if not set(more.values()) <= {"skipped"}:
                    continue  # it synced some: look again at once
            # Nothing due that is not being synced (or held by a dead run's lease) yet.
            await asyncio.sleep(max(0.0, min(poll, ends - time.monotonic())))
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(results)} shop(s) failed: {sorted(failed)[:20]} (see sync_runs)")
    return {str(k): v for k, v in results.items()}
