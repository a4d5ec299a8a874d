"""The work pool of a worker install: a process pool with one work queue per marketplace.

`sellerpulse prefect-setup` (and `sellerpulse cluster`) make them exist as configured: the
pool (`PREFECT_WORK_POOL`, type process) and the queues `wb` and `allegro` with their
concurrency limits (`SYNC_QUEUE_LIMIT_WB`, `SYNC_QUEUE_LIMIT_ALLEGRO`): how many sync-batch
runs of each marketplace run at once over every worker (flows.fanout). The pool's `default`
queue, with no limit, takes every other run (sync-all, sync-shop, backfills, token refresh).
Idempotent: run it again after changing a limit.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from flows.fanout import MARKETPLACES, queue_name
from sellerpulse.settings import Settings


@dataclass(frozen=True)
class QueueLimit:
    name: str
    limit: int


def queue_limits(settings: Settings) -> list[QueueLimit]:
    limits = {"wb": settings.sync_queue_limit_wb, "allegro": settings.sync_queue_limit_allegro}
    return [QueueLimit(queue_name(m), limits[m]) for m in MARKETPLACES]


async def ensure_work_pool(settings: Settings) -> list[QueueLimit]:
    """Create the pool and its marketplace queues if missing; set the queues' limits."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.workers.process import ProcessWorker

    pool = settings.prefect_work_pool
    wanted = queue_limits(settings)
    async with get_client() as client:
        template = ProcessWorker.get_default_base_job_template()
        with contextlib.suppress(ObjectAlreadyExists):  # an existing pool is kept as it is
            await client.create_work_pool(WorkPoolCreate(name=pool, type="process", base_job_template=template))
        for queue in wanted:
            try:
                found = await client.read_work_queue_by_name(queue.name, work_pool_name=pool)
            except ObjectNotFound:
                await client.create_work_queue(queue.name, work_pool_name=pool, concurrency_limit=queue.limit)
                continue
            if found.concurrency_limit != queue.limit:
                await client.update_work_queue(found.id, concurrency_limit=queue.limit)
    return wanted
