"""The order list of a 200,000-order WB shop: each kind of page (unfiltered, filtered by
status; first and deep) asked through the served API, on the fast path and on the route
(an unknown parameter sends a request there), and its statements under EXPLAIN ANALYZE.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres uv run python -m benchmarks.orders.run
    ... --url postgresql://.../db   # a database filled before (benchmarks.orders.fill), left as it is

Prints per case: median and p90 request latency, CPU per request of the API worker and of the
PostgreSQL backends (/proc: what a busy machine weighs on least), answers other than 200 (a 503 is the API's
statement timeout), and the EXPLAIN (ANALYZE,
BUFFERS) execution time of the statement(s) the route runs; the load average at the start, its
maximum and at the end. Run it in a worktree of the baseline too (same fill: `--url`), side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import create_engine

from api.serving import served_api
from benchmarks.api.cpu import CpuMeter, children
from benchmarks.api.run import api_backends
from benchmarks.orders.fill import TELEGRAM_ID, fill
from storage import apikeys, migrate, scratch
from storage.db import session_scope

CASES = (  # (status, offset); the bot's page is 8
    (None, 0),
    (None, 100_000),
    ("delivered", 0),
    ("delivered", 50_000),
    ("returned", 0),
    ("new", 0),
)
LIMIT = 8


@contextlib.contextmanager
def database(url: str | None, orders: int) -> Iterator[str]:
    if url:
        yield scratch._psycopg(url)
        return
    with tempfile.TemporaryDirectory(prefix="sp-bench-") as tmp:
        server = scratch.server_url(Path(tmp), "BENCH_DATABASE_URL", "DATABASE_URL")
        with scratch.fresh_database(server, "sp_bench_orders") as fresh:
            engine = create_engine(fresh)
            migrate.upgrade(engine)
            engine.dispose()
            fill(scratch.libpq_url(fresh), orders=orders)
            with psycopg.connect(scratch.libpq_url(fresh), autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")  # as autovacuum leaves a table read for weeks
            yield fresh


def statements(status: str | None, offset: int) -> list[str]:
    """What the route runs for the page: this code's (storage.order_list), or, on code before
    it, the count and the page of order_statuses that storage.queries.recent_orders ran."""
    shop, st = "1", None if status is None else f"'{status}'"
    try:
        from storage.order_list import page_sql
    except ImportError:
        where = "shop_id = 1" + ("" if st is None else f" AND status = {st}")
        return [
            f"SELECT count(*) FROM order_statuses WHERE {where}",
            f"SELECT * FROM order_statuses WHERE {where} ORDER BY bought_at DESC NULLS LAST, id DESC"
            f" LIMIT {LIMIT} OFFSET {offset}",
        ]
    return [page_sql(shop=shop, status=st, limit=str(LIMIT), offset=str(offset))]


def explain_ms(url: str, sql: str) -> float:
    with psycopg.connect(scratch.libpq_url(url), autocommit=True) as conn:
        conn.execute(sql)  # warm
        plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}").fetchone()[0][0]
    return float(plan["Execution Time"]) + float(plan.get("Planning Time", 0.0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.orders.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a filled database to use as it is")
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=10, help="per case and way")
    args = parser.parse_args(argv)
    loads = [os.getloadavg()[0]]
    with database(args.url, args.orders) as url, tempfile.TemporaryDirectory(prefix="sp-bench-data-") as data_dir:
        engine = create_engine(url)
        with session_scope(engine) as session:
            key = apikeys.create_key(session, name="bench-orders").secret
        engine.dispose()
        with served_api(url, Path(data_dir), workers=1) as served:
            workers = children(served.pid) or [served.pid]
            print(f"{'case':<24} {'way':<6} {'p50 ms':>8} {'p90 ms':>8} {'API ms/req':>11} {'PG ms/req':>10}"
                  f" {'total':>7} {'not OK':>6} {'EXPLAIN ms':>11}")  # fmt: skip
            with httpx.Client(base_url=served.url, headers={"X-API-Key": key}, timeout=120) as client:
                for status, offset in CASES:
                    explained = sum(explain_ms(url, sql) for sql in statements(status, offset))
                    for way in ("fast", "route"):
                        params = {"telegram_id": TELEGRAM_ID, "limit": LIMIT, "offset": offset}
                        if status:
                            params["status"] = status
                        if way == "route":
                            params["via"] = "route"
                        client.get("/api/v1/shops/1/orders", params=params)  # warm
                        times, failed, total = [], 0, "-"
                        with CpuMeter(workers, lambda: api_backends(url)) as meter:
                            for _ in range(args.requests):
                                t0 = time.perf_counter()
                                r = client.get("/api/v1/shops/1/orders", params=params)
                                times.append(1000 * (time.perf_counter() - t0))
                                if r.status_code == 200:
                                    total = str(r.json()["total"])
                                else:  # a 503: the API's statement timeout (API_STATEMENT_TIMEOUT_MS)
                                    failed += 1
                                loads.append(os.getloadavg()[0])
                        use, n = meter.use, args.requests
                        case = f"{status or 'all'} offset {offset}"
                        print(
                            f"{case:<24} {way:<6} {statistics.median(times):8.1f}"
                            f" {statistics.quantiles(times, n=10)[-1]:8.1f} {1000 * use.api / n:11.1f}"
                            f" {1000 * (use.postgres or 0) / n:10.1f} {total:>7} {failed:>6} {explained:11.1f}"
                        )
    loads.append(os.getloadavg()[0])
    print(f"load average: start {loads[0]:.1f}, max {max(loads):.1f}, end {loads[-1]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
