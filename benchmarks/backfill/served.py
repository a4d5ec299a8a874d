"""Served mode: the pipeline against the sandbox over HTTP with realistic latency, against a
plain fetch of the same pages with the same concurrency, in the same run.

Replayed responses cost nothing to fetch, so they cannot tell whether fetching and writing
overlap. Here the sandbox runs as its own process (`sellerpulse sandbox --latency ...`, rate
limits off, its clock frozen at the benchmark's start) and every page is a real round trip:

- fetch: the connector alone reads the very pages the pipeline reads (same client, same
  windows, same concurrency, same parsing), and drops them: the ceiling for the stream;
- pipeline: the Allegro backfill flow (or the WB orders stream), fetching, parsing,
  normalising, writing and committing into a fresh database.

    python -m benchmarks.backfill.served fetch|pipeline KIND SANDBOX_ENV_JSON   (one JSON line)

Each step runs in a fresh process (its peak RSS is its own).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from typing import Any

from benchmarks.backfill import run
from connectors.ratelimit import RateLimits
from sellerpulse.processes import stop

# 150 ms: the real Allegro API's typical answer to a listing page (and to the token host);
# WB statistics take longer for a large page (the sandbox's own generation comes on top).
DEFAULT_LATENCY = "allegro-api=150,allegro-auth=150,wb-statistics=500"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def sandbox(scenario: str, latency: str, *, cache: bool = True) -> Iterator[dict[str, str]]:
    """`sellerpulse sandbox` in a process of its own; yields the settings it printed.

    `cache`: `--cache-responses` (sandbox.response_cache): a body asked for again is answered
    with the bytes generated the first time, so after an untimed warm-up read the timed steps
    do not pay for the stand-in's generation on our cores (the real host's CPU is not ours)."""
    port = _free_port()
    cmd = [sys.executable, "-m", "sandbox", "--port", str(port), "--scenario", scenario, "--speed", "0"]
    cmd += ["--start", run.START.isoformat(), "--no-rate-limits", "--latency", latency]
    cmd += ["--cache-responses"] if cache else []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        env: dict[str, str] = {}
        assert proc.stdout is not None
        while "ALLEGRO_REFRESH_TOKEN_ALLEGRO1" not in env:
            key, _, value = proc.stdout.readline().strip().partition("=")
            if not key:
                raise RuntimeError("the sandbox exited before it served")
            env[key] = value
        _wait_up(f"http://127.0.0.1:{port}/")
        env["SANDBOX_PID"] = str(proc.pid)
        env["SANDBOX_URL"] = f"http://127.0.0.1:{port}"
        yield env
    finally:
        stop(proc)


def _wait_up(url: str) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the sandbox did not come up")
        time.sleep(0.2)


def cache_report(sandbox_env: dict[str, str]) -> dict[str, int]:
    """The sandbox's response-cache counters (hits, misses, stored bytes)."""
    import httpx

    return httpx.get(f"{sandbox_env['SANDBOX_URL']}/_sandbox/response-cache", timeout=10).json()


def speed_probe() -> float:
    """CPU microseconds of one fixed piece of pure Python (the sandbox's row hash): this machine's
    speed now. CPU seconds here are not load-free: a busy host (other VMs, other helpers) makes
    the same code cost more of them (1.7 against 3.2 us seen on one evening), so each size
    reports the probe next to its CPU seconds."""
    from sandbox.hashing import h64

    started = time.process_time()
    for i in range(100_000):
        h64(1, 2, i, 3)
    return (time.process_time() - started) * 10


def _environment(database_url: str, sandbox_env: dict[str, str]) -> None:
    run._environment(database_url)
    os.environ.update({k: v for k, v in sandbox_env.items() if k.endswith("_URL") or k.startswith("ALLEGRO_CLIENT")})


def _token(kind: str, sandbox_env: dict[str, str]) -> dict[str, str]:
    if kind == "wb":
        return {"token": sandbox_env["WB_TOKEN_WB1"]}
    return {
        "access_token": sandbox_env["ALLEGRO_ACCESS_TOKEN_ALLEGRO1"],
        "refresh_token": sandbox_env["ALLEGRO_REFRESH_TOKEN_ALLEGRO1"],
    }


def allegro_range() -> tuple[datetime, datetime]:
    """What the pipeline's backfill reads (flows.backfill: whole days, UTC)."""
    since = (run.START - timedelta(days=run.ALLEGRO_DAYS)).date()
    return datetime.combine(since, clock_time.min, UTC), datetime.combine(run.START.date(), clock_time.max, UTC)


async def _plain_fetch(kind: str, sandbox_env: dict[str, str]) -> int:
    """The same pages the pipeline reads, through the same client, dropped as they come."""
    from connectors.parsing import gc_paused
    from sellerpulse.settings import get_settings
    from tasks.allegro_streams import HISTORY_WINDOW
    from tasks.clients import Clients
    from tasks.wb_streams import WB_HISTORY_DAYS

    settings = get_settings()
    rows = 0
    async with Clients.from_settings(settings, limits=RateLimits.unlimited(), now=lambda: run.START) as clients:
        with gc_paused():  # as the streams run (tasks.context.run_stream)
            if kind == "wb":
                since = run.START - timedelta(days=min(settings.initial_history_days, WB_HISTORY_DAYS))
                pages = clients.wb.iter_orders(
                    sandbox_env["WB_TOKEN_WB1"], since, full_page_rows=settings.wb_statistics_page_rows
                )
            else:
                start, end = allegro_range()
                token = sandbox_env["ALLEGRO_ACCESS_TOKEN_ALLEGRO1"]
                pages = clients.allegro.iter_checkout_form_pages(token, start, end, window=HISTORY_WINDOW)
            async for page in pages:
                rows += len(page.items)
                del page
    return rows


def step(name: str, kind: str, sandbox_env: dict[str, str]) -> dict[str, Any]:
    sandbox_pid = int(sandbox_env["SANDBOX_PID"])
    with run._database() as url:
        _environment(url, sandbox_env)
        shop_id = run._prepare(kind, _token(kind, sandbox_env)) if name == "pipeline" else 0
        import flows.backfill  # noqa: F401 - imports are not the pipeline's cost
        import flows.sync  # noqa: F401

        with run.PeakRss() as rss:
            clock = run.CpuClock(url)
            sandbox_cpu = run._proc_cpu(sandbox_pid)
            started = time.perf_counter()
            if name == "pipeline":
                rows = asyncio.run(run._pipeline(kind, shop_id, None))
            else:
                rows = asyncio.run(_plain_fetch(kind, sandbox_env))
            seconds = time.perf_counter() - started
            ours, server = clock.seconds()
            sandbox_cpu = run._proc_cpu(sandbox_pid) - sandbox_cpu
    return {
        "step": name,
        "kind": kind,
        "rows": rows,
        "seconds": seconds,
        "peak_rss_mb": rss.peak / 2**20,
        "cpu_s": {"python": ours, "postgres": server, "sandbox": sandbox_cpu},
    }


def main(argv: list[str]) -> int:
    name, kind, env_json = argv
    sys.stdout.write(json.dumps(step(name, kind, json.loads(env_json))) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
