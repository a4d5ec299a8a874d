"""One worker process of `benchmarks.ratelimit`:

    python -m benchmarks.ratelimit.worker KIND DB_URL CREDENTIAL RATE BURST SECONDS

Opens the bucket, waits for the start (`tests.storage.ratelimit_worker.started_together`),
then takes tokens as fast as the bucket allows for SECONDS and prints one JSON line:
`grants`, the time each check returned (`time.monotonic()`: one clock for every process of
the machine on Linux), as a request would leave, late if its loop woke it late.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from benchmarks.ratelimit.backends import open_backend
from connectors.ratelimit import Bucket, Rate, RateLimits
from tests.storage.ratelimit_worker import wait_for_start


async def take_for(bucket: Bucket, seconds: float) -> list[float]:
    grants: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await bucket.acquire()
        grants.append(time.monotonic())
    return grants


def main(argv: list[str]) -> None:
    kind, db_url, credential, rate, burst, seconds = argv
    backend = open_backend(kind, db_url)
    # With the room for a late sender the product's clients plan with (RateLimits.for_category):
    # the grants are when acquire returned, as a request would leave.
    limit = Rate(float(rate), int(burst)).with_tolerance(RateLimits().send_tolerance)
    bucket = backend.bucket(credential, "allegro_api", limit)
    wait_for_start()
    grants = asyncio.run(take_for(bucket, float(seconds)))
    print(json.dumps({"grants": grants}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
