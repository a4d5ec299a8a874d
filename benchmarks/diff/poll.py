"""Latency of `storage.outbox.poll` alone (query + settings + grouping + rendering), no HTTP.

    uv run python -m benchmarks.diff.poll [--notifications 1000000] [--people 10000] [--shops 500] [--polls 3000]

Seeds a fresh database with SQL (shops, people with default settings, one or two shops
each, notifications spread over 30 days in id order), then polls people at random, one
thread, in three modes: "caught up" (after = the person's newest id minus a few: the steady
state of a bot), "catching up" (after = an id 2 days back: a page full of work) and "joined
late" (after = 0 for people who joined after all of it: nothing to deliver, nothing to scan).
Prints p50/p99 in ms and polls/s. The API benchmark (benchmarks/api) measures the HTTP path.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from storage import migrate, outbox
from tests.dbutil import fresh_database

SEED = """
INSERT INTO shops (marketplace, name, currency, language)
SELECT CASE WHEN g % 2 = 0 THEN 'wb' ELSE 'allegro' END, 'shop ' || g,
       CASE WHEN g % 2 = 0 THEN 'RUB' ELSE 'PLN' END, CASE WHEN g % 2 = 0 THEN 'ru' ELSE 'pl' END
FROM generate_series(1, :shops) g;
INSERT INTO people (telegram_id, time_zone) SELECT 1000000 + g, 'Europe/Warsaw' FROM generate_series(1, :people) g;
INSERT INTO notification_settings (person_id) SELECT id FROM people;
INSERT INTO memberships (shop_id, person_id, role, created_at)
SELECT 1 + (p.id % :shops), p.id, 'owner', '2020-01-01' FROM people p;
INSERT INTO memberships (shop_id, person_id, role, created_at)
SELECT 1 + ((p.id * 7 + 3) % :shops), p.id, 'member', '2020-01-01' FROM people p
WHERE p.id % 5 = 0 ON CONFLICT DO NOTHING;
INSERT INTO notifications (shop_id, kind, dedupe_key, payload, created_at)
SELECT 1 + (g % :shops),
       (ARRAY['new_order', 'new_order', 'new_order', 'buyout', 'cancellation', 'return', 'negative_review'])[1 + g % 7],
       'bench:' || g,
       jsonb_build_object('order_id', 'srid-' || g, 'sale_id', 'S' || g, 'basket_id', 'g' || g, 'amount', '1299.00',
           'currency', 'RUB', 'bought_at', '2026-11-01T10:00:00+00:00', 'stars', 1 + g % 5, 'warehouse', 'Коледино',
           'region', 'Московская', 'items', jsonb_build_array(jsonb_build_object('sku', '1001', 'name', 'Платье',
           'size', 'M', 'quantity', 1, 'price', '1299.00'))),
       now() - interval '30 days' + (g * (interval '30 days' / :n))
FROM generate_series(1, :n) g;
ANALYZE
"""


def seed(engine: Engine, *, notifications: int, people: int, shops: int) -> None:
    params = {"n": notifications, "people": people, "shops": shops}
    with engine.begin() as conn:
        for statement in filter(str.strip, SEED.split(";\n")):
            conn.execute(text(statement), params)


def join_late(engine: Engine) -> None:
    """Everyone joins their shops now: the shops' whole history is before them."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE memberships SET created_at = now()"))
        conn.execute(text("DELETE FROM delivery_cursors"))


def run(engine: Engine, *, people: int, polls: int, lag: int) -> list[float]:
    rng = random.Random(3)
    with engine.connect() as conn:
        newest = conn.execute(text("SELECT max(id) FROM notifications")).scalar_one()
    times = []
    now = datetime.now(UTC)
    with Session(engine) as session:
        for _ in range(polls):
            person = rng.randint(1, people)
            start = time.perf_counter()
            outbox.poll(session, person_id=person, after=max(0, newest - lag), limit=50, now=now)
            session.rollback()
            times.append(time.perf_counter() - start)
    return times


def report(label: str, times: list[float]) -> None:
    ordered = sorted(times)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
    print(f"{label:<16} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  {len(times) / sum(times):7.0f} polls/s (one thread)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notifications", type=int, default=1_000_000)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--shops", type=int, default=500)
    parser.add_argument("--polls", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, fresh_database(Path(tmp), prefix="sp_bench_poll") as url:
        engine = create_engine(url, pool_size=2)
        migrate.upgrade(engine)
        seed(engine, notifications=args.notifications, people=args.people, shops=args.shops)
        # A few new notifications since the cursor (caught up), or two days' worth (catching up).
        report("caught up", run(engine, people=args.people, polls=args.polls, lag=2000))
        report("catching up", run(engine, people=args.people, polls=args.polls // 10, lag=args.notifications // 15))
        join_late(engine)  # new members polling from 0: their shops' history must not be scanned
        report("joined late", run(engine, people=args.people, polls=args.polls, lag=args.notifications))
        engine.dispose()


if __name__ == "__main__":
    main()
