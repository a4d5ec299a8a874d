"""Worker processes for tests/storage/test_ratelimit_workers.py, and `started_together`,
which starts such workers (benchmarks/ratelimit's too) and releases them at once.

    python -m tests.storage.ratelimit_worker reserve DB_URL SECRET CREDENTIAL RATE BURST COUNT
    python -m tests.storage.ratelimit_worker sandbox BACKEND[,BACKEND...] SECRET SANDBOX_URL WB_TOKEN RATE BURST COUNT

For each phase: prints "ready", waits for a line on stdin (the start signal, so that every
worker starts together), does its work and prints one JSON line.

- reserve (one phase): COUNT reservations on one bucket, no waiting; `starts`: when each
  may start (the database server's clock, epoch seconds).
- sandbox (a phase per BACKEND: a database URL, or `memory` for buckets in this process):
  COUNT WB statistics order reads (one request each, `flag=1`) over HTTP; `ok` and
  `rate_limited` counts.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from connectors.errors import RateLimited
from connectors.http import RetryPolicy, Timeouts
from connectors.ratelimit import BucketBackend, BucketRegistry, Rate, RateLimits
from connectors.wildberries import WbUrls, WildberriesClient
from storage.ratelimit import PgBucketBackend, limiter_engine

WB_HOSTS = ("wb-statistics", "wb-analytics", "wb-feedbacks", "wb-content", "wb-marketplace")  # WbUrls' order


def wait_for_start() -> None:
    """The worker's side of `started_together`."""
    print("ready", flush=True)
    sys.stdin.readline()


@contextmanager
def started_together(module: str, args: list[list[str]]) -> Iterator[Callable[[], list[dict]]]:
    """`python -m module` once per argument list; yields `phase()`: wait until every worker
    is ready, release them together, collect one JSON line from each."""
    root = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", module, *a], cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for a in args
    ]

    def phase() -> list[dict]:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready", f"a {module} worker failed"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        return [json.loads(p.stdout.readline()) for p in procs]  # type: ignore[union-attr]

    try:
        yield phase
        for p in procs:
            assert p.wait(timeout=60) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def reserve(url: str, secret: str, credential: str, rate: float, burst: int, count: int) -> dict[str, object]:
    backend = PgBucketBackend(limiter_engine(url, pool_size=1), secret)
    bucket = backend.bucket(credential, "test", Rate(rate, burst))
    wait_for_start()
    starts = [bucket.reserve().start for _ in range(count)]
    backend.dispose()
    return {"starts": starts}


async def read_orders(backend: BucketBackend, base: str, token: str, rate: float, burst: int, count: int) -> dict:
    urls = WbUrls(*(f"{base}/{host}" for host in WB_HOSTS))
    limits = RateLimits(wb_statistics=Rate(rate, burst))
    ok = limited = 0
    # One try per read: a 429 is counted, not retried (the sandbox counts it as well).
    async with WildberriesClient(
        urls, limits=limits, registry=backend, retry=RetryPolicy(attempts=1), timeouts=Timeouts(connect=5, read=10)
    ) as wb:
        wait_for_start()
        for _ in range(count):
            try:
                await wb.orders_for_day(token, date(2026, 11, 20))
                ok += 1
            except RateLimited:
                limited += 1
    return {"ok": ok, "rate_limited": limited}


def main(argv: list[str]) -> None:
    mode, *args = argv
    if mode == "reserve":
        url, secret, credential, rate, burst, count = args
        result = reserve(url, secret, credential, float(rate), int(burst), int(count))
        print(json.dumps(result), flush=True)
    elif mode == "sandbox":
        urls, secret, base, token, rate, burst, count = args
        for url in urls.split(","):
            backend: BucketBackend = BucketRegistry() if url == "memory" else PgBucketBackend.for_url(url, secret)
            result = asyncio.run(read_orders(backend, base, token, float(rate), int(burst), int(count)))
            print(json.dumps(result), flush=True)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
