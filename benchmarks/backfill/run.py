"""One benchmark step in its own process (so its peak RSS is its own); prints one JSON line.

python -m benchmarks.backfill.run record CACHE WB_ROWS ALLEGRO_FORMS
python -m benchmarks.backfill.run measure CACHE wb|allegro
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy.orm import Session

from benchmarks.backfill.replay import RecordingTransport, ReplayTransport
from connectors.ratelimit import RateLimits
from sandbox.cli import URL_KEYS
from storage.scratch import libpq_url  # settings-free: safe before the environment is set

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # the sandbox clock, frozen
CLIENT_ID, CLIENT_SECRET = "bench-client", "bench-secret"
SANDBOX = "http://sandbox"
ALLEGRO_DAYS = 300


def _scenarios(wb_rows: int, allegro_forms: int) -> dict[str, str]:
    return {"wb": f"wb-1m:wb_orders={wb_rows}", "allegro": f"allegro-200k:allegro_orders={allegro_forms}"}


def _environment(database_url: str) -> None:
    """Settings for the pipeline: the sandbox's URLs, this database; read before sellerpulse imports them."""
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "ALLEGRO_CLIENT_ID": CLIENT_ID,
            "ALLEGRO_CLIENT_SECRET": CLIENT_SECRET,
            "INITIAL_HISTORY_DAYS": "90",
            **{key: f"{SANDBOX}/{host}" for host, key in URL_KEYS.items()},
        }
    )


@lru_cache(maxsize=1)
def _server() -> str:
    """Chosen once per process: the pipeline's own DATABASE_URL is set per database later."""
    from storage.scratch import server_url

    return server_url(Path(tempfile.mkdtemp(prefix="sp-bench-")), "BENCH_DATABASE_URL", "DATABASE_URL")


@contextmanager
def _database() -> Iterator[str]:
    from storage.scratch import fresh_database

    with fresh_database(_server(), "sp_bench") as url:
        yield url


def _prepare(kind: str, token: dict[str, Any]) -> int:
    """Schema and shop (not timed)."""
    from storage import migrate
    from storage.db import get_engine
    from storage.shops import create_shop

    engine = get_engine()
    migrate.upgrade(engine)
    with Session(engine) as session, session.begin():
        return create_shop(session, marketplace=kind, name=f"bench-{kind}", credentials=token).id


async def _pipeline(kind: str, shop_id: int, transport: httpx.AsyncBaseTransport) -> int:
    """sellerpulse's own path: the WB orders stream, or the Allegro backfill."""
    from flows.backfill import backfill_one
    from flows.sync import sync_one
    from sellerpulse.settings import get_settings
    from tasks.clients import Clients

    async with Clients.from_settings(
        get_settings(), transport=transport, limits=RateLimits.unlimited(), now=lambda: START
    ) as clients:
        if kind == "wb":
            reports = await sync_one(shop_id, streams=["orders"], clients=clients)
        else:
            since = (START - timedelta(days=ALLEGRO_DAYS)).date()
            reports = await backfill_one(shop_id, since, START.date(), clients=clients)
    failed = [r.error for r in reports if r.status != "success"]
    if failed:
        raise RuntimeError(f"pipeline failed: {failed}")
    return sum(r.counts.inserted for r in reports)


def _token(world: Any, kind: str) -> dict[str, Any]:
    shop = "wb1" if kind == "wb" else "allegro1"
    if kind == "wb":
        return {"token": world.wb_token(shop)}
    pair = world.allegro_pair(shop)
    return {"access_token": pair.access_token, "refresh_token": pair.refresh_token}


