"""Runs the CLI starts: the flows' own code in this process, or a run of their deployment.

- No `PREFECT_API_URL`: the same bodies the flows run (`sync_one`, `backfill_one`, the token
  refresh), called directly, with no Prefect server at all (a temporary one cost 15-20 s per
  command). Prefect's task retries are the flows' business; here a failed stream is reported
  and the next run retries it.
- `PREFECT_API_URL` set: a run of the deployment on that server (a worker or `sellerpulse serve`
  executes it), waited for; what each stream did is read back from `sync_runs` by flow-run id.

Either way the result is an `Outcome` per shop: what the CLI prints as a table or as JSON.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from flows.prefect_server import configured_api_url
from sellerpulse.errors import Failure
from storage.backoff import backoffs
from storage.models import Shop, ShopStatus, SyncRun
from tasks.context import LIMITED, StreamReport

OK, FAILED, SKIPPED = "success", "failed", "skipped"


@dataclass
class StreamRow:
    stream: str
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    attempts: int = 1


@dataclass
class Outcome:
    shop_id: int
    shop: str
    status: str  # success | failed | skipped
    reason: str | None = None
    streams: list[StreamRow] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunResult:
    outcomes: list[Outcome]
    flow_run_id: str | None = None  # the deployment's run, when there was one
    flow_run_state: str | None = None

    @property
    def ok(self) -> bool:
        return all(o.status != FAILED for o in self.outcomes) and self.flow_run_state in (None, "Completed")


def _rows_of(reports: list[StreamReport]) -> list[StreamRow]:
    return [StreamRow(r.stream, r.status, r.counts.as_dict(), r.error) for r in reports]


def _skip_reason(engine: Engine, shop_id: int, kind: str) -> str:
    """A sync or backfill that returned no stream at all skipped: say why."""
    with Session(engine) as session:
        shop = session.get(Shop, shop_id)
        if shop is None:
            return "the shop no longer exists"
        if kind == "sync" and shop.status != ShopStatus.active.value:
            return f"shop is {shop.status}" + (f" ({shop.status_reason})" if shop.status_reason else "")
        waiting = backoffs(session, shop_ids=[shop_id]).get(shop_id)
        if kind == "sync" and waiting is not None and waiting.next_attempt_at > datetime.now(UTC):
            until = f"{waiting.next_attempt_at:%H:%M %Z}"
            return f"backing off after {waiting.failures} failed syncs in a row (until {until})"
    return f"another {kind} of this shop is running"


def outcome_of(engine: Engine, shop_id: int, name: str, rows: list[StreamRow], *, kind: str = "sync") -> Outcome:
    if not rows:
        return Outcome(shop_id, name, SKIPPED, _skip_reason(engine, shop_id, kind))
    failed = [r.stream for r in rows if r.status not in (OK, LIMITED)]
    return Outcome(shop_id, name, FAILED if failed else OK, f"failed: {', '.join(failed)}" if failed else None, rows)


def shop_names(engine: Engine, ids: list[int]) -> dict[int, str]:
    with Session(engine) as session:
        return dict(session.execute(select(Shop.id, Shop.name).where(Shop.id.in_(ids))).tuples().all())


# --- in this process ----------------------------------------------------------------------------


async def sync_here(engine: Engine, shop_ids: list[int], *, concurrency: int) -> RunResult:
    from flows.sync import sync_one

    names = shop_names(engine, shop_ids)
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(shop_id: int) -> Outcome:
        async with gate:
            try:
                reports = await sync_one(shop_id)
            except Exception as exc:  # noqa: BLE001 - one shop failing must not stop the others
                return Outcome(shop_id, names[shop_id], FAILED, f"{type(exc).__name__}: {exc}")
        return outcome_of(engine, shop_id, names[shop_id], _rows_of(reports))

    return RunResult(list(await asyncio.gather(*(one(i) for i in shop_ids))))


async def backfill_here(
    engine: Engine, shop_id: int, since: date, until: date | None, streams: list[str] | None
) -> RunResult:
    from flows.backfill import backfill_one

    name = shop_names(engine, [shop_id])[shop_id]
    reports = await backfill_one(shop_id, since, until, streams)
    return RunResult([outcome_of(engine, shop_id, name, _rows_of(reports), kind="backfill")])


async def refresh_here(engine: Engine) -> RunResult:
    from flows.tokens import refresh_token_task
    from tasks.clients import make_clients
    from tasks.tokens import shops_due

    async with make_clients() as clients:
        window = clients.settings.token_refresh_window_seconds
        due = shops_due(engine, window=timedelta(seconds=window), now=clients.now())
        names = shop_names(engine, due)
        outcomes = []
        for shop_id in due:
            try:
                result = await refresh_token_task.fn(shop_id, clients, window)
            except Exception as exc:  # noqa: BLE001 - the shop stays active; the next run tries again
                outcomes.append(Outcome(shop_id, names[shop_id], FAILED, f"{type(exc).__name__}: {exc}"))
                continue
            if result == "needs_reauth":
                outcomes.append(Outcome(shop_id, names[shop_id], FAILED, "needs a new login: `shops reconnect`"))
            else:
                outcomes.append(Outcome(shop_id, names[shop_id], OK, "token refreshed"))
    return RunResult(outcomes)


# --- as a run of the deployment -----------------------------------------------------------------


async def run_deployment_and_wait(name: str, parameters: dict[str, Any]) -> tuple[str, str]:
    """Start a run of deployment `name`, wait for it to end; (flow run id, final state name)."""
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    url = configured_api_url()
    try:
        async with get_client() as client:
            deployment = await client.read_deployment_by_name(name)
            run = await client.create_flow_run_from_deployment(deployment.id, parameters=parameters)
            # On stderr: stdout stays the result alone (`--json`).
            print(f"started flow run {run.name} ({run.id}) of {name} on {url}; waiting for it", file=sys.stderr)
            try:
                while True:
                    run = await client.read_flow_run(run.id)
                    if run.state is not None and run.state.is_final():
                        return str(run.id), run.state.name
                    await asyncio.sleep(1.0)
            except (KeyboardInterrupt, asyncio.CancelledError):
                print(f"stopped waiting; flow run {run.id} goes on on the server", file=sys.stderr)
                raise
    except ObjectNotFound:
        raise Failure(
            f"the Prefect server at {url} has no deployment {name}: run `sellerpulse serve`, "
            "or `prefect deploy --all` and a worker"
        ) from None
    except httpx.HTTPError as exc:
        raise Failure(f"cannot reach the Prefect server at {url} ({type(exc).__name__}): is it running?") from None


def rows_of_runs(engine: Engine, flow_run_ids: list[str], *, kind: str) -> dict[int, list[StreamRow]]:
    """Per shop, per stream: the last attempt's record (retries leave one record per attempt)."""
    with Session(engine) as session:
        runs = session.scalars(
            select(SyncRun).where(SyncRun.flow_run_id.in_(flow_run_ids), SyncRun.kind == kind).order_by(SyncRun.id)
        ).all()
    found: dict[int, dict[str, StreamRow]] = {}
    for r in runs:
        streams = found.setdefault(r.shop_id, {})
        attempts = streams[r.stream].attempts + 1 if r.stream in streams else 1
        counts = {
            k: getattr(r, k) for k in ("fetched", "inserted", "updated", "unchanged", "stale_refused", "requests")
        }
        streams[r.stream] = StreamRow(r.stream, r.status, counts, r.error, attempts)
    return {shop_id: list(streams.values()) for shop_id, streams in found.items()}


