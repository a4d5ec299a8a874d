"""Stock snapshots: current state per (sku, size, warehouse), plus history rows only on change.

A report is collected page by page into `stock_snapshot_rows` (each page its own short
transaction), then merged in one transaction: rows that changed get a history row, rows
missing from the report are gone (history records 0), and per-product totals before and
after are returned for the critical-stock rule. Stock moving between warehouses changes
rows but not totals, so it is visible to the rule as "no total change".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from storage.merge import copy_rows

SNAPSHOT_COLUMNS = (
    "snapshot_id",
    "shop_id",
    "sku",
    "size",
    "warehouse",
    "quantity",
    "in_way_to_client",
    "in_way_from_client",
)


@dataclass(frozen=True, slots=True)
class TotalChange:
    sku: str
    old_total: int | None  # None: the product had no stock rows before
    new_total: int


@dataclass
class StockMergeResult:
    rows_changed: int = 0
    history_rows: int = 0
    totals: list[TotalChange] = field(default_factory=list)


def add_snapshot_page(session: Session, *, snapshot_id: str, shop_id: int, rows: Iterable[dict[str, Any]]) -> None:
    copy_rows(
        session,
        table="stock_snapshot_rows",
        columns=SNAPSHOT_COLUMNS,
        rows=(
            (
                snapshot_id,
                shop_id,
                r["sku"],
                r.get("size") or "",
                r.get("warehouse") or "",
                r["quantity"],
                r.get("in_way_to_client"),
                r.get("in_way_from_client"),
            )
            for r in rows
        ),
    )


_MERGE = """
CREATE TEMP TABLE _stock_diff ON COMMIT DROP AS
WITH snap AS (
    SELECT sku, size, warehouse, sum(quantity)::int AS q,
           sum(in_way_to_client)::int AS itc, sum(in_way_from_client)::int AS ifc
    FROM stock_snapshot_rows WHERE snapshot_id = :sid GROUP BY sku, size, warehouse
), cur AS (
    SELECT sku, size, warehouse, quantity FROM stocks WHERE shop_id = :shop FOR UPDATE
)
SELECT coalesce(snap.sku, cur.sku) AS sku, coalesce(snap.size, cur.size) AS size,
       coalesce(snap.warehouse, cur.warehouse) AS warehouse,
       cur.quantity AS old_q, snap.q AS new_q, snap.itc, snap.ifc
FROM snap FULL JOIN cur ON snap.sku = cur.sku AND snap.size = cur.size AND snap.warehouse = cur.warehouse
WHERE cur.quantity IS DISTINCT FROM snap.q;

CREATE TEMP TABLE _stock_old_totals ON COMMIT DROP AS
SELECT sku, sum(quantity)::int AS total FROM stocks
WHERE shop_id = :shop AND sku IN (SELECT sku FROM _stock_diff) GROUP BY sku;

INSERT INTO stock_history (shop_id, sku, size, warehouse, quantity)
SELECT :shop, sku, size, warehouse, coalesce(new_q, 0) FROM _stock_diff
WHERE NOT (old_q IS NULL AND coalesce(new_q, 0) = 0) AND coalesce(old_q, -1) <> coalesce(new_q, 0);

DELETE FROM stocks s USING _stock_diff d
WHERE s.shop_id = :shop AND d.new_q IS NULL AND (s.sku, s.size, s.warehouse) = (d.sku, d.size, d.warehouse);

INSERT INTO stocks (shop_id, sku, size, warehouse, quantity, in_way_to_client, in_way_from_client)
SELECT :shop, sku, size, warehouse, new_q, itc, ifc FROM _stock_diff WHERE new_q IS NOT NULL
ON CONFLICT (shop_id, sku, size, warehouse) DO UPDATE
SET quantity = EXCLUDED.quantity, in_way_to_client = EXCLUDED.in_way_to_client,
    in_way_from_client = EXCLUDED.in_way_from_client, updated_at = now();

DELETE FROM stock_snapshot_rows WHERE snapshot_id = :sid;
"""

# Only products whose total changed: a move between warehouses leaves the total as it was.
_TOTALS = """
SELECT d.sku, o.total AS old_total, coalesce(n.total, 0)::int AS new_total
FROM (SELECT DISTINCT sku FROM _stock_diff) d
LEFT JOIN _stock_old_totals o USING (sku)
LEFT JOIN (
    SELECT sku, sum(quantity)::int AS total FROM stocks
    WHERE shop_id = :shop AND sku IN (SELECT sku FROM _stock_diff) GROUP BY sku
) n USING (sku)
WHERE o.total IS DISTINCT FROM coalesce(n.total, 0)
"""


# Does the report differ from the current state at all? `_MERGE`'s diff without its temporary
# tables (the current rows locked as it locks them). Most reports of a shop change nothing
# between two syncs; for those the merge is this and the snapshot's delete: 2 statements, not
# 10 with two temporary tables created and dropped (catalog writes on the server).
_CHANGED = """
WITH snap AS (
    SELECT sku, size, warehouse, sum(quantity)::int AS q
    FROM stock_snapshot_rows WHERE snapshot_id = :sid GROUP BY sku, size, warehouse
), cur AS (
    SELECT sku, size, warehouse, quantity FROM stocks WHERE shop_id = :shop FOR UPDATE
)
SELECT EXISTS (
    SELECT 1 FROM snap FULL JOIN cur
      ON snap.sku = cur.sku AND snap.size = cur.size AND snap.warehouse = cur.warehouse
    WHERE cur.quantity IS DISTINCT FROM snap.q
)
"""


def merge_snapshot(session: Session, *, snapshot_id: str, shop_id: int) -> StockMergeResult:
    """Make the collected report the current state; see the module docstring."""
    params = {"sid": snapshot_id, "shop": shop_id}
    conn = session.connection()
    if not conn.execute(text(_CHANGED), params).scalar_one():
        discard_snapshot(session, snapshot_id=snapshot_id)
        return StockMergeResult()
    for statement in filter(str.strip, _MERGE.split(";\n")):
        conn.execute(text(statement), params)
    result = StockMergeResult()
    result.rows_changed = conn.execute(text("SELECT count(*) FROM _stock_diff")).scalar_one()
    result.history_rows = conn.execute(
        text("SELECT count(*) FROM _stock_diff WHERE NOT (old_q IS NULL AND coalesce(new_q, 0) = 0)")
    ).scalar_one()
    result.totals = [TotalChange(*row) for row in conn.execute(text(_TOTALS), params)]
    conn.execute(text("DROP TABLE _stock_diff, _stock_old_totals"))
    return result


def discard_snapshot(session: Session, *, snapshot_id: str) -> None:
    session.execute(text("DELETE FROM stock_snapshot_rows WHERE snapshot_id = :sid"), {"sid": snapshot_id})


def warehouses_of(session: Session, *, shop_id: int, skus: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Current per-warehouse stock of some products (for rendering stock alerts)."""
    rows = session.execute(
        text(
            "SELECT sku, size, warehouse, quantity FROM stocks WHERE shop_id = :shop AND sku = ANY(:skus) "
            "ORDER BY sku, warehouse, size"
        ),
        {"shop": shop_id, "skus": list(skus)},
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for sku, size, warehouse, quantity in rows:
        out.setdefault(sku, []).append({"size": size, "warehouse": warehouse, "quantity": quantity})
    return out
