"""The deployments: which flows run on which schedule. `sellerpulse serve` serves them all from
one process; prefect.yaml declares the same ones for a Prefect server with workers.

Deployment names are `<flow>/<flow>` (e.g. `sync-shop/sync-shop`), the names the API and the
CLI use to start runs.
"""

from __future__ import annotations

from typing import Any

from prefect import Flow
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

from flows.backfill import backfill
from flows.connect import connect_allegro
from flows.sync import sync_all, sync_shop
from flows.tokens import refresh_tokens
from sellerpulse.settings import Settings

# Overlapping scheduled runs would only queue up behind the per-shop locks: skip instead.
ONE_AT_A_TIME = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)


def deployment_name(flow: Flow[..., Any]) -> str:
    return f"{flow.name}/{flow.name}"


async def build(settings: Settings) -> list[Any]:
    """RunnerDeployments for `prefect.aserve` (the flows are async: `ato_deployment`)."""
    return [
        await sync_all.ato_deployment(
            name=sync_all.name,
            interval=settings.sync_interval_seconds,
            parameters={"concurrency": settings.sync_concurrency},
            concurrency_limit=ONE_AT_A_TIME,
            description="Sync every active shop (all streams), on a schedule.",
            tags=["sellerpulse", "sync"],
        ),
        await refresh_tokens.ato_deployment(
            name=refresh_tokens.name,
            interval=settings.token_refresh_interval_seconds,
            concurrency_limit=ONE_AT_A_TIME,
            description="Refresh Allegro tokens before they expire.",
            tags=["sellerpulse", "tokens"],
        ),
        await sync_shop.ato_deployment(
            name=sync_shop.name,
            description="Sync one shop now (started by the API or the CLI).",
            tags=["sellerpulse", "sync"],
        ),
        await backfill.ato_deployment(
            name=backfill.name,
            description="Read a shop's history between two dates, silently; re-run to resume.",
            tags=["sellerpulse", "backfill"],
        ),
        await connect_allegro.ato_deployment(
            name=connect_allegro.name,
            description="Connect an Allegro account through the device flow.",
            tags=["sellerpulse", "allegro"],
        ),
    ]
