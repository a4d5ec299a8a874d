"""CPU per shop sync, in one process, split by where it goes (load-insensitive).

    uv run python -m benchmarks.scale.shop_cpu [--wb 100] [--allegro 100] [--rounds 2]
        [--scale 6] [--concurrency 50] [--prefect] [--py-spy out.txt]

What `benchmarks.scale` cannot split: a fresh database, the sandbox (fleet scenario, rate
limits on, `--scale` times faster) served by a child process of its own, and the shops synced
here as a batch run syncs them (`sync_many`: one client set, each shop under its lease), after
a first sync of every shop (warm-up, not counted), `--rounds` times, one round per sandbox
3-minute cycle. `--prefect`: inside a `sync-batch` flow run against a Prefect server of its own
(on PostgreSQL, as `sellerpulse cluster` runs it): each shop's streams one task run, as in
production. Per full shop sync of the measured rounds, CPU milliseconds of:

- this process (our Python: HTTP, parsing, the database calls, Prefect's client if any; the
  sampler thread's own CPU taken out);
- the sandbox's process;
- the Prefect server's process tree (`--prefect`);
- PostgreSQL's backends, per database (sellerpulse's, Prefect's).

And per full shop sync, this process's round trips to sellerpulse's database: pool checkouts,
statements, commits, and statements compiled (SQLAlchemy's compiled cache missed or the statement
has no cache key). `SHOP_CPU_STATEMENTS=1` prints the statements by count per sync.

`--py-spy FILE`: py-spy samples this process (the thread holding the GIL: Python's CPU) over the measured
rounds and writes collapsed stacks (FILE) and a summary of where the samples fell (FILE.top).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil

from benchmarks.scale.cpu import thread_cpu
from benchmarks.scale.fleet import add_shops
from storage import scratch


def _serve(app: Any, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def process_cpu(proc: psutil.Process, *, tree: bool = False) -> float:
    procs = [proc, *proc.children(recursive=True)] if tree else [proc]
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


class Sampler(threading.Thread):
    """CPU seconds per PostgreSQL backend of the given databases, sampled every 0.5 s."""

    def __init__(self, url: str, databases: list[str]) -> None:
        super().__init__(daemon=True, name="pg-sampler")
        self.url, self.databases = url, databases
        self.cpu: dict[int, float] = {}
        self.db_of: dict[int, str] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.url)
        query = text("SELECT pid, datname FROM pg_stat_activity WHERE datname = ANY(:d) AND pid <> pg_backend_pid()")
        while not self.stop.is_set():
            with contextlib.suppress(Exception), engine.connect() as conn:
                for pid, name in conn.execute(query, {"d": self.databases}).all():
                    with contextlib.suppress(psutil.Error):
                        t = psutil.Process(pid).cpu_times()
                        self.cpu[pid] = max(self.cpu.get(pid, 0.0), t.user + t.system)
                        self.db_of[pid] = name
            self.stop.wait(0.5)
        engine.dispose()

    def per_database(self) -> dict[str, float]:
        out: Counter[str] = Counter()
        for pid, seconds in self.cpu.items():
            out[self.db_of[pid]] += seconds
        return dict(out)


def _full_syncs(db_url: str, since: Any) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    with engine.connect() as conn:
        n = conn.execute(
            text(
                """
                SELECT count(*) FROM (
                  SELECT r.lease_token FROM sync_runs r
                  WHERE r.kind = 'sync' AND r.lease_token IS NOT NULL AND r.started_at >= :since
                  GROUP BY r.lease_token HAVING bool_and(r.status IN ('success', 'skipped'))
                ) s
                """
            ),
            {"since": since},
        ).scalar()
    engine.dispose()
    return int(n or 0)


async def _round(ids: list[int], args: argparse.Namespace) -> None:
    if args.prefect:
        from flows.sync import sync_batch

        with contextlib.suppress(Exception):  # a failed shop is counted (not a full sync), not fatal
            await sync_batch(ids, concurrency=args.concurrency, since=None, stay_seconds=0)
    else:
        from flows.sync import sync_many

        await sync_many(ids, concurrency=args.concurrency, as_flows=False)


@contextlib.contextmanager
def _prefect(server: str, tmp: Path) -> Any:
    """A Prefect server on a fresh PostgreSQL database, its API for this process."""
    from sqlalchemy.engine import make_url

    from flows import prefect_server as server_module
    from flows.prefect_server import prefect_server

    server_module.READY_TIMEOUT = 600.0  # a loaded machine starts a Prefect server slowly

    with scratch.fresh_database(server, "sp_bench_shopcpu_prefect") as url:
        async_url = make_url(url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
        os.environ["PREFECT_API_DATABASE_CONNECTION_URL"] = async_url
        try:
            with prefect_server(tmp) as api:
                yield api, url.rsplit("/", 1)[1]
        finally:
            os.environ.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)


def run(args: argparse.Namespace, server: str) -> dict[str, float]:
    from sandbox import SandboxConfig
    from sandbox.app import create_app
    from sandbox.cli import URL_KEYS
    from sellerpulse.processes import free_port
    from sellerpulse.settings import get_settings
    from storage import db, migrate

    with tempfile.TemporaryDirectory() as tmp, scratch.fresh_database(server, "sp_bench_shopcpu") as db_url:
        scenario = f"fleet:wb_shops={args.wb},allegro_shops={args.allegro}"
        config = replace(
            SandboxConfig(), scenario=scenario, speed=args.scale, rate_limits=True, rate_limit_scale=args.scale
        )
        app = create_app(config)
        world = app.state.world
        port = free_port()
        sandbox = multiprocessing.get_context("fork").Process(target=_serve, args=(app, port), daemon=True)
        sandbox.start()
        url = f"http://127.0.0.1:{port}"
        os.environ.update(
            {key: f"{url}/{host}" for host, key in URL_KEYS.items()},
            DATABASE_URL=db_url,
            SELLERPULSE_DATA_DIR=tmp,
            ALLEGRO_CLIENT_ID=world.client_id,
            ALLEGRO_CLIENT_SECRET=world.client_secret,
            MARKETPLACE_RATE_SCALE=str(args.scale),
            SELLERPULSE_LOG_LEVEL="WARNING",
            DO_NOT_TRACK="1",
        )
        for cached in (get_settings, db.get_target, db.get_engine, db.get_sessionmaker):
            cached.cache_clear()
        migrate.upgrade(db.get_engine())
        add_shops(world)
        import httpx

        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/", timeout=2).status_code < 500:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.2)
        stack = contextlib.ExitStack()
        try:
            databases = [db_url.rsplit("/", 1)[1]]
            prefect_proc = None
            if args.prefect:
                api, prefect_db = stack.enter_context(_prefect(server, Path(tmp)))
                databases.append(prefect_db)
                # `-m prefect server start`: the sandbox's process is a fork of this one, whose
                # command line has "--prefect" in it too.
                prefect_proc = next(
                    (p for p in psutil.Process().children() if "prefect server start" in " ".join(p.cmdline())), None
                )
                if prefect_proc is None:
                    raise RuntimeError("the Prefect server's process was not found")
            return _measure(args, db_url, databases, sandbox.pid, prefect_proc)
        finally:
            stack.close()
            sandbox.terminate()
            sandbox.join(10)
            db.get_engine().dispose()


def _measure(
    args: argparse.Namespace, db_url: str, databases: list[str], sandbox_pid: int, prefect_proc: Any
) -> dict[str, float]:
    from storage.db import get_engine
    from storage.sync_state import database_now

    ids = list(range(1, args.wb + args.allegro + 1))
    interval = 180.0 / args.scale
    t = time.monotonic()
    asyncio.run(_round(ids, args))  # warm-up: first syncs (history, silent), not counted
    print(f"  warm-up: {time.monotonic() - t:.0f} s", flush=True)
    sampler = Sampler(db_url, databases)
    sampler.start()
    time.sleep(1.5)
    me, sandbox = psutil.Process(), psutil.Process(sandbox_pid)
    since = database_now(get_engine())
    pg0, me0, sb0 = sampler.per_database(), process_cpu(me), process_cpu(sandbox)
    samp0 = thread_cpu(sampler.native_id or 0)
    pf0 = process_cpu(prefect_proc, tree=True) if prefect_proc else 0.0
    spy = _py_spy(args.py_spy) if args.py_spy else None
    calls = _count_calls(get_engine())
    t0 = time.monotonic()
    for n in range(args.rounds):
        start = time.monotonic()
        asyncio.run(_round(ids, args))
        print(f"  round {n + 1}: {time.monotonic() - start:.0f} s", flush=True)
        if n + 1 < args.rounds:
            time.sleep(max(0.0, interval - (time.monotonic() - start)))
    wall = time.monotonic() - t0
    # Read before py-spy is waited for: a waited-for child's CPU would count as this process's.
    me1 = process_cpu(me) - (thread_cpu(sampler.native_id or 0) - samp0)
    if spy is not None:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT (SIGTERM loses it)
        spy.wait(60)
    sb1, pf1 = process_cpu(sandbox), (process_cpu(prefect_proc, tree=True) if prefect_proc else 0.0)
    time.sleep(1.0)
    pg1 = sampler.per_database()
    sampler.stop.set()
    sampler.join(5)
    syncs = _full_syncs(db_url, since)
    per = 1000.0 / max(1, syncs)
    out = {
        "shop_syncs": syncs,
        "wall_s": wall,
        "ours_ms": (me1 - me0) * per,
        "sandbox_ms": (sb1 - sb0) * per,
        "prefect_server_ms": (pf1 - pf0) * per,
        "pg_sellerpulse_ms": (pg1.get(databases[0], 0) - pg0.get(databases[0], 0)) * per,
        "pg_prefect_ms": (pg1.get(databases[-1], 0) - pg0.get(databases[-1], 0)) * per if args.prefect else 0.0,
    }
    out |= {f"{k}_per_sync": v / max(1, syncs) for k, v in calls.items()}
    if args.py_spy:
        _summarise(Path(args.py_spy))
    for sql, n in STATEMENTS.most_common(40):
        print(f"  {n / max(1, syncs):5.2f}  {sql}")
    return out


STATEMENTS: Counter[str] = Counter()


def _count_calls(engine: Any) -> Counter[str]:
    """Round trips this process makes to sellerpulse's database: statements through SQLAlchemy,
    transactions committed, connections checked out of the pool (each a ping first, if set)."""
    from sqlalchemy import event
    from sqlalchemy.engine.interfaces import CacheStats

    calls: Counter[str] = Counter()

    def statement(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        calls.update(["statements"])
        # Compiled each time (SQLAlchemy's compiled cache missed, or the statement has no key).
        if context is not None and context.cache_hit in (CacheStats.CACHE_MISS, CacheStats.NO_CACHE_KEY):
            calls.update(["compiled"])
            if os.environ.get("SHOP_CPU_STATEMENTS"):
                STATEMENTS.update(["compiled: " + " ".join(sql.split())[:150]])
        if os.environ.get("SHOP_CPU_STATEMENTS"):
            STATEMENTS.update([" ".join(sql.split())[:150]])

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", lambda *a: calls.update(["commits"]))
    event.listen(engine.pool, "checkout", lambda *a: calls.update(["checkouts"]))
    return calls


def _py_spy(path: str) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen(
        [str(exe), "record", "--pid", str(os.getpid()), "--rate", "200", "--format", "raw", "--nonblocking", "--gil",
         "-o", path],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _summarise(path: Path) -> None:
    """Where the samples fell: by innermost frame of our code / library, and inclusive by module."""
    if not path.exists():
        print(f"  py-spy wrote nothing to {path}")
        return
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        seen = set()
        for f in frames:
            key = f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0] + ")" if " (" in f else f
            if key not in seen:
                inclusive[key] += n
                seen.add(key)
        own[frames[-1].split(":")[0] if frames else "?"] += n
    lines = [f"samples {total}", "", "inclusive (function (file)):"]
    lines += [f"{100 * n / total:6.1f}%  {k}" for k, n in inclusive.most_common(150)]
    lines += ["", "self (innermost frame):"]
    lines += [f"{100 * n / total:6.1f}%  {k}" for k, n in own.most_common(60)]
    Path(str(path) + ".top").write_text("\n".join(lines) + "\n")
    print(f"  py-spy: {total} samples, summary in {path}.top")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wb", type=int, default=100)
    parser.add_argument("--allegro", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scale", type=float, default=6.0)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--prefect", action="store_true", help="inside a sync-batch flow run (Prefect server)")
    parser.add_argument("--py-spy", help="collapsed stacks of this process over the measured rounds")
    args = parser.parse_args()
    server = scratch.server_url(Path(tempfile.mkdtemp()), "BENCH_DATABASE_URL", "TEST_DATABASE_URL", "DATABASE_URL")
    load = os.getloadavg()[0]
    print(f"{args.wb} WB + {args.allegro} Allegro shops, scale {args.scale:g}, {args.rounds} rounds, "
          f"prefect={args.prefect}; load average {load:.1f}", flush=True)  # fmt: skip
    result = run(args, server)
    print(f"  load average at the end {os.getloadavg()[0]:.1f}")
    print("  " + ", ".join(f"{k} {v:.1f}" for k, v in result.items()), flush=True)


if __name__ == "__main__":
    main()
