"""Fill a migrated database with people, shops, memberships and notifications, by COPY.

Shape: every person owns one shop and is a member of another (so ~40 people per shop);
notifications are spread evenly over the shops, ids rising with time over the last 30 days;
each person's acknowledged cursor sits a little before the newest notification of their
shops, so a poll finds a few new items, as a live bot's would.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg

KINDS = ("new_order", "new_order", "new_order", "buyout", "cancellation", "return", "negative_review")


def _copy(conn: psycopg.Connection, sql: str, rows: Iterator[tuple[Any, ...]]) -> None:
    with conn.cursor() as cur, cur.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


def _payload(i: int, rng: random.Random) -> bytes:
    sku = str(100000 + i % 5000)
    price = f"{rng.randint(300, 9000)}.00"
    return orjson.dumps(
        {
            "order_id": f"srid-{i}",
            "basket_id": f"g{i // 2}",
            "amount": price,
            "currency": "RUB",
            "bought_at": "2026-11-20T10:00:00+00:00",
            "warehouse": "Koledino",
            "region": "Moscow",
            "items": [
                {
                    "sku": sku,
                    "name": f"Product {sku}",
                    "size": "M",
                    "quantity": 1,
                    "price": price,
                    "image_url": f"https://img.example/{sku}.jpg",
                }
            ],
            "image_url": f"https://img.example/{sku}.jpg",
            "stars": 2,
            "text": "bad",
        }
    )


def fill(
    url: str, *, people: int, shops: int, notifications: int, pending: int, orders: int = 0, seed: int = 7
) -> None:
    """`orders`: per shop, over the last 60 days (what the dashboard and the order list read)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    joined = now - timedelta(days=60)
    with psycopg.connect(url) as conn:
        _copy(
            conn,
            "COPY people (id, telegram_id, username, time_zone) FROM STDIN",
            ((p, 10_000_000 + p, f"user{p}", "Europe/Moscow") for p in range(1, people + 1)),
        )
        _copy(conn, "COPY notification_settings (person_id) FROM STDIN", ((p,) for p in range(1, people + 1)))
        _copy(
            conn,
            "COPY shops (id, marketplace, name, status, currency, language) FROM STDIN",
            ((s, "wb", f"Shop {s}", "active", "RUB", "ru") for s in range(1, shops + 1)),
        )
        _copy(
            conn,
            "COPY memberships (shop_id, person_id, role, created_at) FROM STDIN",
            _memberships(people, shops, joined),
        )
        span = 30 * 86400 / notifications
        start = now - timedelta(days=30)
        _copy(
            conn,
            "COPY notifications (id, shop_id, kind, dedupe_key, payload, created_at) FROM STDIN",
            (
                (
                    i,
                    1 + i % shops,
                    KINDS[i % len(KINDS)],
                    f"bench:{i}",
                    _payload(i, rng).decode(),
                    start + timedelta(seconds=i * span),
                )
                for i in range(1, notifications + 1)
            ),
        )
        if orders:
            _copy(
                conn,
                "COPY orders (shop_id, external_id, status, total_amount, currency, bought_at, raw) FROM STDIN",
                (
                    (
                        s,
                        f"o{s}-{i}",
                        "paid",
                        rng.randint(300, 9000),
                        "RUB",
                        now - timedelta(minutes=rng.randint(0, 86400)),
                        "{}",
                    )
                    for s in range(1, shops + 1)
                    for i in range(orders)
                ),
            )
        # Identity columns were given explicit ids: move their sequences past them.
        for table in ("people", "shops", "notifications"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        # Cursor: `pending` notifications (of the person's own shops, roughly) before the newest one.
        per_shop_gap = shops  # consecutive ids of one shop are `shops` apart
        _copy(
            conn,
            "COPY delivery_cursors (person_id, last_notification_id) FROM STDIN",
            ((p, max(0, notifications - rng.randint(0, pending) * per_shop_gap)) for p in range(1, people + 1)),
        )
        conn.execute("ANALYZE")


def _memberships(people: int, shops: int, joined: datetime) -> Iterator[tuple[Any, ...]]:
    for p in range(1, people + 1):
        own = 1 + p % shops
        other = 1 + (p * 7 + 3) % shops
        yield own, p, "owner", joined
        if other != own:
            yield other, p, "member", joined