def record(cache: Path, wb_rows: int, allegro_forms: int) -> dict[str, Any]:
    from sandbox import SandboxConfig, create_app
    from sandbox.transport import SandboxTransport

    started = time.perf_counter()
    tokens = {}
    for kind, scenario in _scenarios(wb_rows, allegro_forms).items():
        app = create_app(
            replace(
                SandboxConfig(),
                scenario=scenario,
                rate_limits=False,
                start=START,
                allegro_client_id=CLIENT_ID,
                allegro_client_secret=CLIENT_SECRET,
            )
        )
        tokens[kind] = _token(app.state.world, kind)
        transport = RecordingTransport(SandboxTransport(app=app), cache / kind)
        with _database() as url:
            _environment(url)
            _reset_cached_settings()
            asyncio.run(_pipeline(kind, _prepare(kind, tokens[kind]), transport))
        transport.finish()
    (cache / "tokens.json").write_text(json.dumps(tokens))
    (cache / "COMPLETE").write_text("ok")
    return {"seconds": time.perf_counter() - started}


def _reset_cached_settings() -> None:
    from sellerpulse.settings import get_settings
    from storage import db

    for cached in (get_settings, db.get_target, db.get_engine, db.get_sessionmaker):
        cached.cache_clear()


class PeakRss:
    """Samples this process's resident memory while the pipeline runs."""

    def __init__(self, every: float = 0.05) -> None:
        self.every, self.peak = every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, me.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class CpuClock:
    """CPU seconds spent by this process and by the PostgreSQL backends of its database.

    Wall time is the figure that counts, but on a shared 2-core machine it also measures the
    neighbours; CPU time of both sides does not, so each step reports both. The backends are
    read from /proc, so this works when PostgreSQL runs on this machine (None otherwise).
    """

    def __init__(self, url: str) -> None:
        self.url = libpq_url(url)
        self.start_self = self._self()
        self.start_backends = self._backends()

    @staticmethod
    def _self() -> float:
        times = psutil.Process().cpu_times()
        return times.user + times.system

    def _backends(self) -> dict[int, float] | None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            pids = [
                pid
                for (pid,) in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ]
        try:
            return {pid: _proc_cpu(pid) for pid in pids}
        except OSError:
            return None

    def seconds(self) -> tuple[float, float | None]:
        """(this process, the database's backends) since construction."""
        ours = self._self() - self.start_self
        now, before = self._backends(), self.start_backends
        if now is None or before is None:
            return ours, None
        return ours, sum(cpu - before.get(pid, 0.0) for pid, cpu in now.items())


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


# What the pipeline stored, as (target columns, what to read them from). `{offset}` and `{shop}`
# move the copy to ids and a shop of its own, so it can go into the very same tables.
COPIED = {
    "orders": (
        "id, shop_id, external_id, basket_id, status, marketplace_status, fulfillment_status, is_cancelled, "
        "total_amount, currency, bought_at, source_updated_at, cancelled_at, revision, raw",
        "id + {offset}, {shop}, external_id, basket_id, status, marketplace_status, fulfillment_status, "
        "is_cancelled, total_amount, currency, bought_at, source_updated_at, cancelled_at, revision, raw",
    ),
    "order_lines": (
        "order_id, shop_id, line_key, sku, name, size, quantity, price, currency",
        "order_id + {offset}, {shop}, line_key, sku, name, size, quantity, price, currency",
    ),
}


