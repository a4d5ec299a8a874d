"""Several real worker processes sharing one bucket in PostgreSQL.

1. On the limiter's own timeline: every start time the row promised, from all workers
   together, respects the rate and the burst (checked over every window), with no slot lost.
2. On the wire: workers read WB statistics from a sandbox on a port, whose buckets refuse
   any request that comes too early and count it. Shared buckets: zero refusals. The same
   workers with per-process buckets: refusals (the defect this fixes).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from connectors.ratelimit import Rate
from tests.storage.ratelimit_worker import started_together

ROOT = Path(__file__).resolve().parents[2]
SECRET = secrets.token_hex(16)  # the install's key for bucket names: a fresh one per run
SANDBOX_OPTIONS = "--scenario tiny --speed 1 --rate-limit-scale 1200 --start 2026-11-23T09:00:00+00:00"


def workers(args: list[list[str]]) -> AbstractContextManager[Callable[[], list[dict]]]:
    return started_together("tests.storage.ratelimit_worker", args)


def test_workers_sharing_a_bucket_get_start_times_that_respect_rate_and_burst(engine: Engine, database_url: str):
    n, count, rate, burst = 3, 40, 20.0, 5
    credential = f"client-id-{uuid.uuid4().hex}"
    args = ["reserve", database_url, SECRET, credential, str(rate), str(burst), str(count)]
    with workers([args] * n) as phase:
        results = phase()
    starts = [s for r in results for s in r["starts"]]
    assert len(starts) == n * count
    # Exact but for float epoch seconds (~1e9 s: 2e-7 s apart at best): 1e-4 of a token is 5 us.
    assert Rate(rate, burst).excess(starts) <= 1e-4
    # Tight as well as safe: the workers asked faster than the rate, so after the burst
    # every slot went to someone, back to back.
    assert max(starts) - min(starts) == pytest.approx((len(starts) - burst) / rate, abs=1e-3)


@pytest.fixture
def sandbox_url(tmp_path: Path) -> Iterator[str]:
    """The sandbox on a port, clock running, statistics limits x1200: orders 20/s, burst 10."""
    port = 20000 + os.getpid() % 5000
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", str(port), *SANDBOX_OPTIONS.split()],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                httpx.get(f"{url}/_sandbox/info", timeout=2).raise_for_status()
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "sandbox did not come up"
                time.sleep(0.1)  # polling a server that is starting up, not waiting for a result
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_workers_on_one_token_cause_no_429_at_the_sandbox(engine: Engine, database_url: str, sandbox_url: str):
    token = httpx.get(f"{sandbox_url}/_sandbox/credentials").json()["WB_TOKEN_WB1"]
    # Each worker alone stays under the sandbox's 20/s; three together would triple it.
    n, count, rate, burst = 3, 15, 16.0, 2
    # Phase 1: buckets in PostgreSQL. Phase 2: the same workers, each with buckets of its own.
    args = ["sandbox", f"{database_url},memory", SECRET, sandbox_url, token, str(rate), str(burst), str(count)]

    def reports(phase: Callable[[], list[dict]]) -> tuple[list[dict], dict]:
        httpx.put(f"{sandbox_url}/_sandbox/rate-limits", json={"enabled": True}).raise_for_status()  # fresh
        results = phase()
        return results, httpx.get(f"{sandbox_url}/_sandbox/rate-limits").json()

    with workers([args] * n) as phase:
        shared, shared_report = reports(phase)
        alone, alone_report = reports(phase)
    assert shared_report["refused"] == 0, shared_report
    assert sum(r["ok"] for r in shared) == n * count
    # Per-process buckets (the defect): together the workers break the limit.
    assert alone_report["refused"] > 0
    assert sum(r["rate_limited"] for r in alone) == alone_report["refused"]
