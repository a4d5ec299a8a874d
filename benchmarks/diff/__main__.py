"""Cost of the notification diff per sync, as a ratio to the upsert it rides on.

    uv run python -m benchmarks.diff [--orders 80000] [--skus 100000] [--warehouses 50] [--repeat 3]

Two write paths, each in one transaction against a fresh, migrated PostgreSQL
(DATABASE_URL / TEST_DATABASE_URL, else an embedded pgserver):

- orders: one WB page of `--orders` rows through `storage.upserts.upsert_orders` (the
  upsert), then `storage.outbox.notify_changes` (the diff: rules, catalog lookup, outbox
  insert). Two pages: "all new" (a busy day's first sight of every row: one notification
  per row, the worst case) and "re-read" (the lookback window: same rows again with 5% newly
  cancelled and 5% changed otherwise).
- stock: a WB stock report of `--skus` SKUs spread over `--warehouses` warehouses (two
  warehouses per SKU) through `storage.stock` (pages COPYed, then one merge: the upsert),
  then `storage.outbox.notify_stock` (the diff: critical-stock and runout rules, members'
  thresholds, 30-day sales, per-warehouse rows, outbox insert). The second report changes
  8% of SKUs: 2% moved between warehouses (total unchanged, silent), 6% fall, a third of
  those crossing a threshold.

Ratio = diff / upsert (target: below 1). Each figure is the best of `--repeat` runs, every
run rolled back so each starts from the same state.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from sellerpulse.notify.drafts import ShopContext
from storage import migrate, outbox
from storage.stock import add_snapshot_page, merge_snapshot
from storage.upserts import upsert_orders
from tests.dbutil import fresh_database

NOW = datetime.now(UTC).replace(microsecond=0)
WAREHOUSES_PER_SKU = 2


def wb_order(i: int, *, skus: int, cancelled: bool = False, bump: int = 0) -> dict[str, Any]:
    sku = str(100_000 + i % skus)
    bought = NOW - timedelta(hours=2, seconds=i % 3600)
    price = Decimal(1000 + i % 997) + Decimal(bump)
    return {
        "external_id": f"srid-{i:09d}",
        "basket_id": f"g{i // 3}",
        "status": "cancelled" if cancelled else "new",
        "marketplace_status": None,
        "fulfillment_status": None,
        "is_cancelled": cancelled,
        "total_amount": price,
        "currency": "RUB",
        "bought_at": bought,
        "source_updated_at": bought + timedelta(minutes=1 + bump),
        "cancelled_at": bought + timedelta(minutes=30) if cancelled else None,
        "revision": None,
        "raw": {
            "srid": f"srid-{i:09d}",
            "gNumber": f"g{i // 3}",
            "nmId": int(sku),
            "warehouseName": f"Склад {i % 50}",
            "regionName": "Московская",
            "subject": "Платье",
            "techSize": "M",
            "priceWithDisc": str(price),
            "isCancel": cancelled,
        },
        "lines": [
            {
                "line_key": "1",
                "sku": sku,
                "name": "Платье",
                "size": "M",
                "quantity": 1,
                "price": price,
                "currency": "RUB",
            }
        ],
    }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def setup_shop(engine: Engine) -> ShopContext:
    with Session(engine) as s, s.begin():
        shop_id = s.execute(
            text(
                "INSERT INTO shops (marketplace, name, currency, language, notify_from) "
                "VALUES ('wb', 'bench', 'RUB', 'ru', :at) RETURNING id"
            ),
            {"at": NOW - timedelta(days=1)},
        ).scalar_one()
        for threshold in (5, 10, 20):
            pid = s.execute(
                text("INSERT INTO people (telegram_id) VALUES (:t) RETURNING id"), {"t": shop_id * 100 + threshold}
            ).scalar_one()
            s.execute(
                text("INSERT INTO notification_settings (person_id, critical_stock_threshold) VALUES (:p, :t)"),
                {"p": pid, "t": threshold},
            )
            s.execute(text("INSERT INTO memberships (shop_id, person_id) VALUES (:s, :p)"), {"s": shop_id, "p": pid})
        return outbox.shop_context(s, shop_id=shop_id)


def run_in_rollback(engine: Engine, body: Callable[[Session], tuple[float, float]], repeat: int) -> tuple[float, float]:
    best_upsert, best_diff = float("inf"), float("inf")
    for _ in range(repeat):
        with Session(engine) as s:
            s.begin()
            upsert, diff = body(s)
            s.rollback()
        best_upsert, best_diff = min(best_upsert, upsert), min(best_diff, diff)
    return best_upsert, best_diff


def orders_case(
    engine: Engine, shop: ShopContext, n: int, skus: int, repeat: int
) -> dict[str, tuple[float, float, int]]:
    first = [wb_order(i, skus=skus) for i in range(n)]
    rng = random.Random(1)
    reread = []
    for i in range(n):
        roll = rng.random()
        reread.append(
            wb_order(i, skus=skus, cancelled=True, bump=1)
            if roll < 0.05
            else wb_order(i, skus=skus, bump=1)
            if roll < 0.10
            else first[i]
        )
    out: dict[str, tuple[float, float, int]] = {}
    made = {"count": 0}

    def all_new(s: Session) -> tuple[float, float]:
        up, result = timed(lambda: upsert_orders(s, shop_id=shop.id, rows=first))
        diff, made["count"] = timed(
            lambda: outbox.notify_changes(s, shop=shop, stream="wb_orders", changes=result.changes, now=NOW)
        )
        return up, diff

    out["orders: all new"] = (*run_in_rollback(engine, all_new, repeat), made["count"])
    # The re-read starts from the first page committed, with no notifications from it.
    with Session(engine) as s, s.begin():
        upsert_orders(s, shop_id=shop.id, rows=first)

    def lookback(s: Session) -> tuple[float, float]:
        up, result = timed(lambda: upsert_orders(s, shop_id=shop.id, rows=reread))
        diff, made["count"] = timed(
            lambda: outbox.notify_changes(s, shop=shop, stream="wb_orders", changes=result.changes, now=NOW)
        )
        return up, diff

    out["orders: re-read, 5% cancelled"] = (*run_in_rollback(engine, lookback, repeat), made["count"])
    return out


def stock_rows(skus: int, warehouses: int, *, changed: bool) -> list[dict[str, Any]]:
    rng = random.Random(2)
    rows = []
    for k in range(skus):
        sku = str(100_000 + k)
        homes = rng.sample(range(warehouses), WAREHOUSES_PER_SKU)
        quantities = [rng.randint(4, 40), rng.randint(4, 40)]
        roll = rng.random()
        if changed and roll < 0.02:  # moved: one warehouse sends 3 to the other
            moved = min(3, quantities[0])
            quantities = [quantities[0] - moved, quantities[1] + moved]
        elif changed and roll < 0.04:  # falls across a threshold (5, 10 or 20 from above)
            quantities = [rng.randint(0, 2), rng.randint(0, 2)]
        elif changed and roll < 0.08:  # falls, no crossing needed
            quantities = [max(0, quantities[0] - 2), quantities[1]]
        for home, qty in zip(homes, quantities, strict=True):
            rows.append({"sku": sku, "size": "", "warehouse": f"Склад {home}", "quantity": qty})
    return rows


def stock_case(
    engine: Engine, shop: ShopContext, skus: int, warehouses: int, repeat: int
) -> dict[str, tuple[float, float, int]]:
    base, report = stock_rows(skus, warehouses, changed=False), stock_rows(skus, warehouses, changed=True)
    with Session(engine) as s, s.begin():
        add_snapshot_page(s, snapshot_id="base", shop_id=shop.id, rows=base)
        merge_snapshot(s, snapshot_id="base", shop_id=shop.id)
    made = {"count": 0}

    def body(s: Session) -> tuple[float, float]:
        def upsert() -> Any:
            for start in range(0, len(report), 50_000):  # report pages as the connector delivers them
                add_snapshot_page(s, snapshot_id="next", shop_id=shop.id, rows=report[start : start + 50_000])
            return merge_snapshot(s, snapshot_id="next", shop_id=shop.id)

        up, result = timed(upsert)
        diff, made["count"] = timed(lambda: outbox.notify_stock(s, shop=shop, totals=result.totals, now=NOW))
        return up, diff

    label = f"stock: {skus:,} SKUs x {WAREHOUSES_PER_SKU} of {warehouses} warehouses"
    return {label: (*run_in_rollback(engine, body, repeat), made["count"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=80_000)
    parser.add_argument("--skus", type=int, default=100_000)
    parser.add_argument("--warehouses", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, fresh_database(Path(tmp), prefix="sp_bench_diff") as url:
        engine = create_engine(url)
        migrate.upgrade(engine)
        shop = setup_shop(engine)
        results = orders_case(engine, shop, args.orders, args.skus, args.repeat)
        results |= stock_case(engine, shop, args.skus, args.warehouses, args.repeat)
        engine.dispose()
    print(f"{'case':<48} {'upsert s':>9} {'diff s':>8} {'ratio':>6} {'notifications':>14}")
    for label, (upsert, diff, made) in results.items():
        print(f"{label:<48} {upsert:>9.3f} {diff:>8.3f} {diff / upsert:>6.2f} {made:>14,}")


if __name__ == "__main__":
    main()
