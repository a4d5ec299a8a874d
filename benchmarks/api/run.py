"""Notification polling under load: the API on loopback, 64 concurrent pollers.

    uv run python -m benchmarks.api [--people 10000] [--shops 500] [--notifications 1000000]
                                    [--workers 2] [--concurrency 64] [--duration 20] [--repeat 3]

A fresh database (on DATABASE_URL's server, or an embedded one in a temporary directory)
is migrated and filled by COPY; `sellerpulse`'s app is served by uvicorn with several
workers; the load generator is `wrk` when installed (`apt-get install wrk`), else an async
httpx client in this process. Each request polls a random person (`GET /api/v1/notifications
?telegram_id=..&limit=50`, from their acknowledged cursor): rendered, grouped, filtered by
their settings, as the bot sees it. Prints requests/s, p50, p90 and p99 of each run, and
where the CPU went (per request: the API's workers, PostgreSQL's backends serving them, the
load generator; and how much other processes took meanwhile). Figures: README.md here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from api.app import API_APPLICATION_NAME
from benchmarks.api.cpu import CpuMeter, CpuUse, children
from benchmarks.api.fill import fill
from storage import apikeys, migrate, scratch
from storage.db import session_scope

HERE = Path(__file__).parent
TELEGRAM_BASE = 10_000_000
WARM_UP_SECONDS = 3


@contextlib.contextmanager
def database() -> Iterator[str]:
    """A fresh database: on BENCH_DATABASE_URL's or DATABASE_URL's server when set, else on an embedded one."""
    with tempfile.TemporaryDirectory(prefix="sp-bench-") as tmp:
        server = scratch.server_url(Path(tmp), "BENCH_DATABASE_URL", "DATABASE_URL")
        with scratch.fresh_database(server, "sp_bench") as url:
            yield url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(url: str, *, workers: int, port: int, data_dir: str) -> Iterator[tuple[str, int]]:
    """The API under uvicorn: yields its base URL and the pid of uvicorn's main process."""
    env = {**os.environ, "DATABASE_URL": url, "SELLERPULSE_DATA_DIR": data_dir, "SELLERPULSE_LOG_LEVEL": "WARNING"}
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "api.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/api/v1/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            time.sleep(0.2)
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run_wrk(base: str, key: str, *, people: int, concurrency: int, duration: int, threads: int) -> dict[str, float]:
    env = {**os.environ, "SP_KEY": key, "SP_PEOPLE": str(people)}
    cmd = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(concurrency),
        "-d",
        f"{duration}s",
        "--timeout",
        "5s",
        "-s",
        str(HERE / "poll.lua"),
        base,
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    fields = dict(kv.split("=") for kv in line.split()[1:])
    seconds = int(fields["duration_us"]) / 1e6
    return {
        "requests": int(fields["requests"]),
        "rps": int(fields["requests"]) / seconds,
        "p50_ms": int(fields["p50_us"]) / 1000,
        "p90_ms": int(fields["p90_us"]) / 1000,
        "p99_ms": int(fields["p99_us"]) / 1000,
        "errors": int(fields["errors"]) + int(fields["non2xx"]),
    }


async def run_httpx(base: str, key: str, *, people: int, concurrency: int, duration: int) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient, rng: random.Random) -> None:
        nonlocal errors
        while time.perf_counter() < stop:
            tid = TELEGRAM_BASE + rng.randint(1, people)
            t0 = time.perf_counter()
            r = await client.get("/api/v1/notifications", params={"telegram_id": tid, "limit": 50})
            latencies.append(time.perf_counter() - t0)
            errors += r.status_code != 200

    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client, random.Random(i)) for i in range(concurrency)))
        elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000

    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "errors": errors,
    }


