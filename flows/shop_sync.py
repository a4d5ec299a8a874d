"""One shop's sync under its lease (`sync_one`), and many shops in one process on one client set
(`sync_many`): the bodies of sync-shop and sync-batch, callable without Prefect.

One sync of a shop at a time, across processes and machines: a lease row in PostgreSQL with a
fencing token (storage.leases), renewed while the sync runs. A second sync of the same shop
skips and says so in its log; a sync whose lease was lost (it stalled past the lease and
another took the shop over) stops with LeaseLost and writes nothing more. The first sync of a
shop is silent; when it has finished every stream, the shop's notify-from point is set. A
stream that resumes where it stopped (the Allegro order history) does not hold that back: the
shop says "history incomplete" until it is done, and notifies live changes meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from functools import partial
from typing import Any

import anyio
from prefect.context import FlowRunContext
from prefect.utilities.annotations import quote
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from flows import startup
from flows.common import flow_run_id, reap_shop
from flows.logs import run_logger
from flows.streams import first_sync_done, run_streams, shop_streams, sync_verdict
from storage.backoff import record_outcome
from storage.db import get_engine
from storage.leases import Lease, LeaseBusy, fenced, hold, release_with
from storage.models import Shop, ShopStatus, SyncRun
from storage.sync_state import synced_since, synced_since_in
from tasks.clients import Clients, borrowed_or_new
from tasks.context import StreamReport, SyncContext, load_context, settled


class WarningsToRun(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A batch run's log for one shop: warnings and errors to the run's log (Prefect's server),
    the rest to this process's own logging. A batch's every stream of every shop logged a line
    to the server (a thousand shops: thousands of lines a cycle, each sent, stored, indexed);
    what they said (counts, time) is in sync_runs."""

    def __init__(self, run: logging.Logger | logging.LoggerAdapter[Any], local: logging.Logger) -> None:
        super().__init__(local, {})
        self.run = run

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if level >= logging.WARNING:
            self.run.log(level, msg, *args, **kwargs)
        elif self.logger.isEnabledFor(level):
            self.logger.log(level, msg, *args, **kwargs)


def _mark_first_sync_done(session: Session, shop_id: int, at: datetime) -> None:
    """From `at` on, changes notify. Set once: a later sync never moves it."""
    session.execute(update(Shop).where(Shop.id == shop_id, Shop.notify_from.is_(None)).values(notify_from=at))


def succeeded_before(session: Session, *, shop_id: int) -> set[str]:
    """The streams of the shop that have had a successful sync run."""
    query = select(SyncRun.stream).where(
        SyncRun.shop_id == shop_id, SyncRun.status == "success", SyncRun.kind == "sync"
    )
    return set(session.scalars(query.distinct()))


def _open(
    engine: Engine, lease: Lease, *, shop_id: int, clients: Clients, since: datetime | None, log: Any
) -> SyncContext | None:
    """Under the lease, in one transaction (fenced) and one thread hop: None if a sync of the shop
    began at or after `since`; else the shop's context, its dead runs reaped."""
    with Session(fenced(engine, lease), expire_on_commit=False) as session, session.begin():
        if since is not None and shop_id in synced_since_in(session, [shop_id], since):
            return None
        ctx = load_context(engine, shop_id=shop_id, clients=clients, flow_run_id=flow_run_id(), session=session)
        ctx.log = log
        ctx.hold(lease)
        reap_shop(ctx, session)
    return ctx


def _finish(session: Session, ctx: SyncContext, reports: list[StreamReport], first: bool, started: datetime) -> Any:
    """A sync's last writes (the lease's release follows in this transaction): the shop's
    back-off, and at the end of a first sync the notify-from point."""
    settings = ctx.settings
    limits = {"base": settings.sync_backoff_base_seconds, "cap": settings.sync_backoff_max_seconds}
    backoff = record_outcome(session, shop_id=ctx.shop.id, **sync_verdict(reports), **limits)
    if first and first_sync_done(ctx.shop.marketplace, reports, succeeded_before(session, shop_id=ctx.shop.id)):
        # Anything that happened after the first sync started may have been missed by it.
        _mark_first_sync_done(session, ctx.shop.id, started)
    return backoff


