from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import Order, OrderLine, Shop, Stock, StockHistory
from storage.stock import add_snapshot_page, merge_snapshot
from storage.upserts import insert_allegro_events, upsert_orders

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _shop(session: Session) -> int:
    shop = Shop(marketplace="wb", name="s")
    session.add(shop)
    session.flush()
    return shop.id


def _order(srid: str, *, at: datetime = T0, cancelled: bool = False, price: str = "100.00") -> dict:
    return {
        "external_id": srid,
        "basket_id": "G1",
        "status": "cancelled" if cancelled else "new",
        "marketplace_status": None,
        "fulfillment_status": None,
        "is_cancelled": cancelled,
        "total_amount": Decimal(price),
        "currency": "RUB",
        "bought_at": T0,
        "source_updated_at": at,
        "cancelled_at": at if cancelled else None,
        "revision": None,
        "raw": {"srid": srid, "lastChangeDate": at.isoformat(), "isCancel": cancelled, "priceWithDisc": price},
        "lines": [{"line_key": "1", "sku": "42", "name": "Shirt", "size": "M", "quantity": 1, "price": Decimal(price)}],
    }


def test_insert_then_identical_then_newer_then_stale(session: Session) -> None:
    shop = _shop(session)
    first = upsert_orders(session, shop_id=shop, rows=[_order("a"), _order("b")])
    assert (first.inserted, first.updated, first.unchanged, first.stale) == (2, 0, 0, 0)
    assert all(c.is_new for c in first.changes)

    again = upsert_orders(session, shop_id=shop, rows=[_order("a"), _order("b")])
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    assert again.changes == []

    later = T0 + timedelta(hours=1)
    newer = upsert_orders(session, shop_id=shop, rows=[_order("a", at=later, cancelled=True)])
    assert newer.updated == 1
    (change,) = newer.changes
    assert change.old["is_cancelled"] is False and change.new["is_cancelled"] is True
    assert change.old["source_updated_at"] == T0

    stale = upsert_orders(session, shop_id=shop, rows=[_order("a", at=T0, cancelled=False)])
    assert (stale.stale, stale.updated, stale.changes) == (1, 0, [])
    stored = session.scalars(select(Order).where(Order.external_id == "a")).one()
    assert stored.is_cancelled is True


def test_duplicate_keys_in_one_batch_keep_the_newest(session: Session) -> None:
    shop = _shop(session)
    later = T0 + timedelta(minutes=5)
    result = upsert_orders(session, shop_id=shop, rows=[_order("a", at=later, price="7.00"), _order("a", at=T0)])
    assert result.inserted == 1
    assert result.changes[0].new["total_amount"] == Decimal("7.00")
    assert session.scalar(select(Order.total_amount).where(Order.external_id == "a")) == Decimal("7.00")


def test_lines_are_replaced_with_the_order(session: Session) -> None:
    shop = _shop(session)
    upsert_orders(session, shop_id=shop, rows=[_order("a")])
    upsert_orders(session, shop_id=shop, rows=[_order("a", at=T0 + timedelta(hours=1), price="120.00")])
    lines = session.scalars(select(OrderLine)).all()
    assert [(line.line_key, line.price) for line in lines] == [("1", Decimal("120.00"))]


def test_events_are_stored_once(session: Session) -> None:
    shop = _shop(session)
    event = {
        "event_id": "100",
        "type": "BOUGHT",
        "occurred_at": T0,
        "checkout_form_id": "f",
        "revision": "r",
        "raw": {"id": "100"},
    }
    assert insert_allegro_events(session, shop_id=shop, rows=[event, event]).inserted == 1
    assert insert_allegro_events(session, shop_id=shop, rows=[event]).inserted == 0


def _snapshot(session: Session, shop: int, sid: str, rows: list[tuple[str, str, int]]):
    add_snapshot_page(
        session, snapshot_id=sid, shop_id=shop, rows=[{"sku": s, "warehouse": w, "quantity": q} for s, w, q in rows]
    )
    return merge_snapshot(session, snapshot_id=sid, shop_id=shop)


def _history(session: Session) -> list[tuple[str, str, int]]:
    rows = session.execute(
        select(StockHistory.sku, StockHistory.warehouse, StockHistory.quantity).order_by(StockHistory.id)
    )
    return [tuple(r) for r in rows]


def test_stock_snapshot_history_only_on_change_and_moves_keep_totals(session: Session) -> None:
    shop = _shop(session)
    first = _snapshot(session, shop, "s1", [("p1", "A", 10), ("p1", "B", 5), ("p2", "A", 3)])
    assert {(t.sku, t.old_total, t.new_total) for t in first.totals} == {("p1", None, 15), ("p2", None, 3)}
    assert len(_history(session)) == 3

    same = _snapshot(session, shop, "s2", [("p1", "A", 10), ("p1", "B", 5), ("p2", "A", 3)])
    assert (same.rows_changed, same.totals) == (0, [])
    assert len(_history(session)) == 3

    moved = _snapshot(session, shop, "s3", [("p1", "A", 4), ("p1", "B", 11), ("p2", "A", 3)])
    assert moved.rows_changed == 2 and moved.totals == []  # 15 stays 15: no alert material

    sold = _snapshot(session, shop, "s4", [("p1", "A", 4), ("p1", "B", 9)])  # p2 gone from the report
    assert {(t.sku, t.old_total, t.new_total) for t in sold.totals} == {("p1", 15, 13), ("p2", 3, 0)}
    assert _history(session)[-2:] == [("p1", "B", 9), ("p2", "A", 0)]
    current = session.execute(select(Stock.sku, Stock.warehouse, Stock.quantity).order_by(Stock.sku, Stock.warehouse))
    assert [tuple(r) for r in current] == [("p1", "A", 4), ("p1", "B", 9)]
    assert session.scalar(select(func.count()).select_from(StockHistory)) == 7