def sample(base: str, key: str, people: int) -> float:
    """Average items per poll, so the figures say how much work a response carried."""
    total = 0
    with httpx.Client(base_url=base, headers={"X-API-Key": key}) as client:
        for i in range(1, 201):
            r = client.get("/api/v1/notifications", params={"telegram_id": TELEGRAM_BASE + 1 + (i * 37) % people})
            r.raise_for_status()
            total += len(r.json()["items"])
    return total / 200


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.api", description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--shops", type=int, default=500)
    parser.add_argument("--notifications", type=int, default=1_000_000)
    parser.add_argument("--pending", type=int, default=3, help="new notifications per shop after each cursor (max)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=int, default=20, help="seconds of load")
    parser.add_argument("--generator", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument("--repeat", type=int, default=3, help="load runs, one after the other, on the same fill")
    args = parser.parse_args(argv)

    with database() as url, tempfile.TemporaryDirectory(prefix="sp-bench-data-") as data_dir:
        engine = create_engine(url)
        migrate.upgrade(engine)
        t0 = time.perf_counter()
        fill(
            scratch.libpq_url(url),
            people=args.people,
            shops=args.shops,
            notifications=args.notifications,
            pending=args.pending,
        )
        print(
            f"filled {args.people:,} people, {args.shops:,} shops, {args.notifications:,} notifications "
            f"in {time.perf_counter() - t0:.1f} s (COPY)"
        )
        with session_scope(engine) as session:
            key = apikeys.create_key(session, name="bench").secret
        engine.dispose()
        with serve(url, workers=args.workers, port=free_port(), data_dir=data_dir) as (base, pid):
            per_poll = sample(base, key, args.people)
            idle_load = os.getloadavg()[0]  # what else this machine is running, before our load
            use_wrk = args.generator == "wrk" or (args.generator == "auto" and shutil.which("wrk"))

            def load(seconds: int) -> dict[str, float]:
                shape = dict(people=args.people, concurrency=args.concurrency, duration=seconds)
                if use_wrk:
                    return run_wrk(base, key, threads=min(4, os.cpu_count() or 1), **shape)
                return asyncio.run(run_httpx(base, key, **shape))

            # Every worker warm (its connection, prepared statement, caches) before measuring: a
            # single client's keep-alive connection only reaches one of them.
            load(WARM_UP_SECONDS)
            backends = partial(api_backends, url) if on_this_machine(url) else None
            runs = []
            for _ in range(args.repeat):
                with CpuMeter([pid, *children(pid)], backends) as meter:
                    result = load(args.duration)
                runs.append((result, meter.use))
    generator = "wrk" if use_wrk else "httpx"
    print(f"machine: {os.cpu_count()} CPUs, load average {idle_load:.1f} just before the runs (other processes)")
    print(
        f"poll: {args.workers} uvicorn workers, concurrency {args.concurrency}, {args.duration} s, {generator}, "
        f"{per_poll:.1f} items per response on average"
    )
    met = 0
    for i, (result, use) in enumerate(runs, 1):
        print(
            f"  run {i}: requests/s {result['rps']:,.0f}   p50 {result['p50_ms']:.1f} ms   "
            f"p90 {result['p90_ms']:.1f} ms   p99 {result['p99_ms']:.1f} ms   errors {result['errors']}   "
            f"({result['requests']:,} requests)"
        )
        if use is not None:
            print(f"         {cpu_line(use, result['requests'], generator)}")
        met += result["rps"] >= 1500 and result["p99_ms"] <= 50
    print(f"  target (>= 1,500 req/s, p99 <= 50 ms): met in {met} of {len(runs)} runs")
    return 0


def api_backends(url: str) -> list[int]:
    """PostgreSQL backends serving the API (its connections name themselves, see api.app)."""
    with psycopg.connect(scratch.libpq_url(url)) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
            (API_APPLICATION_NAME,),
        )
        return [pid for (pid,) in rows]


def on_this_machine(url: str) -> bool:
    """Whether the database server's processes are this machine's (their CPU is then ours to count)."""
    host = make_url(url).host
    return host in (None, "", "localhost", "127.0.0.1", "::1") or host.startswith("/")


def cpu_line(use: CpuUse, requests: int, generator: str) -> str:
    def ms(seconds: float) -> str:
        return f"{1000 * seconds / max(1, requests):.2f} ms"

    pg = f"PostgreSQL {ms(use.postgres)}" if use.postgres is not None else "PostgreSQL elsewhere"
    return (
        f"CPU per request: API {ms(use.api)}, {pg}, {generator} {ms(use.generator)}, "
        f"other processes meanwhile {use.others / use.seconds:.2f} of {os.cpu_count()} CPUs"
    )