async def child_run_ids(flow_run_id: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    async with get_client() as client:
        children = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[UUID(flow_run_id)]))
        )
    return [str(c.id) for c in children]


async def children_finished(flow_run_id: str, *, poll_seconds: float = 1.0) -> list[str]:
    """The ids of the run's child runs once every one of them has ended."""
    from prefect.client.orchestration import get_client

    while True:
        ids = await child_run_ids(flow_run_id)
        async with get_client() as client:
            runs = [await client.read_flow_run(UUID(i)) for i in ids]
        if all(r.state is not None and r.state.is_final() for r in runs):
            return ids
        await asyncio.sleep(poll_seconds)


async def sync_deployed(engine: Engine, shop_ids: list[int], *, one_shop: bool, concurrency: int) -> RunResult:
    from flows.deployments import deployment_name
    from flows.sync import sync_all, sync_shop

    if one_shop:
        run_id, state = await run_deployment_and_wait(deployment_name(sync_shop), {"shop_id": shop_ids[0]})
        run_ids = [run_id]
    else:
        run_id, state = await run_deployment_and_wait(deployment_name(sync_all), {"concurrency": concurrency})
        # A sync-all on a work pool only starts its batches (flows.fanout): wait for them too.
        run_ids = await children_finished(run_id)
    if state == "Cancelled" and not one_shop:
        # sync-all runs one at a time (CANCEL_NEW): a scheduled one was already running.
        names = shop_names(engine, shop_ids)
        outcomes = [Outcome(i, names[i], SKIPPED, "another sync-all run is in progress") for i in shop_ids]
        return RunResult(outcomes, run_id, None)
    rows = rows_of_runs(engine, run_ids, kind="sync")
    names = shop_names(engine, shop_ids)
    outcomes = [outcome_of(engine, i, names[i], rows.get(i, [])) for i in shop_ids]
    return RunResult(outcomes, run_id, state)


async def backfill_deployed(engine: Engine, shop_id: int, parameters: dict[str, Any]) -> RunResult:
    from flows.backfill import backfill
    from flows.deployments import deployment_name

    run_id, state = await run_deployment_and_wait(deployment_name(backfill), parameters)
    rows = rows_of_runs(engine, [run_id], kind="backfill").get(shop_id, [])
    name = shop_names(engine, [shop_id])[shop_id]
    return RunResult([outcome_of(engine, shop_id, name, rows, kind="backfill")], run_id, state)


async def refresh_deployed(engine: Engine) -> RunResult:
    """The flow's result stays on the worker: what it did is read from the shops it was due to refresh."""
    from flows.deployments import deployment_name
    from flows.tokens import refresh_tokens
    from sellerpulse.settings import get_settings
    from tasks.tokens import shops_due

    window = timedelta(seconds=get_settings().token_refresh_window_seconds)
    due = shops_due(engine, window=window, now=datetime.now(UTC))
    with Session(engine) as session:
        before = {i: session.get(Shop, i).token_expires_at for i in due}  # type: ignore[union-attr]
    run_id, state = await run_deployment_and_wait(deployment_name(refresh_tokens), {})
    outcomes = []
    with Session(engine) as session:
        for shop_id in due:
            shop = session.get(Shop, shop_id)
            assert shop is not None
            if shop.status == ShopStatus.needs_reauth.value:
                outcomes.append(Outcome(shop_id, shop.name, FAILED, "needs a new login: `shops reconnect`"))
            elif shop.token_expires_at != before[shop_id]:
                outcomes.append(Outcome(shop_id, shop.name, OK, "token refreshed"))
            else:
                outcomes.append(Outcome(shop_id, shop.name, FAILED, "not refreshed (see the flow run's log)"))
    return RunResult(outcomes, run_id, state)
