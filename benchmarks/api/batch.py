"""CPU per batch poll, in-process: the fast path's own answer (api.fastroutes) on one driver
connection, without HTTP, on the benchmark's fill; load-insensitive figures (CPU seconds, not
latencies), so two versions of the code can be compared on a busy machine.

    uv run python -m benchmarks.api.batch [--batches 400] [--people 10000] [--notifications 1000000]
                                          [--size 50] [--limit 20] [--profile]

Each batch poll is what mixed.lua sends (`POST /notifications/poll`, 50 random people, limit 20),
answered by `fastroutes._batch` and its steps (the pages) run to the body, as api.fastpath runs
them. Between two batch polls, the churn the mixed load has per batch poll (mixed.lua: 20% acks
to 5% batches; writer.py: 100 new rows a second against ~90 batch polls a second): 4 acks of
random people to the newest cursor seen, and a sync's batch of 10 new rows for a random shop
about every 9th batch poll, on another connection (not counted). Seeded: the same people, acks
and rows for every run.

Prints, per batch poll: the Python's CPU (this thread: the statement's client side, the pages,
the JSON) and PostgreSQL's (the backend's, from /proc), and the answer's size. `--profile`: a
cProfile of the batch polls (where the Python goes).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import re
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

import orjson
import psycopg
from sqlalchemy import create_engine

from api import fastroutes
from benchmarks.api.cpu import process_cpu
from benchmarks.api.fill import fill
from benchmarks.api.run import TELEGRAM_BASE
from sellerpulse.notify.drafts import Draft
from storage import apikeys, caller, migrate, outbox, scratch
from storage.db import session_scope

NEXT_CURSOR = re.compile(rb'"next_cursor":([0-9]+)')
ACKS_PER_BATCH = 4  # mixed.lua: 20% acks, 5% batch polls
WRITES_PER_BATCH = 1 / 9  # writer.py: 10 batches of 10 rows a second; ~90 batch polls a second


def answer(cur: psycopg.Cursor, secret: str, telegram_ids: list[int], limit: int) -> bytes:
    """The fast path's answer to one batch poll: the statement, then its steps to the body."""
    for step in fastroutes._batch(cur, secret, telegram_ids=telegram_ids, limit=limit):
        if step is not None:
            return step
    raise RuntimeError("no body")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.api.batch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--shops", type=int, default=500)
    parser.add_argument("--notifications", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=50, help="people per batch poll")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument(
        "--warm", type=int, default=1000, help="batch polls before measuring: each person polled ~5 times by then"
    )
    parser.add_argument("--cold", action="store_true", help="every page made afresh (api.pagecache emptied each time)")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="sp-bench-") as tmp:
        server = scratch.server_url(Path(tmp), "BENCH_DATABASE_URL", "DATABASE_URL")
        with scratch.fresh_database(server, "sp_bench_batch") as url:
            engine = create_engine(url)
            migrate.upgrade(engine)
            fill(scratch.libpq_url(url), people=args.people, shops=args.shops, notifications=args.notifications,
                 pending=3, orders=0)  # fmt: skip
            with session_scope(engine) as session:
                secret = apikeys.create_key(session, name="bench").secret
            try:
                run(url, engine, secret, args)
            finally:
                engine.dispose()
    return 0


def run(url: str, engine, secret: str, args: argparse.Namespace) -> None:
    rng = random.Random(5)
    conn = psycopg.connect(scratch.libpq_url(url), autocommit=True)
    cur = conn.cursor()
    backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    newest, written, bytes_out = 0, 0, 0
    sizes: list[tuple[int, int]] = []  # per person: outbox rows read, their JSON's length

    def churn() -> None:
        nonlocal newest, written
        with session_scope(engine) as session:
            for _ in range(ACKS_PER_BATCH):
                outbox.ack(session, person_id=rng.randint(1, args.people), cursor=newest)
        if rng.random() < WRITES_PER_BATCH:
            drafts = [
                Draft("new_order", f"bench-writer:{written}:{i}", f"{written}-{i}", {"order_id": f"w{written}-{i}"})
                for i in range(10)
            ]
            with session_scope(engine) as session:
                outbox.add(session, shop_id=rng.randint(1, args.shops), drafts=drafts)
            written += 1

    made = 0  # pages made (not served from api.pagecache)
    real_page = caller.ManyPages.page

    def page(self: caller.ManyPages, telegram_id: int, now: datetime) -> outbox.Page:
        nonlocal made
        made += 1
        return real_page(self, telegram_id, now)

    caller.ManyPages.page = page  # type: ignore[method-assign]
    cache = getattr(fastroutes, "PAGES", None)  # None: code from before api.pagecache

    asked = 0

    def batch() -> bytes:
        nonlocal asked
        # As the fast path's parser leaves them: each person once.
        ids = list(dict.fromkeys(TELEGRAM_BASE + rng.randint(1, args.people) for _ in range(args.size)))
        asked += len(ids)
        if args.cold and cache is not None:
            cache.clear()
        return answer(cur, secret, ids, args.limit)

    def read_sizes() -> None:
        ids = [TELEGRAM_BASE + rng.randint(1, args.people) for _ in range(args.size)]
        found = caller.poll_many_as(cur, key_digest=apikeys.digest_of(secret), telegram_ids=ids, limit=args.limit)
        for row in found.rows.values():
            rows = row[-1] or "[]"
            sizes.append((len(orjson.loads(rows)), len(rows)))

    for _ in range(args.warm):
        body = batch()
        churn()
    profile = cProfile.Profile() if args.profile else None
    python = postgres = 0.0
    made = asked = 0
    for _ in range(args.batches):
        pg0, py0 = process_cpu(backend), time.thread_time()
        if profile:
            profile.enable()
        body = batch()
        if profile:
            profile.disable()
        python += time.thread_time() - py0
        postgres += process_cpu(backend) - pg0
        bytes_out += len(body)
        newest = max([newest, *map(int, NEXT_CURSOR.findall(body))])
        churn()
    read_sizes()
    conn.close()
    n = args.batches
    print(
        f"{n} batch polls of {args.size} people (limit {args.limit}), {bytes_out / n / 1024:.1f} KiB an answer; "
        f"CPU per batch poll: Python {1000 * python / n:.2f} ms, PostgreSQL {1000 * postgres / n:.2f} ms, "
        f"total {1000 * (python + postgres) / n:.2f} ms; a person's page read "
        f"{statistics.mean(r for r, _ in sizes):.1f} outbox rows, "
        f"{statistics.mean(c for _, c in sizes) / 1024:.1f} KiB of JSON; "
        f"pages made {made / asked:.0%} of those asked for (the rest from api.pagecache)"
    )
    if profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    raise SystemExit(main())
