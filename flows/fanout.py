"""sync-all on a work pool: per marketplace, a few long runs of `sync-batch` share the cycle's shops.

With workers (prefect.yaml: `fan_out: true`), sync-all does no syncing itself. It picks the
shops that are due (active, not backed off: storage.backoff), reads the database's clock (the
cycle's start) and, per marketplace, starts runs of the `sync-batch` deployment on the
marketplace's own work queue (`wb`, `allegro`): one per SYNC_BATCH_SIZE due shops, never more
than the queue's free slots (its concurrency limit, `sellerpulse prefect-setup`, minus the runs
not ended yet), so a slow cycle never piles runs up. Each run is given every due shop of its
marketplace (from a different place in the list) and the cycle's start, and syncs,
`concurrency` at a time, each shop that nobody has synced since: the runs of a cycle share its
shops. Then it stays a few intervals (KEEP_PULLING_INTERVALS), syncing its marketplace's shops
as they fall due again, and ends: a process start costs tens of seconds on a loaded machine
(benchmarks/scale), and this way it serves several cycles, not one; the runs of a marketplace
end one interval apart, so the others cover its shops while its successor starts. WB's
1 request/min per token keeps WB runs long; they fill only their own queue, never the slots
Allegro's shops use.

Any worker runs any batch; two runs never sync one shop at once (the shop's lease,
storage.leases), and the "synced since" check is made under the lease, so a shop is synced once
per cycle however many runs reach it. A run whose worker died is no obstacle: the other runs of
the cycle skip its shops while their leases last (SYNC_LEASE_SECONDS after the last renewal),
the next cycle takes them; the dead run records are reaped (storage.reaping) and the dead run,
once the zombie automation has crashed it, frees its slot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from storage.backoff import backed_off
from storage.models import Marketplace, Shop, ShopStatus
from storage.sync_state import database_now, synced_since

BATCH_DEPLOYMENT = "sync-batch/sync-batch"
MARKETPLACES = tuple(m.value for m in Marketplace)


def queue_name(marketplace: str) -> str:
    """The work queue of a marketplace's batches (one concurrency limit each)."""
    return marketplace


def due_shops(engine: Engine, *, only: list[int] | None = None) -> dict[str, list[int]]:
    """Active shops not backed off, per marketplace, in id order. `only`: among these ids
    (asked for by hand: back-off does not apply)."""
    with Session(engine) as session:
        query = select(Shop.marketplace, Shop.id).where(Shop.status == ShopStatus.active.value).order_by(Shop.id)
        if only is not None:
            query = query.where(Shop.id.in_(only))
        rows = session.execute(query).tuples().all()
        waiting = set() if only is not None else backed_off(session)
    found: dict[str, list[int]] = defaultdict(list)
    for marketplace, shop_id in rows:
        if shop_id not in waiting:
            found[marketplace].append(shop_id)
    return dict(found)


# A run stays this many sync intervals (the n-th run of a cycle n more: runs of a marketplace
# end one at a time, the others covering its shops while its successor starts), syncing shops
# as they fall due again, then ends (its process recycled; sync-all starts the next): one
# process start per several cycles instead of one per cycle.
KEEP_PULLING_INTERVALS = 5


def due_again(engine: Engine, marketplaces: set[str], *, interval: timedelta) -> tuple[list[int], datetime]:
    """Due shops of these marketplaces not synced within the last `interval` (the database's
    clock), and the point that defines it (a run's next `since`)."""
    since = database_now(engine) - interval
    ids = sorted(i for m, group in due_shops(engine).items() if m in marketplaces for i in group)
    done = synced_since(engine, ids, since)
    return [i for i in ids if i not in done], since


def batches(ids: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), max(1, size)):
        yield ids[start : start + size]


@dataclass(frozen=True)
class Started:
    marketplace: str
    flow_run_id: str
    shops: int


async def active_batches() -> dict[str, int]:
    """Per marketplace queue, the sync-batch runs not ended yet (Scheduled, Late, Pending, Running)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    alive = FlowRunFilterStateType(any_=[StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING])
    runs_filter = FlowRunFilter(state=FlowRunFilterState(type=alive))
    deployment = DeploymentFilter(name=DeploymentFilterName(any_=[BATCH_DEPLOYMENT.split("/")[1]]))
    found: dict[str, int] = defaultdict(int)
    page = 200
    async with get_client() as client:
        offset = 0
        while True:
            runs = await client.read_flow_runs(
                flow_run_filter=runs_filter, deployment_filter=deployment, limit=page, offset=offset
            )
            for run in runs:
                found[run.work_queue_name or ""] += 1
            if len(runs) < page:
                return dict(found)
            offset += page


def runs_to_start(shops: int, *, batch_size: int, free: int) -> int:
    """A run per `batch_size` due shops, no more than the queue's free slots."""
    return max(0, min(free, -(-shops // max(1, batch_size))))


def rotated(ids: list[int], part: int, parts: int) -> list[int]:
    """Every id, starting at the `part`-th of `parts` equal slices: runs of one cycle begin in
    different places of the same list and meet only where one has caught up with another."""
    cut = len(ids) * part // max(1, parts)
    return ids[cut:] + ids[:cut]


async def start_batches(
    due: dict[str, list[int]],
    *,
    batch_size: int,
    concurrency: int,
    limits: dict[str, int],
    active: dict[str, int],
    since: datetime,
    interval: float,
) -> list[Started]:
    """Runs of sync-batch on each marketplace's queue, up to its free slots (`limits` minus the
    `active` runs), each given every due shop of the marketplace and the cycle's start `since`:
    a run syncs, `concurrency` at a time, each shop not synced since then whose lease is free, so
    the runs of a cycle share its shops; then it stays for KEEP_PULLING_INTERVALS (+ its place)
    `interval`s, syncing them as they fall due again. Not waited for."""
    from prefect.deployments import run_deployment

    started: list[Started] = []
    for marketplace in sorted(due):
        ids = due[marketplace]
        queue = queue_name(marketplace)
        free = limits.get(marketplace, 1) - active.get(queue, 0)
        count = runs_to_start(len(ids), batch_size=batch_size, free=free)
        for part in range(count):
            parameters: dict[str, Any] = {
                "shop_ids": rotated(ids, part, count),
                "concurrency": concurrency,
                "since": since,
                "stay_seconds": (KEEP_PULLING_INTERVALS + part) * interval,
            }
            run = await run_deployment(
                BATCH_DEPLOYMENT,
                parameters=parameters,
                timeout=0,
                work_queue_name=queue,
                tags=["sellerpulse", "sync", marketplace],
            )
            started.append(Started(marketplace, str(run.id), len(ids)))
    return started
