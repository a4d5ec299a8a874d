"""`sellerpulse serve`: every deployment on its schedule, served from this one process.

For a single machine. Many machines: a Prefect server, a process work pool and workers, with
the deployments of prefect.yaml (see deployments/README.md).

The runs it serves send heartbeats, and the server gets the automation that marks a run whose
process died as Crashed (flows/zombies.py), so a killed `serve` never blocks the next schedule.
"""

from __future__ import annotations

import asyncio
import contextlib

from prefect import aserve

from flows.deployments import build
from flows.prefect_server import prefect_server
from flows.zombies import ensure_zombie_automation, set_heartbeat
from sellerpulse.settings import Settings


async def serve_deployments(settings: Settings) -> None:
    set_heartbeat(settings)
    await ensure_zombie_automation(settings)
    await aserve(*(await build(settings)), print_starting_message=False)


def serve_forever(settings: Settings, *, port: int | None = None) -> int:
    with prefect_server(settings.sellerpulse_data_dir, port=port) as api_url:
        ui = api_url.removesuffix("/api")
        print(
            f"Prefect UI: {ui}  (deployments: sync-all every {settings.sync_interval_seconds} s, "
            f"read-wb-feeds every {settings.wb_feed_interval_seconds} s, "
            f"refresh-tokens every {settings.token_refresh_interval_seconds} s, backfill on demand)",
            flush=True,
        )
        print("Ctrl-C stops", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_deployments(settings))
    return 0
