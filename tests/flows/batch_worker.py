"""A worker as a process, for tests/flows/test_batch_workers.py: each line on stdin is the
parameters of a sync-batch flow run (`shop_ids`, `concurrency`, `since`: what sync-all gives a
batch), run by the flow's own body (`flows.sync.sync_batch`, as a worker's flow-run process
runs it) without Prefect's server; each answer a JSON line on stdout.

`python -m tests.flows.batch_worker`: prints `ready` once imported (Prefect and the app take
seconds: the test starts a cycle on every worker at once), then serves batches until stdin
ends. Settings come from the environment as for any sellerpulse process: DATABASE_URL, the
sandbox's URLs, MARKETPLACE_RATE_SCALE, SYNC_LEASE_SECONDS.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from typing import Any

import anyio

from flows.sync import sync_batch


async def run_batch(params: dict[str, Any]) -> dict[str, Any]:
    since = datetime.fromisoformat(params["since"])
    try:
        # stay_seconds=0: one cycle per line (the test says when the next one starts).
        results = await sync_batch.fn(params["shop_ids"], params["concurrency"], since, stay_seconds=0)
    except RuntimeError as exc:  # some shop failed: the test shows which
        return {"error": str(exc)}
    return {"results": results}


async def main() -> None:
    print("ready", flush=True)
    while line := await anyio.to_thread.run_sync(sys.stdin.readline):
        print(json.dumps(await run_batch(json.loads(line))), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
