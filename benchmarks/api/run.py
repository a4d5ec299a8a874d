"""The bot API under load: the poll alone, then a mixed load, in one run on one fill.

    uv run python -m benchmarks.api [--people 10000] [--shops 500] [--notifications 1000000]
                                    [--workers 2] [--concurrency 64] [--bots 40] [--duration 20]
                                    [--repeat 3] [--kinds]

A fresh database (on BENCH_DATABASE_URL's or DATABASE_URL's server, or an embedded one in a
temporary directory) is migrated and filled by COPY; `sellerpulse`'s app is served by uvicorn
with several workers; the load generator is `wrk` (`apt-get install wrk`: its CPU per request
is a small fraction of the API's; a Python client's is several times the API's, and would
measure itself).

- poll: each request polls a random person (`GET /api/v1/notifications?telegram_id=..&limit=50`,
  from their acknowledged cursor): rendered, grouped, filtered by their settings, as the bot
  sees it; `--concurrency` connections.
- mixed: `--bots` connections polling and acking, batch polls, dashboards and order pages
  (mixed.lua), while a sync writes notifications (writer.py) at the same time.

Each poll-only run is followed by a mixed one (then, with --kinds, by each kind of the mixed
load alone), `--repeat` times: side by side, so a noisy machine weighs on both alike.
Prints requests/s, p50, p90, p99 and the responses >= 500 of each run, and where the CPU went
(per request: the API's workers, PostgreSQL's backends serving them, the load generator; how
much other processes took meanwhile). A run whose generator used more than a quarter of the
API's CPU per request is refused (its figures would be the generator's). Ends with the two
side by side: each mixed run against the poll-only run next to it, as ratios. Figures: README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
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
from api.serving import served_api
from benchmarks.api.cpu import CpuMeter, children
from benchmarks.api.fill import fill
from benchmarks.api.report import KINDS, Load, Run, report
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


def run_wrk(
    base: str, key: str, *, script: str, env: dict[str, str], concurrency: int, duration: int, threads: int
) -> dict[str, float]:
    env = {**os.environ, "SP_KEY": key, **env}
    cmd = ["wrk", "-t", str(threads), "-c", str(concurrency), "-d", f"{duration}s", "--timeout", "5s"]
    cmd += ["-s", str(HERE / script), base]
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
        # Responses >= 500 (mixed.lua counts them; poll.lua only non-2xx, all of them errors).
        "s5xx": int(fields.get("s5xx", fields["non2xx"])),
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


@contextlib.contextmanager
def sync_writer(url: str, shops: int) -> Iterator[subprocess.Popen[str]]:
    """benchmarks.api.writer in its own process: its CPU is not the generator's."""
    cmd = [sys.executable, "-m", "benchmarks.api.writer", url, "--shops", str(shops)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
        yield proc
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
        proc.written = int(out.split()[-1]) if "WRITTEN" in out else 0  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.api", description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--shops", type=int, default=500)
    parser.add_argument("--notifications", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=200, help="orders per shop (dashboards, order pages)")
    parser.add_argument("--pending", type=int, default=3, help="new notifications per shop after each cursor (max)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--concurrency", type=int, default=64, help="connections of the poll-only load")
    parser.add_argument("--bots", type=int, default=40, help="connections of the mixed load")
    parser.add_argument("--duration", type=int, default=20, help="seconds of load")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each load, on the same fill")
    parser.add_argument(
        "--kinds", action="store_true", help="also each kind of the mixed load alone (a run each): where it goes"
    )
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("benchmarks.api needs wrk as its load generator: apt-get install wrk", file=sys.stderr)
        return 2

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
            orders=args.orders,
        )
        print(
            f"filled {args.people:,} people, {args.shops:,} shops, {args.notifications:,} notifications, "
            f"{args.orders * args.shops:,} orders in {time.perf_counter() - t0:.1f} s (COPY)"
        )
        with session_scope(engine) as session:
            key = apikeys.create_key(session, name="bench").secret
        engine.dispose()
        loads = {
            "poll": Load("poll.lua", args.concurrency, {"SP_PEOPLE": str(args.people)}),
            "mixed": Load("mixed.lua", args.bots, {"SP_PEOPLE": str(args.people), "SP_SHOPS": str(args.shops)}),
        }
        if args.kinds:
            for kind in KINDS:
                loads[f"{kind} alone"] = Load("mixed.lua", args.bots, {**loads["mixed"].env, "SP_ONLY": kind})
        with served_api(url, Path(data_dir), workers=args.workers) as served:
            per_poll = sample(served.url, key, args.people)
            idle_load = os.getloadavg()[0]  # what else this machine is running, before our load
            backends = partial(api_backends, url) if on_this_machine(url) else None
            runs: dict[str, list[Run]] = {name: [] for name in loads}
            written = 0

            def measure(name: str, seconds: int) -> Run:
                nonlocal written
                load = loads[name]
                with contextlib.ExitStack() as stack:
                    writer = stack.enter_context(sync_writer(url, args.shops)) if name != "poll" else None
                    with CpuMeter([served.pid, *children(served.pid)], backends) as meter:
                        result = run_wrk(
                            served.url, key, script=load.script, env=load.env, concurrency=load.connections,
                            duration=seconds, threads=2,
                        )  # fmt: skip
                if writer is not None:
                    written += writer.written  # type: ignore[attr-defined]
                return result, meter.use

            # Every worker warm (its connection, prepared statements, caches) before measuring.
            for name in ("poll", "mixed"):
                measure(name, WARM_UP_SECONDS)
            # Side by side: each poll-only run next to a mixed one, so both see the same machine.
            for _ in range(args.repeat):
                for name in loads:
                    runs[name].append(measure(name, args.duration))
    print(f"machine: {os.cpu_count()} CPUs, load average {idle_load:.1f} just before the runs (other processes)")
    print(f"{args.workers} uvicorn workers, wrk, {args.duration} s a run, {per_poll:.1f} items per poll on average")
    refused = report(loads, runs, written)
    return 3 if refused else 0


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
