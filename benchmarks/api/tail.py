"""Where the mixed load's slowest requests spend their time (issue 12's p99): a diagnosis.

    BENCH_DATABASE_URL=... uv run python -m benchmarks.api.tail [--duration 15] [--bots 40]

Same fill, server (2 workers), generator (wrk, mixed.lua) and sync writer as
`python -m benchmarks.api`'s mixed runs, with the app wrapped by benchmarks.api.timed: every
request timed inside its worker, the event loop's late wake-ups, garbage collections; and,
meanwhile, what the API's PostgreSQL backends wait on (pg_stat_activity sampled every 10 ms).
Prints, for the measured run: wrk's figures; per kind of request, its latency inside the
worker and the CPU of its work; which kinds make up the slowest 1%; how often and how long
the loops were blocked, and by what kind of request running then; and the wait events.
Latencies here carry the probe's cost (a few percent of CPU): compare within the run.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
from sqlalchemy import create_engine

from api.app import API_APPLICATION_NAME
from api.serving import served_api
from benchmarks.api.fill import fill
from benchmarks.api.run import WARM_UP_SECONDS, database, run_wrk, sync_writer
from storage import apikeys, migrate, scratch
from storage.db import session_scope

KINDS = ("poll", "ack", "batch", "dashboard", "orders", "other")


@contextlib.contextmanager
def wait_sampler(url: str, every: float = 0.01) -> Iterator[Counter[str]]:
    """Counts, every `every` seconds, what each active API backend waits on ('running' if nothing)."""
    seen: Counter[str] = Counter()
    stop = threading.Event()
    sql = (
        "SELECT coalesce(wait_event_type || ':' || wait_event, 'running'), left(query, 40) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = %s AND state = 'active'"
    )

    def sample() -> None:
        with psycopg.connect(scratch.libpq_url(url), autocommit=True) as conn:
            while not stop.wait(every):
                seen["(samples)"] += 1
                for wait, query in conn.execute(sql, (API_APPLICATION_NAME,)):
                    seen[wait] += 1
                    if not wait.startswith(("running", "Client:ClientRead")):
                        seen[f"{wait} <- {' '.join(query.split())}"] += 1

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def load_workers(directory: Path, t0: float, t1: float) -> list[dict[str, Any]]:
    workers = []
    for path in sorted(directory.glob("worker-*.json")):
        doc = orjson.loads(path.read_bytes())
        doc["requests"] = [r for r in doc["requests"] if t0 <= r[1] and r[2] <= t1]
        doc["late"] = [x for x in doc["late"] if t0 <= x[0] <= t1]
        doc["gcs"] = [x for x in doc["gcs"] if t0 <= x[0] <= t1]
        workers.append(doc)
    return workers


def analyse(workers: list[dict[str, Any]], seconds: float) -> None:
    every = [(w["pid"], *r) for w in workers for r in w["requests"]]
    if not every:
        print("no requests recorded")
        return
    ms = [1000 * (r[3] - r[2]) for r in every]
    print(f"inside the workers: {len(every):,} requests, p50 {pct(ms, 50):.1f} ms, p99 {pct(ms, 99):.1f} ms")
    print("  kind       share    p50     p90     p99     max   | work: wall p50/p99   CPU mean | routes")
    for kind in KINDS:
        mine = [r for r in every if r[1] == kind]
        if not mine:
            continue
        lat = [1000 * (r[3] - r[2]) for r in mine]
        wall = [1000 * r[4] for r in mine if r[4] is not None]
        cpu = [1000 * r[5] for r in mine if r[5] is not None]
        share, mean_cpu, routes = len(mine) / len(every), statistics.fmean(cpu) if cpu else 0, sum(r[6] for r in mine)
        print(
            f"  {kind:<9} {share:>5.1%} {pct(lat, 50):>7.1f} {pct(lat, 90):>7.1f} {pct(lat, 99):>7.1f} "
            f"{max(lat):>7.1f} | {pct(wall, 50):>7.2f} {pct(wall, 99):>7.2f}  {mean_cpu:>7.2f} | {routes}"
        )
    cut = pct(ms, 99)
    slow = [r for r, m in zip(every, ms, strict=True) if m >= cut]
    kinds = Counter(r[1] for r in slow)
    print(f"  slowest 1% (>= {cut:.1f} ms, {len(slow)}): " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()))
    _stalls(workers, every, slow, seconds)


def _stalls(
    workers: list[dict[str, Any]], every: list[tuple[Any, ...]], slow: list[tuple[Any, ...]], seconds: float
) -> None:
    late = [(w["pid"], when, how) for w in workers for when, how in w["late"]]
    lateness = [1000 * how for _, _, how in late]
    for bound in (2, 10, 50):
        n = sum(1 for x in lateness if x > bound)
        print(f"  event loop woke > {bound} ms late: {n} times ({n / seconds / len(workers):.1f}/s a worker)")
    if lateness:
        share = sum(lateness) / 1000 / seconds / len(workers)
        print(f"    late in all: {share:.1%} of each worker's time, max {max(lateness):.1f} ms")
    # What ran in the same worker during its long stalls (> 10 ms): the kinds of request in flight.
    busy: Counter[str] = Counter()
    for pid, when, how in late:
        if how > 0.010:
            for r in every:
                if r[0] == pid and r[2] < when and r[3] > when - how:
                    busy[r[1]] += 1
    if busy:
        print(
            "    requests in flight in a worker during its stalls > 10 ms: "
            + ", ".join(f"{k} {n}" for k, n in busy.most_common())
        )
    in_stall = sum(1 for r in slow if any(p == r[0] and w - h < r[3] and w > r[2] and h > 0.010 for p, w, h in late))
    print(f"    slowest 1% overlapping a stall > 10 ms of their worker: {in_stall} of {len(slow)}")
    gcs = [(g, s) for w in workers for _, g, s in w["gcs"]]
    for gen in (0, 1, 2):
        mine = [1000 * s for g, s in gcs if g == gen]
        if mine:
            print(f"  gc generation {gen}: {len(mine)} collections, {sum(mine):.0f} ms in all, max {max(mine):.1f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.api.tail", description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--shops", type=int, default=500)
    parser.add_argument("--notifications", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--pending", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--bots", type=int, default=40)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--only", choices=("poll", "ack", "batch", "dashboard", "orders"), help="one kind alone")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("benchmarks.api.tail needs wrk: apt-get install wrk", file=sys.stderr)
        return 2
    with database() as url, tempfile.TemporaryDirectory(prefix="sp-tail-") as tmp:
        engine = create_engine(url)
        migrate.upgrade(engine)
        fill(scratch.libpq_url(url), people=args.people, shops=args.shops, notifications=args.notifications,
             pending=args.pending, orders=args.orders)  # fmt: skip
        with session_scope(engine) as session:
            key = apikeys.create_key(session, name="bench").secret
        engine.dispose()
        env = {"SP_PEOPLE": str(args.people), "SP_SHOPS": str(args.shops)}
        if args.only:
            env["SP_ONLY"] = args.only
        timing = Path(tmp) / "timing"
        timing.mkdir()
        factory = "benchmarks.api.timed:create_app"
        with served_api(
            url, Path(tmp), workers=args.workers, env={"SP_TIMING_DIR": str(timing)}, factory=factory
        ) as served:

            def mixed(seconds: int) -> dict[str, float]:
                with sync_writer(url, args.shops):
                    return run_wrk(served.url, key, script="mixed.lua", env=env, concurrency=args.bots,
                                   duration=seconds, threads=2)  # fmt: skip

            mixed(WARM_UP_SECONDS)
            with wait_sampler(url) as waits:
                t0 = time.time()
                result = mixed(args.duration)
                t1 = time.time()
        print(
            f"wrk: {result['rps']:,.0f} requests/s, p50 {result['p50_ms']:.1f} ms, p90 {result['p90_ms']:.1f} ms, "
            f"p99 {result['p99_ms']:.1f} ms, >= 500: {result['s5xx']}"
        )
        analyse(load_workers(timing, t0, t1), t1 - t0)
        samples = waits.pop("(samples)", 0)
        print(f"PostgreSQL, API backends active per sample ({samples} samples every 10 ms):")
        for wait, n in waits.most_common(14):
            print(f"  {n / max(1, samples):6.3f}  {wait}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