def _say_backoff(shop_id: int, backoff: Any) -> None:
    if backoff is not None and backoff.failures > 1:
        run_logger().warning(
            "shop %s failed %d syncs in a row: the scheduled sync leaves it out until %s",
            shop_id,
            backoff.failures,
            f"{backoff.next_attempt_at:%Y-%m-%d %H:%M:%S %Z}",
        )


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
    are one task run (`shop_streams`) instead of one each, and only their warnings and errors
    go to the run's log (WarningsToRun)."""
    logger = WarningsToRun(run_logger(), logging.getLogger("sellerpulse.sync")) if one_task_run else run_logger()
    engine = get_engine()
    async with borrowed_or_new(clients) as clients:
        seconds = clients.settings.sync_lease_seconds
        try:
            async with hold(engine, shop_id=shop_id, kind="sync", seconds=seconds, wait_seconds=wait_seconds) as lease:
                startup.mark("first_lease")
                opened = partial(
                    _open, engine, lease, shop_id=shop_id, clients=clients, since=unless_synced_since, log=logger
                )
                ctx = await anyio.to_thread.run_sync(opened)
                if ctx is None:
                    logger.info("shop %s was synced in this cycle already: this run skips it", shop_id)
                    return []
                if ctx.shop.status != ShopStatus.active.value:
                    logger.info("shop %s is %s: not syncing", ctx.shop.name, ctx.shop.status)
                    return []
                started = ctx.now()
                reports = await _shop_streams(ctx, streams, batch=one_task_run and FlowRunContext.get() is not None)
                ctx.check_lease()  # lost on the way (the fence refused a write): say so, write nothing more
                first = ctx.shop.notify_from is None and streams is None
                last = partial(_finish, ctx=ctx, reports=reports, first=first, started=started)
                _say_backoff(shop_id, await ctx.db(release_with, ctx.engine, lease, last))
                return reports
        except LeaseBusy:
            logger.info("another sync of shop %s is running: this one skips", shop_id)
            return []


async def _shop_streams(ctx: SyncContext, streams: list[str] | None, *, batch: bool) -> list[StreamReport]:
    """A batch run's shop: its streams one task run (SYNC_SHOP_TASK_RUNS, visible in the UI) or
    in the flow run's body, retried alike either way; elsewhere as run_streams runs them."""
    if not batch:
        return await run_streams(ctx, streams)
    if ctx.settings.sync_shop_task_runs:
        # quote: Prefect does not walk the context (clients, settings) looking for futures.
        return await shop_streams(quote(ctx), streams)
    return await run_streams(ctx, streams, mode="retried")


async def sync_many(
    shop_ids: list[int],
    *,
    concurrency: int,
    as_flows: bool,
    since: datetime | None = None,
    clients: Clients | None = None,
) -> dict[int, str]:
    """Shops in this process, at most `concurrency` at a time per marketplace (WB's slow
    limits never hold up Allegro's shops). `as_flows`: each a sync-shop subflow (its own run
    and summary artifact, for `serve`); otherwise the bare body, each shop's streams one task
    run of the calling flow (a batch of a worker: cheap for the server), every shop on the same clients
    (building a set costs ~160 ms of CPU: SSL contexts, one per host). `since`: shops synced at
    or after it are skipped ("skipped"), the check made under each shop's lease. `clients`: the
    caller's set (a batch run's, for all its rounds), else one made for this call."""
    logger = run_logger()
    markets = await anyio.to_thread.run_sync(shop_marketplaces, get_engine(), shop_ids)
    startup.mark("shops_looked_up")
    gates = {m: asyncio.Semaphore(max(1, concurrency)) for m in set(markets.values())}

    async def one(shop_id: int, clients: Clients | None) -> str:
        async with gates[markets[shop_id]]:
            try:
                if as_flows:
                    from flows.sync import sync_shop  # the flow is defined on top of this module

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
        async with borrowed_or_new(clients) as shared:
            results = await asyncio.gather(*(one(i, shared) for i in known))
    found = dict(zip(known, results, strict=True))
    return {i: found.get(i, "skipped") for i in shop_ids}


def shop_marketplaces(engine: Engine, shop_ids: list[int]) -> dict[int, str]:
    """Each existing shop's marketplace, in one query."""
    with Session(engine) as session:
        rows = session.execute(select(Shop.id, Shop.marketplace).where(Shop.id.in_(shop_ids))).tuples().all()
    return dict(rows)