def _copy_baselines(url: str) -> dict[str, tuple[float, float | None]]:
    """COPY the rows the pipeline wrote (same columns, same raw JSON), timing the COPY only:

    - "schema": into the same tables, with all their indexes and constraints, as another shop:
      the floor for landing these rows in this schema;
    - "bare": into new tables without indexes or constraints: the floor for moving the bytes.

    Each: (wall seconds, CPU seconds of client and server, or None where /proc cannot tell)."""
    import psycopg

    with psycopg.connect(libpq_url(url)) as conn:
        offset = conn.execute("SELECT coalesce(max(id), 0) FROM orders").fetchone()[0]
        conn.execute("CREATE TEMP TABLE copy_shop AS SELECT * FROM shops ORDER BY id LIMIT 1")
        conn.execute("UPDATE copy_shop SET id = (SELECT max(id) + 1 FROM shops), name = name || ' (COPY)'")
        shop = conn.execute("INSERT INTO shops SELECT * FROM copy_shop RETURNING id").fetchone()[0]
        for table, (columns, _) in COPIED.items():
            conn.execute(f"CREATE TABLE bench_{table} AS SELECT {columns} FROM {table} WITH NO DATA")
        conn.commit()
        results = {}
        for baseline, prefix in (("schema", ""), ("bare", "bench_")):
            seconds, cpu = 0.0, 0.0
            for table, (columns, source) in COPIED.items():
                source = source.format(offset=offset, shop=shop)
                read = f"COPY (SELECT {source} FROM {table} WHERE shop_id <> {shop}) TO STDOUT"
                spent, used = _timed_copy(conn, read, f"COPY {prefix}{table} ({columns}) FROM STDIN")
                seconds += spent
                cpu = None if cpu is None or used is None else cpu + used
            results[baseline] = (seconds, cpu)
    return results


def _timed_copy(conn: Any, read: str, write: str) -> tuple[float, float | None]:
    """Dump with `read` to a file (not timed), then time `write` loading it."""
    backend = conn.info.backend_pid
    with tempfile.TemporaryFile() as dump:
        with conn.cursor().copy(read) as out:
            for chunk in out:
                dump.write(chunk)
        dump.seek(0)
        conn.commit()
        _checkpoint(conn)
        started, cpu_before = time.perf_counter(), _copy_cpu(backend)
        with conn.cursor().copy(write) as into:
            while chunk := dump.read(1 << 20):
                into.write(chunk)
        conn.commit()
        seconds = time.perf_counter() - started
        cpu_after = _copy_cpu(backend)
    return seconds, None if cpu_before is None or cpu_after is None else cpu_after - cpu_before


def _checkpoint(conn: Any) -> None:
    """Start each timed step from a checkpoint, so none pays for the WAL an earlier one wrote
    (the schema COPY writes gigabytes). Skipped where we may not (not a superuser)."""
    import psycopg

    try:
        conn.execute("CHECKPOINT")
    except psycopg.errors.InsufficientPrivilege:
        conn.rollback()


def _copy_cpu(backend: int) -> float | None:
    try:
        return CpuClock._self() + _proc_cpu(backend)
    except OSError:
        return None


def measure(cache: Path, kind: str) -> dict[str, Any]:
    tokens = json.loads((cache / "tokens.json").read_text())
    with _database() as url:
        _environment(url)
        shop_id = _prepare(kind, tokens[kind])
        import psycopg

        import flows.backfill  # noqa: F401 - imports are not the pipeline's cost
        import flows.sync  # noqa: F401

        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            _checkpoint(conn)
        with PeakRss() as rss:
            clock = CpuClock(url)
            started = time.perf_counter()
            rows = asyncio.run(_pipeline(kind, shop_id, ReplayTransport(cache / kind)))
            pipeline_s = time.perf_counter() - started
            ours, server = clock.seconds()
        baselines = _copy_baselines(url)
    stream = "wb orders" if kind == "wb" else "allegro orders"
    return {
        "stream": stream,
        "rows": rows,
        "pipeline_s": pipeline_s,
        "peak_rss_mb": rss.peak / 2**20,
        "pipeline_cpu_s": {"python": ours, "postgres": server},
        "copy_s": {name: seconds for name, (seconds, _) in baselines.items()},
        "copy_cpu_s": {name: cpu for name, (_, cpu) in baselines.items()},
    }


def main(argv: list[str]) -> int:
    steps: dict[str, Callable[..., dict[str, Any]]] = {
        "record": lambda c, w, a: record(Path(c), int(w), int(a)),
        "measure": lambda c, k: measure(Path(c), k),
    }
    result = steps[argv[0]](*argv[1:])
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
