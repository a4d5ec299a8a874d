"""What a rate-limiter check costs, and whether workers sharing one bucket keep to its rate.

    uv run python -m benchmarks.ratelimit [--checks 2000] [--workers 1,2,4] [--seconds 5]
                                          [--backends memory,postgres,prefect-gcl]

PostgreSQL: a fresh, migrated database on BENCH_DATABASE_URL / TEST_DATABASE_URL /
DATABASE_URL (else an embedded pgserver). Prefect: `prefect server start --no-services` on
a second fresh database of the same server (SQLite if that server has no TCP host), the
limits created with slot decay. Three parts:

1. cost: one process takes `--checks` tokens one after another from a bucket that never
   makes it wait; time per check (mean, p50, p99) and its ratio to the in-process bucket.
   PostgreSQL twice: as the clients call it (`acquire`: a worker thread, one UPDATE) and
   the UPDATE alone in the caller's thread; plus the database backend's CPU per check, and
   the UPDATE with synchronous commit (what the limiter's engine switches off).
2. shared: N processes take tokens for `--seconds` from ONE bucket at Allegro's limit
   (9000/min = 150/s, burst 150). Checks against the run's budget (burst + rate x the
   run's length: 1.00 = all of it used, no more), and the worst window: the most checks in
   any interval beyond `burst + rate x length` (0 = the limit held throughout). In-process
   buckets are one per process, so N of them allow N times the limit.
3. ceiling: the same with a bucket that never waits: checks/s one bucket sustains.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from benchmarks.ratelimit.backends import KINDS, SECRET, open_backend
from connectors.ratelimit import Bucket, Rate
from sellerpulse.processes import stop
from storage import migrate, scratch
from storage.ratelimit import PgBucket, PgBucketBackend
from tests.storage.ratelimit_worker import started_together

ALLEGRO = Rate.per_minute(9000, 150)
NEVER_WAITS = Rate(1e9, 10**9)


# -- 1. cost of one check -----------------------------------------------------------------


async def time_checks(bucket: Bucket, n: int) -> list[float]:
    for _ in range(min(200, n)):  # warm: connections, prepared statements, imports
        await bucket.acquire()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        await bucket.acquire()
        out.append(time.perf_counter() - start)
    return out


def time_reserves(bucket: PgBucket, n: int) -> list[float]:
    for _ in range(min(200, n)):
        bucket.reserve()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        bucket.reserve()
        out.append(time.perf_counter() - start)
    return out


def backend_cpu(db_url: str) -> Callable[[], float]:
    """CPU seconds used so far by the database backends serving the limiter's connections."""
    import psutil

    admin = create_engine(db_url)

    def read() -> float:
        with admin.connect() as conn:
            pids = conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE application_name = 'sellerpulse-ratelimit'")
            ).scalars()
            total = 0.0
            for pid in pids:
                try:
                    cpu = psutil.Process(pid).cpu_times()
                    total += cpu.user + cpu.system
                except psutil.Error:  # not on this machine, or gone
                    pass
            return total

    return read


def cost(kinds: list[str], db_url: str, checks: int) -> list[tuple[str, list[float], float | None]]:
    rows: list[tuple[str, list[float], float | None]] = []
    for kind in kinds:
        backend = open_backend(kind, db_url)
        bucket = backend.bucket(f"cost-{uuid.uuid4().hex}", "allegro_api", NEVER_WAITS)
        if kind != "postgres":
            rows.append((kind, asyncio.run(time_checks(bucket, checks)), None))
            continue
        assert isinstance(bucket, PgBucket)
        cpu = backend_cpu(db_url)
        bucket.reserve()  # connect, so that the backend is seen
        before = cpu()
        rows.append(("postgres (acquire: thread + UPDATE)", asyncio.run(time_checks(bucket, checks)), None))
        rows.append(("postgres (UPDATE in the caller's thread)", time_reserves(bucket, checks), None))
        server = (cpu() - before) / (2 * (checks + min(200, checks)))
        rows[-2:] = [(label, times, server) for label, times, _ in rows[-2:]]
        rows.append(("postgres, synchronous commit (not used)", time_reserves(synchronous(db_url), checks), None))
    return rows


def synchronous(db_url: str) -> PgBucket:
    """The same bucket on an engine whose commits wait for the WAL flush (PostgreSQL's default)."""
    engine = create_engine(db_url, isolation_level="AUTOCOMMIT", pool_size=1)
    return PgBucketBackend(engine, SECRET).bucket(f"sync-{uuid.uuid4().hex}", "allegro_api", NEVER_WAITS)


