"""What a stream needs to run: the shop, its decrypted credentials, the clients, bookkeeping.

`run_stream` wraps one stream of one shop: it records a sync run (counts, duration, error,
flow-run id), bounds the time the stream may spend failing (its retry budget, kept across its
task's retries), and blocking database work is sent to a worker thread so one shop's writes
don't stall the others' HTTP in the same event loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import anyio
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from connectors.errors import RetryLater
from connectors.http import RetryBudget, using_retry_budget
from connectors.parsing import gc_paused
from sellerpulse.settings import Settings
from storage.history import history_complete_expr
from storage.leases import Lease, LeaseLost, fenced
from storage.models import Shop
from storage.shops import credentials_of
from storage.stream_limits import clear_limit, limit_and_cursor, record_limit
from storage.sync_state import RunCounts, add_run, close_run, delete_runs, finish_run, get_cursor
from tasks.clients import Clients
from tasks.notifying import notify_if_failing

T = TypeVar("T")
# A stream's report status when the marketplace limits this token for longer than a run waits
# (not a failure: it reads on once allowed).
LIMITED = "limited"


@dataclass(frozen=True)
class ShopInfo:
    id: int
    marketplace: str
    name: str
    status: str
    notify_from: datetime | None
    currency: str | None
    language: str | None
    # The first sync finished and no history read is pending (storage.history).
    history_complete: bool = False

    @classmethod
    def of(cls, shop: Shop, *, history_complete: bool = False) -> ShopInfo:
        return cls(
            shop.id,
            shop.marketplace,
            shop.name,
            shop.status,
            shop.notify_from,
            shop.currency,
            shop.language,
            history_complete,
        )


@dataclass
class StreamReport:
    stream: str
    status: str = "success"  # or "failed", or LIMITED
    counts: RunCounts = field(default_factory=RunCounts)
    seconds: float = 0.0
    error: str | None = None
    note: str | None = None  # what the caller should know (e.g. a range clamped to the retention)


def settled(report: StreamReport) -> bool:
    """The stream did not fail: it succeeded, or the marketplace limits this token for now."""
    return report.status in ("success", LIMITED)


# Streams whose cursor is kept under another name (the Allegro orders stream reads the event
# journal's, tasks.allegro_streams.EVENTS_STREAM): their start reads that one.
CURSOR_OF = {"allegro_orders": "allegro_events"}
# A stream's start as `_begin` made it: the limit in force (if any), its run id (None: limited,
# no run), its cursor.
Begun = tuple[datetime | None, int | None, Any]


@dataclass
class SyncContext:
    engine: Engine
    shop: ShopInfo
    credentials: dict[str, Any]
    clients: Clients
    kind: str = "sync"  # or "backfill"
    flow_run_id: str | None = None
    # Allegro: the shop's access token as the client takes it (tasks.tokens.ShopTokens), made on first use.
    allegro_tokens: Any = None
    # The shop lease this sync or backfill holds (storage.leases); once held, `engine` is fenced
    # by it (a commit after the lease was lost writes nothing) and `unfenced_engine` is the
    # engine without the fence, for what must be kept whoever holds the shop (a rotated token).
    lease: Lease | None = None
    unfenced_engine: Engine | None = None
    # Per stream, across its task's retries (Prefect hands the same context to each attempt).
    retry_budgets: dict[str, RetryBudget] = field(default_factory=dict)
    # A stream's cursor as its run read it at its start (run_stream), for its first read_cursor.
    cursors: dict[str, Any] = field(default_factory=dict)
    # The stream the shop's sync runs next (flows.streams.run_streams, when it runs them on this
    # very context), begun in the transaction that ends the one before (`begun`): one
    # transaction, one thread hop and one fence check fewer per stream.
    next_stream: str | None = None
    begun: dict[str, Begun] = field(default_factory=dict)
    log: logging.Logger | logging.LoggerAdapter[Any] = field(
        default_factory=lambda: logging.getLogger("sellerpulse.sync")
    )

    def hold(self, lease: Lease) -> None:
        """From now on every write of this context is fenced by `lease`."""
        self.unfenced_engine = self.unfenced_engine or self.engine
        self.engine = fenced(self.unfenced_engine, lease)
        self.lease = lease

    def check_lease(self) -> None:
        """Stop (LeaseLost) if the heartbeat found the lease lost: no use reading what cannot be written."""
        if self.lease is not None and self.lease.lost:
            raise self.lease.lost_error()

    @property
    def settings(self) -> Settings:
        return self.clients.settings

    def now(self) -> datetime:
        return self.clients.now()

    def retry_budget(self, stream: str) -> RetryBudget:
        budget = self.retry_budgets.get(stream)
        if budget is None:
            budget = self.retry_budgets[stream] = RetryBudget(self.settings.stream_retry_budget_seconds)
        return budget

    @property
    def silent(self) -> bool:
        """A shop's first sync creates no notifications. Any other run, a backfill too, notifies
        what happened after the notify-from point (the rules judge each change by its time)."""
        return self.shop.notify_from is None

    async def db(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run blocking database work in a worker thread."""
        return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))

    async def cursor(self, stream: str) -> dict[str, Any] | None:
        """`read_cursor`, without a thread hop when the stream's run read it as it began."""
        if stream in self.cursors:
            return self.cursors.pop(stream)
        return await self.db(read_cursor, self, stream)

    async def in_transaction(self, fn: Callable[[Session], T]) -> T:
        def work() -> T:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                return fn(session)

        return await anyio.to_thread.run_sync(work)


