"""Fill a migrated database with one big WB shop (and a few small ones) as statistics, the
sales report and the order feed leave it: orders over 90 days, buyouts and returns in
`wb_sales`, the last 31 days in `wb_feed_orders`, and a few units the feed shows that
statistics do not list yet (placed in the last half hour). By COPY; seeded.

Shape of the big shop (what a status filter has to tell apart): ~10% cancelled, of the rest
~75% bought out (the sales report, and the feed for the last 31 days), ~8% of those returned;
the newest few days mostly not bought out yet.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg

TELEGRAM_ID = 777_000_001
FEED_ONLY = 40  # units the feed shows, statistics not yet


@dataclass(frozen=True)
class Filled:
    shop_id: int
    telegram_id: int
    orders: int


def _copy(conn: psycopg.Connection, sql: str, rows: Iterator[tuple[Any, ...]]) -> None:
    with conn.cursor() as cur, cur.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


def _raw(srid: str, nm: int, price: int, at: datetime) -> str:
    # About the size of a real statistics row.
    return orjson.dumps(
        {
            "date": at.isoformat(), "lastChangeDate": at.isoformat(), "warehouseName": "Koledino",
            "warehouseType": "WB", "countryName": "Russia", "oblastOkrugName": "Central",
            "regionName": "Moscow", "supplierArticle": f"art-{nm}", "nmId": nm, "barcode": f"20{nm}",
            "category": "Clothes", "subject": "T-shirt", "brand": "Brand", "techSize": "M",
            "totalPrice": price, "discountPercent": 10, "spp": 5, "finishedPrice": price,
            "priceWithDisc": price, "isCancel": False, "sticker": "", "gNumber": f"g{srid}", "srid": srid,
        }
    ).decode()  # fmt: skip


@dataclass(frozen=True)
class Unit:
    shop: int
    srid: str
    at: datetime
    price: int
    cancelled: bool
    bought_out: datetime | None
    returned: datetime | None


def _units(shop: int, n: int, now: datetime, rng: random.Random) -> Iterator[Unit]:
    for i in range(n):
        at = now - timedelta(seconds=rng.randint(1800, 90 * 86400))
        age_days = (now - at).total_seconds() / 86400
        cancelled = rng.random() < 0.10
        bought = None
        if not cancelled and rng.random() < 0.75 * min(1.0, age_days / 5):
            bought = at + timedelta(days=min(age_days * 0.9, rng.uniform(1, 5)))
        returned = None
        if bought is not None and rng.random() < 0.08:
            returned = bought + (now - bought) * rng.random()
        yield Unit(shop, f"s{shop}-{i}", at, rng.randint(300, 9000), cancelled, bought, returned)


def fill(url: str, *, orders: int, small_shops: int = 2, small_orders: int = 20_000, seed: int = 11) -> Filled:
    """The big shop is shop 1, owned by TELEGRAM_ID; the small ones belong to nobody we ask for."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    shops = [(1, orders)] + [(2 + k, small_orders) for k in range(small_shops)]
    units = [u for shop, n in shops for u in _units(shop, n, now, rng)]
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO people (telegram_id, username, time_zone) VALUES (%s, 'bench', 'Europe/Moscow')",
                     (TELEGRAM_ID,))  # fmt: skip
        _copy(
            conn,
            "COPY shops (id, marketplace, name, status, currency, language) FROM STDIN",
            ((s, "wb", f"Shop {s}", "active", "RUB", "ru") for s, _ in shops),
        )
        conn.execute(
            "INSERT INTO memberships (shop_id, person_id, role)"
            " SELECT 1, id, 'owner' FROM people WHERE telegram_id = %s",
            (TELEGRAM_ID,),
        )
        _copy(
            conn,
            "COPY orders (shop_id, external_id, basket_id, status, is_cancelled, total_amount, currency, bought_at,"
            " source_updated_at, cancelled_at, raw) FROM STDIN",
            (
                (u.shop, u.srid, f"g{u.srid}", "cancelled" if u.cancelled else "new", u.cancelled, u.price, "RUB",
                 u.at, u.at, u.at + timedelta(hours=2) if u.cancelled else None,
                 _raw(u.srid, 100 + i % 5000, u.price, u.at))
                for i, u in enumerate(units)
            ),
        )  # fmt: skip
        _copy(conn, "COPY wb_sales (shop_id, sale_id, srid, kind, sku, amount, currency, sold_at, source_updated_at,"
              " raw) FROM STDIN", _sales(units))  # fmt: skip
        _copy(conn, "COPY wb_feed_orders (shop_id, srid, status, cancel_type, status_at, ordered_at, sku, price,"
              " currency, is_fbs, source_updated_at, raw) FROM STDIN", _feed(units, now, rng))  # fmt: skip
        conn.execute("ANALYZE")
    return Filled(shop_id=1, telegram_id=TELEGRAM_ID, orders=orders)


def _sales(units: list[Unit]) -> Iterator[tuple[Any, ...]]:
    for i, u in enumerate(units):
        if u.bought_out is not None:
            yield u.shop, f"S{i}", u.srid, "buyout", "100", u.price, "RUB", u.bought_out, u.bought_out, "{}"
        if u.returned is not None:
            yield u.shop, f"R{i}", u.srid, "return", "100", -u.price, "RUB", u.returned, u.returned, "{}"


def _feed_row(shop: int, srid: str, status: str, at: datetime, ordered: datetime, price: int) -> tuple[Any, ...]:
    raw = orjson.dumps({"srid": srid, "status": status, "nmId": 100}).decode()
    cancel_type = "app" if status == "cancel" else None
    return shop, srid, status, cancel_type, at, ordered, "100", price, "RUB", False, at, raw


def _feed(units: list[Unit], now: datetime, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    since = now - timedelta(days=31)
    for u in units:
        if u.returned is not None and u.returned >= since:
            yield _feed_row(u.shop, u.srid, "return", u.returned, u.at, u.price)
        elif u.bought_out is not None and u.bought_out >= since:
            yield _feed_row(u.shop, u.srid, "buyout", u.bought_out, u.at, u.price)
        elif u.cancelled and u.at >= since:
            yield _feed_row(u.shop, u.srid, "cancel", u.at + timedelta(hours=2), u.at, u.price)
        elif u.at >= since:
            yield _feed_row(u.shop, u.srid, "created", u.at, u.at, u.price)
    for k in range(FEED_ONLY):  # placed in the last half hour: statistics have not listed them yet
        at = now - timedelta(seconds=rng.randint(0, 1799))
        yield _feed_row(1, f"feed-only-{k}", "cancel" if k % 10 == 0 else "created", at, at, rng.randint(300, 9000))
