"""The deployments: which flows run on which schedule. `sellerpulse serve` serves them all from
one process; prefect.yaml declares the same ones for a Prefect server with workers.

Deployment names are `<flow>/<flow>` (e.g. `sync-shop/sync-shop`), the names the API and the
CLI use to start runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import Flow
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.schedules import Interval, Schedule

from flows.backfill import backfill
from flows.connect import connect_allegro
from flows.feed import read_wb_feeds
from flows.sync import sync_all, sync_shop
from flows.tokens import refresh_tokens
from sellerpulse.settings import Settings

# Overlapping scheduled runs would only queue up behind the per-shop leases: skip instead.
ONE_AT_A_TIME = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)


# When the first scheduled run starts after the deployments are served: soon, rather than a whole
# interval later (an operator starting the service, or the demo, expects a sync now), with
# room for the deployments to be registered and Prefect to schedule it.
FIRST_RUN_AFTER = timedelta(seconds=15)


def every(seconds: int, *, now: datetime | None = None) -> Schedule:
    """Every `seconds`, the first run FIRST_RUN_AFTER from now."""
    interval = timedelta(seconds=seconds)
    return Interval(interval, anchor_date=(now or datetime.now(UTC)) - interval + FIRST_RUN_AFTER)


def deployment_name(flow: Flow[..., Any]) -> str:
    return f"{flow.name}/{flow.name}"


async def build(settings: Settings) -> list[Any]:
    """RunnerDeployments for `prefect.aserve` (the flows are async: `ato_deployment`)."""
    return [
        await sync_all.ato_deployment(
            name=sync_all.name,
            schedule=every(settings.sync_interval_seconds),
            parameters={"concurrency": settings.sync_concurrency},
            concurrency_limit=ONE_AT_A_TIME,
            description="Sync every active shop (all streams), on a schedule.",
            tags=["sellerpulse", "sync"],
        ),
        await read_wb_feeds.ato_deployment(
            name=read_wb_feeds.name,
            schedule=every(settings.wb_feed_interval_seconds),
            parameters={"concurrency": settings.sync_concurrency},
            concurrency_limit=ONE_AT_A_TIME,
            description="Read the WB order feed of every active WB shop (real time), about once a minute.",
            tags=["sellerpulse", "sync", "wb"],
        ),
        await refresh_tokens.ato_deployment(
            name=refresh_tokens.name,
            schedule=every(settings.token_refresh_interval_seconds),
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
