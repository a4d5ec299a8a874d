"""sync-all on a work pool: per-marketplace batches of shops, started as runs of `sync-batch`.

With workers (prefect.yaml: `fan_out: true`), sync-all does no syncing itself. It picks the
shops that are due (active, not backed off: storage.backoff), leaves out those already waiting
in a batch nobody has started yet (so a slow cycle never piles up), splits the rest per
marketplace into batches of `sync_batch_size`, and starts each as a run of the `sync-batch`
deployment on the marketplace's own work queue (`wb`, `allegro`). Each queue has a concurrency
limit of its own (`sellerpulse prefect-setup`): WB's 1 request/min per token keeps WB batches
long, and they can fill only their own queue, never the slots Allegro's shops use.

Any worker runs any batch; two runs never sync one shop at once (the shop's lease,
storage.leases): a shop already being synced is skipped by the second. A batch whose worker
died is no obstacle: the next cycle puts its shops in new batches (only batches not yet
started are left out); their leases expire SYNC_LEASE_SECONDS after the worker's last renewal
(a shop still leased is skipped by that cycle, taken by the next), and the dead run records
are reaped (storage.reaping).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from storage.backoff import backed_off
from storage.models import Marketplace, Shop, ShopStatus

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


def batches(ids: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), max(1, size)):
        yield ids[start : start + size]


@dataclass(frozen=True)
class Started:
    marketplace: str
    flow_run_id: str
    shops: int


async def queued_shop_ids() -> set[int]:
    """Shops in a sync-batch run that no worker has started yet (Scheduled, Late, Pending)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    not_started = FlowRunFilterStateType(any_=[StateType.SCHEDULED, StateType.PENDING])
    waiting = FlowRunFilter(state=FlowRunFilterState(type=not_started))
    deployment = DeploymentFilter(name=DeploymentFilterName(any_=[BATCH_DEPLOYMENT.split("/")[1]]))
    found: set[int] = set()
    page = 200
    async with get_client() as client:
        offset = 0
        while True:
            runs = await client.read_flow_runs(
                flow_run_filter=waiting, deployment_filter=deployment, limit=page, offset=offset
            )
            for run in runs:
                found.update(int(i) for i in run.parameters.get("shop_ids", []))
            if len(runs) < page:
                return found
            offset += page


async def start_batches(
    due: dict[str, list[int]], *, batch_size: int, concurrency: int, exclude: set[int]
) -> list[Started]:
    """One run of sync-batch per batch, on its marketplace's queue; not waited for."""
    from prefect.deployments import run_deployment

    started: list[Started] = []
    for marketplace in sorted(due):
        ids = [i for i in due[marketplace] if i not in exclude]
        for batch in batches(ids, batch_size):
            parameters: dict[str, Any] = {"shop_ids": batch, "concurrency": concurrency}
            run = await run_deployment(
                BATCH_DEPLOYMENT,
                parameters=parameters,
                timeout=0,
                work_queue_name=queue_name(marketplace),
                tags=["sellerpulse", "sync", marketplace],
            )
            started.append(Started(marketplace, str(run.id), len(batch)))
    return started