def load_context(
    engine: Engine,
    *,
    shop_id: int,
    clients: Clients,
    kind: str = "sync",
    flow_run_id: str | None = None,
    session: Session | None = None,
) -> SyncContext:
    """The shop's context, read in `session` (the caller's transaction) or a session of its own."""
    if session is None:
        with Session(engine, expire_on_commit=False) as own:
            return load_context(
                engine, shop_id=shop_id, clients=clients, kind=kind, flow_run_id=flow_run_id, session=own
            )
    # The shop and whether its history is complete in one statement.
    found = session.execute(select(Shop, history_complete_expr()).where(Shop.id == shop_id)).first()
    if found is None:
        raise LookupError(f"shop {shop_id} does not exist")
    shop, complete = found
    return SyncContext(
        engine=engine,
        shop=ShopInfo.of(shop, history_complete=bool(complete)),
        credentials=credentials_of(shop),
        clients=clients,
        kind=kind,
        flow_run_id=flow_run_id,
    )


def _retry_later(exc: BaseException) -> RetryLater | None:
    """The RetryLater behind a failure, if that is what it was (maybe wrapped on its way up)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None or isinstance(seen, RetryLater):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _limited(report: StreamReport, until: datetime) -> StreamReport:
    report.status = LIMITED
    report.error = (
        f"the marketplace allows this token its next request at {until.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    )
    return report


async def run_stream(ctx: SyncContext, stream: str, body: Callable[[RunCounts], Awaitable[None]]) -> StreamReport:
    """Run one stream with a sync-run record; failures are recorded, then re-raised for retries.

    A stream the marketplace limited for longer than a run waits (connectors.errors.RetryLater:
    a WB Base token gets 1 statistics request per 2-3 hours) is not a failure: the time it named
    is kept (storage.stream_limits), the report says `limited`, and until then every run of the
    stream returns `limited` at once, without a request; after it, the stream reads on from its
    cursor."""
    report = StreamReport(stream)
    begun = ctx.begun.pop(stream, None)
    ctx.check_lease()  # a run begun under a lease lost since is reaped as crashed by the next holder
    until, run_id, cursor = begun or await ctx.in_transaction(lambda s: _begin(s, ctx, stream))
    if run_id is None and until is not None:
        return _limited(report, until)
    assert run_id is not None
    ctx.cursors[CURSOR_OF.get(stream, stream)] = cursor  # committed: the body's first read_cursor takes it
    try:
        return await _run_body(ctx, stream, body, report, run_id, until)
    finally:
        ctx.cursors.pop(CURSOR_OF.get(stream, stream), None)  # not read by the body: never handed to a later read


def _begin(session: Session, ctx: SyncContext, stream: str) -> Begun:
    """In one transaction (two round trips): the stream's limit, and if it is not in force
    (else no run: None), its run record and its cursor."""
    until, cursor = limit_and_cursor(session, shop_id=ctx.shop.id, stream=stream, cursor=CURSOR_OF.get(stream))
    if until is not None and ctx.now() < until:
        return until, None, None
    token = ctx.lease.token if ctx.lease else None
    run_id = add_run(
        session, shop_id=ctx.shop.id, stream=stream, kind=ctx.kind, flow_run_id=ctx.flow_run_id, lease_token=token
    )
    return until, run_id, cursor


async def _run_body(
    ctx: SyncContext,
    stream: str,
    body: Callable[[RunCounts], Awaitable[None]],
    report: StreamReport,
    run_id: int,
    until: datetime | None,
) -> StreamReport:
    started = time.perf_counter()
    budget = ctx.retry_budget(stream)
    budget.resume()  # the delay before this retry of the stream counts against its budget
    try:
        # A stream holds a page's hundreds of thousands of small acyclic objects alive at once:
        # the cyclic GC would walk them again and again (measured: a third to half of the write
        # path's Python time) while reference counting frees them anyway. Re-enabled at the end.
        with gc_paused(), using_retry_budget(budget):
            budget.check()
            await body(report.counts)
    except BaseException as exc:
        budget.pause()
        later = _retry_later(exc)
        if later is not None and later.retry_after is not None:
            report.seconds = time.perf_counter() - started
            until = await ctx.in_transaction(
                lambda s: record_limit(
                    s, shop_id=ctx.shop.id, stream=stream, now=ctx.now(), retry_after=later.retry_after
                )
            )
            _limited(report, until)
            await ctx.db(
                finish_run, ctx.engine, run_id=run_id, status="skipped", counts=report.counts, error=report.error
            )
            ctx.log.info("%s of shop %s: %s", stream, ctx.shop.name, report.error)
            return report
        report.status, report.error = "failed", _describe(exc)
        report.seconds = time.perf_counter() - started
        if isinstance(exc, LeaseLost):
            # Another process holds the shop now: its sync records runs and failures; this one
            # can write nothing (its run is reaped as crashed).
            ctx.log.error("%s of shop %s stopped: %s", stream, ctx.shop.name, exc)
            raise
        await ctx.db(finish_run, ctx.engine, run_id=run_id, status="failed", counts=report.counts, error=report.error)
        ctx.log.warning("%s of shop %s failed: %s", stream, ctx.shop.name, report.error)
        await ctx.in_transaction(lambda s: notify_if_failing(s, ctx=ctx, stream=stream, error=report.error))
        raise
    report.seconds = time.perf_counter() - started

    def done(session: Session) -> None:
        if until is not None:  # a limit that has run out: gone with the run's end, in one transaction
            clear_limit(session, shop_id=ctx.shop.id, stream=stream)
        close_run(session, run_id=run_id, status="success", counts=report.counts)
        following = ctx.next_stream
        if following is not None and following not in ctx.begun:
            # Its start a few milliseconds early, in this transaction: the cursor it reads can't
            # change in between (the lease: no other writer of the shop; this stream has ended).
            ctx.begun[following] = _begin(session, ctx, following)

    await ctx.in_transaction(done)
    ctx.log.info("%s of shop %s: %s in %.1f s", stream, ctx.shop.name, report.counts.as_dict(), report.seconds)
    return report


def discard_begun(session: Session, ctx: SyncContext) -> None:
    """Runs begun ahead for a stream that did not run after all (the sync stopped before it):
    deleted, they never ran (left `running`, they would be reaped as crashed)."""
    ids = [run_id for _, run_id, _ in ctx.begun.values() if run_id is not None]
    ctx.begun.clear()
    if ids:
        delete_runs(session, run_ids=ids)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def read_cursor(ctx: SyncContext, stream: str) -> dict[str, Any] | None:
    """The stream's cursor: the one its run read as it began, the first time (no write of the
    shop came between: the lease), else from the database."""
    if stream in ctx.cursors:
        return ctx.cursors.pop(stream)
    with Session(ctx.engine) as session:
        return get_cursor(session, shop_id=ctx.shop.id, stream=stream)


def count_page(counts: RunCounts, page: Any, result: Any) -> None:
    """Add one fetched page and what writing it did to a stream's counts."""
    counts.fetched += page.received
    counts.requests += page.requests
    counts.inserted += result.inserted
    counts.updated += result.updated
    counts.unchanged += result.unchanged
    counts.stale_refused += result.stale


@dataclass
class Batch:
    """Several small pages written as one (Allegro's listing gives 100 orders a page)."""

    items: list[Any]
    cursor: Any = None
    received: int = 0
    requests: int = 0
    pages: int = 0


async def batched(pages: AsyncIterator[Any], min_items: int) -> AsyncIterator[Batch]:
    """Merge consecutive pages until they hold `min_items`; a batch's cursor is its last page's
    (valid when cursors only move forward, as resume points do). If reading fails, the pages
    read so far are yielded as a last batch before the error is raised."""
    batch = Batch([])
    try:
        async for page in pages:
            batch.items.extend(page.items)
            batch.cursor, batch.pages = page.cursor, batch.pages + 1
            batch.received += page.received
            batch.requests += page.requests
            if len(batch.items) >= min_items:
                yield batch
                batch = Batch([])
    except Exception:
        # What was read before the failure is written with its resume point, then the failure
        # goes on: a retry does not read those pages again.
        if batch.pages:
            yield batch
        raise
    if batch.pages:
        yield batch


def _describe(exc: BaseException) -> str:
    # Connector errors never carry secrets (connectors/errors.py); others are named by type.
    return f"{type(exc).__name__}: {exc}"[:2000]