def print_cost(rows: list[tuple[str, list[float], float | None]]) -> None:
    base = statistics.fmean(rows[0][1]), statistics.median(rows[0][1])
    print("\n| backend | mean us | p50 us | p99 us | mean / in-process | p50 / in-process | DB CPU us/check |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, times, server in rows:
        mean, p50 = statistics.fmean(times), statistics.median(times)
        p99 = statistics.quantiles(times, n=100)[98]
        db = f"{server * 1e6:.0f}" if server is not None else ""
        print(
            f"| {label} | {mean * 1e6:.1f} | {p50 * 1e6:.1f} | {p99 * 1e6:.1f} "
            f"| {mean / base[0]:,.0f} | {p50 / base[1]:,.0f} | {db} |"
        )


# -- 2./3. processes sharing one bucket ------------------------------------------------------


def run_workers(kind: str, db_url: str, n: int, rate: Rate, seconds: float) -> list[float]:
    credential = f"shared-{uuid.uuid4().hex}"
    open_backend(kind, db_url).bucket(credential, "allegro_api", rate)  # created once, not raced
    args = [kind, db_url, credential, str(rate.per_second), str(rate.burst), str(seconds)]
    with started_together("benchmarks.ratelimit.worker", [args] * n) as phase:
        return sorted(g for result in phase() for g in result["grants"])


def shared(kinds: list[str], db_url: str, counts: list[int], seconds: float, rate: Rate, label: str) -> None:
    limited = rate is ALLEGRO
    print(f"\n{label}: one bucket, {rate.per_second:g}/s, burst {rate.burst}, {seconds:g} s per run")
    print("| backend | workers | checks | checks/s | of the budget | worst window: checks over the limit |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind in kinds:
        for n in counts:
            grants = run_workers(kind, db_url, n, rate, seconds)
            span = max(grants[-1] - grants[0], 1e-9)
            extra = " | "
            if limited:  # the budget of the run: the burst, then the rate
                budget = rate.burst + rate.per_second * span
                extra = f"{len(grants) / budget:.2f} | {max(0.0, rate.excess(grants)):.0f}"
            print(f"| {kind} | {n} | {len(grants):,} | {len(grants) / span:,.0f} | {extra} |")


# -- setup ----------------------------------------------------------------------------------


@contextmanager
def prefect_server(server: str) -> Iterator[None]:
    """A Prefect server (API only) for the GCL runs; PREFECT_API_URL set for this process and its children."""
    port = 24000 + os.getpid() % 1000
    with tempfile.TemporaryDirectory() as home, scratch.fresh_database(server, "sp_bench_prefect") as url:
        env = {**os.environ, "PREFECT_HOME": home, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        parsed = make_url(url)
        if parsed.host:
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = parsed.set(drivername="postgresql+asyncpg").render_as_string(
                hide_password=False
            )
        print(f"Prefect server on {'PostgreSQL' if parsed.host else 'SQLite'}")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-services",
                "--no-ui",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        api = f"http://127.0.0.1:{port}/api"
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("prefect server did not start")
            time.sleep(0.2)  # polling a server that is starting up
        saved = os.environ.get("PREFECT_API_URL")
        os.environ["PREFECT_API_URL"] = api
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = saved
            stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checks", type=int, default=2000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--backends", default=",".join(KINDS))
    args = parser.parse_args()
    kinds = [k for k in args.backends.split(",") if k]
    counts = [int(n) for n in args.workers.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        server = scratch.server_url(Path(tmp), "BENCH_DATABASE_URL", "TEST_DATABASE_URL", "DATABASE_URL")
        with scratch.fresh_database(server, "sp_bench_rl") as db_url:
            engine = create_engine(db_url)
            migrate.upgrade(engine)
            engine.dispose()
            context: Any = prefect_server(server) if "prefect-gcl" in kinds else _nothing()
            with context:
                print_cost(cost(kinds, db_url, args.checks))
                shared(kinds, db_url, counts, args.seconds, ALLEGRO, "shared")
                shared(kinds, db_url, counts, min(args.seconds, 3.0), NEVER_WAITS, "ceiling")


@contextmanager
def _nothing() -> Iterator[None]:
    yield


if __name__ == "__main__":
    main()
