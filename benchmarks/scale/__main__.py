"""Many shops on many workers: `sellerpulse cluster` against the sandbox with its rate limits ON.

    uv run python -m benchmarks.scale [--wb 1000] [--allegro 1000] [--workers 1,2,4]
                                      [--scale 6] [--cycles 3] [--batch-size 50]
                                      [--concurrency 50] [--queue-limit 8]

Scaled time, the ratios kept: the sandbox's clock runs `--scale` times faster, its buckets
refill `--scale` times faster (WB statistics: 1 request per sandbox minute), the clients'
limits are `--scale` times the documented ones (MARKETPLACE_RATE_SCALE) and sync-all runs
every 180 / scale real seconds: one sandbox "3-minute cycle". The `fleet` scenario's shops are
live (new orders, sales, reviews, stock changes keep coming).

Per worker count, on a fresh database (BENCH_DATABASE_URL / TEST_DATABASE_URL / DATABASE_URL):
the cluster starts (Prefect server on PostgreSQL, N process workers, the API, the bot), every
shop's first sync is waited for (warm-up, not measured), then `--cycles` cycles are measured:

- shop syncs per cycle: full syncs (every stream of the shop succeeded in one batch run) that
  ended in the window, divided by the cycles; target: every shop, every cycle;
- p95 sync interval: between consecutive full syncs of a shop, in sandbox seconds (target 180);
- violations: requests the sandbox refused with 429 by its rate limits (must be 0);
- PostgreSQL CPU per shop sync: CPU of the backends of sellerpulse's and Prefect's databases
  (sampled per backend pid) in the window, per full shop sync;
- efficiency: throughput with N workers / (N x throughput with 1);
- connections: the most connections open to sellerpulse's database at once (and how many of
  them were running a statement), sampled every second in the window: what the per-shop
  one-at-a-time lock costs the server (max_connections);
- batch start-up: per sync-batch run, from Pending (the worker starts its process) to its first
  shop's first stream, beside the time its shops' syncs took (first stream start to last end);
- the load average (1 min) at the window's start and end and its highest sample in between.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from benchmarks.scale.cpu import delta, sandbox_cpu, tree_cpu
from benchmarks.scale.fleet import add_shops
from benchmarks.scale.phases import startup_phases
from benchmarks.scale.report import print_tables
from storage import scratch

ROOT = Path(__file__).resolve().parents[2]
LIVE = {"wb": 5, "allegro": 4}  # streams per full sync (cards re-read hourly: counted when run)


@dataclass
class Result:
    workers: int
    shops: int
    cycles: int
    syncs: int
    shops_every_cycle: float
    p95_interval: float | None
    violations: int
    pg_cpu_ms: float | None
    startup_s: float
    conn_peak: int = 0
    conn_active_peak: int = 0
    prefect_conn_peak: int = 0
    batch_startup_s: float | None = None
    batch_sync_s: float | None = None
    batches: int = 0
    phases: dict[str, float] = field(default_factory=dict)  # median seconds per start-up phase
    phase_runs: int = 0
    cpu_parts: dict[str, float] = field(default_factory=dict)  # CPU seconds in the window per part
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)  # start, highest, end of the window
    warmed: int = 0  # shops whose first sync ended before the window


@dataclass
class Samples:
    """What the sampler saw: CPU seconds per backend pid (the highest: it only grows), the peak
    connections per database (open, and running a statement), the 1-min load averages."""

    cpu: dict[int, float]
    peak: dict[str, int]
    active_peak: dict[str, int]
    load: list[float]
    db_of: dict[int, str] = field(default_factory=dict)


def _cpu_sampler(url: str, databases: list[str], stop: threading.Event, seen: Samples) -> None:
    engine = create_engine(url)
    while not stop.is_set():
        with contextlib.suppress(Exception), engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT pid, datname, state FROM pg_stat_activity "
                    "WHERE datname = ANY(:d) AND pid <> pg_backend_pid()"
                ),
                {"d": databases},
            ).all()
            for name in databases:
                mine = [r for r in rows if r.datname == name]
                seen.peak[name] = max(seen.peak.get(name, 0), len(mine))
                busy = sum(1 for r in mine if r.state not in ("idle", None))
                seen.active_peak[name] = max(seen.active_peak.get(name, 0), busy)
            for row in rows:
                with contextlib.suppress(psutil.Error):
                    cpu = psutil.Process(row.pid).cpu_times()
                    seen.cpu[row.pid] = max(seen.cpu.get(row.pid, 0.0), cpu.user + cpu.system)
                    seen.db_of[row.pid] = row.datname
        seen.load.append(os.getloadavg()[0])
        stop.wait(1.0)
    engine.dispose()


def _batch_timing(db_url: str, prefect_url: str, t0: datetime, t1: datetime) -> tuple[float | None, float | None, int]:
    """Median seconds from a sync-batch run's Pending (its process being started) to its first
    stream, and from there to its last stream's end, over the batches whose first stream began in
    the window; and how many they were."""
    prefect = create_engine(prefect_url)
    with prefect.connect() as conn:
        pending = dict(
            conn.execute(
                text(
                    "SELECT s.flow_run_id::text, min(s.timestamp) FROM flow_run_state s JOIN flow_run f "
                    "ON f.id = s.flow_run_id WHERE s.type = 'PENDING' AND f.name LIKE 'sync-batch-%' "
                    "GROUP BY s.flow_run_id"
                )
            ).all()
        )
    prefect.dispose()
    engine = create_engine(db_url)
    with engine.connect() as conn:
        spans = conn.execute(
            text("SELECT flow_run_id, min(started_at), max(finished_at) FROM sync_runs GROUP BY flow_run_id")
        ).all()
    engine.dispose()
    startup, sync = [], []
    for run_id, first, last in spans:
        if run_id in pending and first is not None and t0 <= first <= t1:
            startup.append((first - pending[run_id]).total_seconds())
            if last is not None:
                sync.append((last - first).total_seconds())
    med = statistics.median
    return (med(startup) if startup else None, med(sync) if sync else None, len(startup))


def _full_syncs(db_url: str) -> list[tuple[int, datetime]]:
    """(shop, when it ended) per full sync: every stream of the shop succeeded under one lease
    (one sync: a batch run that stays several cycles syncs a shop once per cycle, each time
    under a lease of its own)."""
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                """
                SELECT r.shop_id, s.marketplace, max(r.finished_at), bool_and(r.status = 'success'),
                       count(DISTINCT r.stream) FILTER (WHERE r.stream NOT IN ('wb_cards', 'allegro_history'))
                FROM sync_runs r JOIN shops s ON s.id = r.shop_id
                WHERE r.kind = 'sync' AND r.flow_run_id IS NOT NULL AND r.lease_token IS NOT NULL
                GROUP BY r.shop_id, s.marketplace, r.lease_token
                """
            )
        ).all()
    engine.dispose()
    wanted = {"wb": LIVE["wb"] - 1, "allegro": LIVE["allegro"] - 1}
    return [(shop, ended) for shop, market, ended, ok, streams in rows if ok and streams >= wanted[market]]


def _wait(what: str, check, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(2)


def run_one(args: argparse.Namespace, workers: int, server: str) -> Result:
    from flows.cluster import wait_for_state
    from flows.demo import sandbox_server
    from flows.prefect_server import free_port
    from sandbox import SandboxConfig
    from sandbox.cli import URL_KEYS
    from sellerpulse.settings import get_settings
    from storage import db, migrate

    interval = 180.0 / args.scale
    with tempfile.TemporaryDirectory() as tmp, scratch.fresh_database(server, "sp_bench_scale") as db_url:
        os.environ.update(DATABASE_URL=db_url, SELLERPULSE_DATA_DIR=tmp)
        for cached in (get_settings, db.get_target, db.get_engine, db.get_sessionmaker):
            cached.cache_clear()
        migrate.upgrade(db.get_engine())
        scenario = f"fleet:wb_shops={args.wb},allegro_shops={args.allegro}"
        config = replace(
            SandboxConfig(), scenario=scenario, speed=args.scale, rate_limits=True, rate_limit_scale=args.scale
        )
        with sandbox_server(config, free_port()) as (url, world):
            add_shops(world)
            shops = args.wb + args.allegro
            env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
            env.update(
                {key: f"{url}/{host}" for host, key in URL_KEYS.items()},
                ALLEGRO_CLIENT_ID=world.client_id,
                ALLEGRO_CLIENT_SECRET=world.client_secret,
                PREFECT_HOME=str(Path(tmp) / "prefect-home"),
                SYNC_INTERVAL_SECONDS=str(max(30, round(interval))),
                MARKETPLACE_RATE_SCALE=str(args.scale),
                SYNC_BATCH_SIZE=str(args.batch_size),
                SYNC_CONCURRENCY=str(args.concurrency),
                SYNC_QUEUE_LIMIT_WB=str(args.queue_limit),
                SYNC_QUEUE_LIMIT_ALLEGRO=str(args.queue_limit),
                PREFECT_WORKER_QUERY_SECONDS="2",
                SELLERPULSE_LOG_LEVEL="WARNING",
            )
            state_file = Path(tmp) / "state.json"
            log = Path(tmp) / "cluster.log"
            started = time.monotonic()
            with log.open("ab") as out:
                cluster = subprocess.Popen(
                    [sys.executable, "-m", "sellerpulse.cli", "cluster", "--workers", str(workers),
                     "--state-file", str(state_file)],
                    env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
            try:
                state = wait_for_state(state_file, cluster, timeout=900)
                startup = time.monotonic() - started
                try:
                    _wait("every shop's first sync", lambda: len({s for s, _ in _full_syncs(db_url)}) == shops,
                          args.warmup_timeout)  # fmt: skip
                    warmed = shops
                except TimeoutError:  # measured anyway: a configuration that cannot keep up says so
                    warmed = len({s for s, _ in _full_syncs(db_url)})
                    print(f"  warm-up: only {warmed} of {shops} shops synced once in {args.warmup_timeout:.0f} s")
                stop = threading.Event()
                seen = Samples({}, {}, {}, [])
                databases = [db_url.rsplit("/", 1)[1], state.prefect_database]
                sampler = threading.Thread(target=_cpu_sampler, args=(db_url, databases, stop, seen), daemon=True)
                sampler.start()
                time.sleep(3)
                cpu_before = dict(seen.cpu)
                tree_before = tree_cpu(cluster.pid)
                sandbox_before = sandbox_cpu(sampler)
                seen.peak.clear()
                seen.active_peak.clear()
                seen.load.clear()
                seq = max((r.seq for r in world.log.entries()), default=0)
                t0 = datetime.now(UTC)
                time.sleep(args.cycles * interval)
                t1 = datetime.now(UTC)
                cpu_after = dict(seen.cpu)
                tree = delta(tree_before, tree_cpu(cluster.pid))
                tree["sandbox"] = sandbox_cpu(sampler) - sandbox_before
                stop.set()
                sampler.join(timeout=10)
                prefect_url = str(make_url(db_url).set(database=state.prefect_database))
                timing = _batch_timing(db_url, prefect_url, t0, t1)
                phases, phase_runs = startup_phases(prefect_url)
            finally:
                cluster.send_signal(signal.SIGTERM)
                try:
                    cluster.wait(timeout=90)
                except subprocess.TimeoutExpired:
                    cluster.kill()
                    cluster.wait()
                # The cluster's default name for Prefect's database, dropped whatever happened.
                _drop(server, f"{db_url.rsplit('/', 1)[1]}_prefect")
            refused = [r for r in world.log.entries(since_seq=seq) if r.status == 429 and r.fault is None]
            if refused:  # which limit: a host, a path (the limiter must have let them through)
                print(f"  429s: {Counter((r.host, r.path) for r in refused).most_common(5)}", flush=True)
            syncs = _full_syncs(db_url)
    cpu = sum(cpu_after.get(pid, 0.0) - cpu_before.get(pid, 0.0) for pid in cpu_after)
    prefect_pg = sum(
        cpu_after[pid] - cpu_before.get(pid, 0.0) for pid in cpu_after if seen.db_of.get(pid) == databases[1]
    )
    result = _result(
        workers, shops, args.cycles, interval * args.scale / 180, syncs, t0, t1, startup, len(refused), cpu
    )
    loads = seen.load or [0.0]
    return replace(
        result,
        conn_peak=seen.peak.get(databases[0], 0),
        conn_active_peak=seen.active_peak.get(databases[0], 0),
        prefect_conn_peak=seen.peak.get(databases[1], 0),
        batch_startup_s=timing[0],
        batch_sync_s=timing[1],
        batches=timing[2],
        load=(loads[0], max(loads), loads[-1]),
        warmed=warmed,
        phases=phases,
        phase_runs=phase_runs,
        cpu_parts={**tree, "pg_prefect": prefect_pg, "pg_sellerpulse": cpu - prefect_pg},
    )


def _drop(server: str, name: str) -> None:
    from sqlalchemy.engine import make_url

    admin = create_engine(make_url(server).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _result(
    workers: int,
    shops: int,
    cycles: int,
    _unit: float,
    syncs: list[tuple[int, datetime]],
    t0: datetime,
    t1: datetime,
    startup: float,
    violations: int,
    cpu_seconds: float,
) -> Result:
    scale = (t1 - t0).total_seconds() / cycles  # real seconds per cycle
    in_window = [(shop, at) for shop, at in syncs if t0 <= at <= t1]
    per_shop: dict[int, list[datetime]] = defaultdict(list)
    for shop, at in sorted(syncs, key=lambda x: x[1]):
        per_shop[shop].append(at)
    # Intervals that end in the window, in sandbox seconds (180 = one cycle); a shop not synced
    # at all in the window counts as the whole window since its last sync.
    intervals = []
    for shop in range(1, shops + 1):
        times = per_shop.get(shop, [])
        ends = [b for b in times if t0 <= b <= t1]
        for a, b in zip(times, times[1:], strict=False):
            if t0 <= b <= t1:
                intervals.append((b - a).total_seconds())
        if not ends:
            last = max((t for t in times if t < t0), default=t0 - timedelta(seconds=scale))
            intervals.append((t1 - last).total_seconds())
    to_sandbox = 180.0 / scale
    p95 = statistics.quantiles(intervals, n=20)[-1] * to_sandbox if len(intervals) >= 2 else None
    return Result(
        workers=workers,
        shops=shops,
        cycles=cycles,
        syncs=len(in_window),
        shops_every_cycle=len(in_window) / cycles,
        p95_interval=p95,
        violations=violations,
        pg_cpu_ms=cpu_seconds * 1000 / len(in_window) if in_window else None,
        startup_s=startup,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wb", type=int, default=1000)
    parser.add_argument("--allegro", type=int, default=1000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--scale", type=float, default=6.0, help="sandbox s per real s (cycle: 180/scale s)")
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--queue-limit", type=int, default=8)
    parser.add_argument("--warmup-timeout", type=float, default=1800.0, help="s for every shop's first sync")
    args = parser.parse_args()
    if 180.0 / args.scale < 30:
        parser.error("--scale at most 6: sync-all runs at most every 30 s (SYNC_INTERVAL_SECONDS)")
    server = scratch.server_url(Path(tempfile.mkdtemp()), "BENCH_DATABASE_URL", "TEST_DATABASE_URL", "DATABASE_URL")
    load = os.getloadavg()
    print(f"{args.wb} WB + {args.allegro} Allegro shops, scale {args.scale:g}, {args.cycles} cycles; "
          f"load average at start {load[0]:.1f}, {os.cpu_count()} CPUs", flush=True)  # fmt: skip
    results = []
    for n in (int(x) for x in args.workers.split(",")):
        result = run_one(args, n, server)
        results.append(result)
        print(f"  {n} worker(s): {result}", flush=True)
    print_tables(results)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
