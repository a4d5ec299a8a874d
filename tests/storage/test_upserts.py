from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine, func, select, text
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
    # A report that changes nothing (merged without the diff tables) leaves no snapshot rows.
    left = text("SELECT count(*) FROM stock_snapshot_rows WHERE snapshot_id = 's2'")
    assert session.execute(left).scalar_one() == 0

    moved = _snapshot(session, shop, "s3", [("p1", "A", 4), ("p1", "B", 11), ("p2", "A", 3)])
    assert moved.rows_changed == 2 and moved.totals == []  # 15 stays 15: no alert material

    sold = _snapshot(session, shop, "s4", [("p1", "A", 4), ("p1", "B", 9)])  # p2 gone from the report
    assert {(t.sku, t.old_total, t.new_total) for t in sold.totals} == {("p1", 15, 13), ("p2", 3, 0)}
    assert _history(session)[-2:] == [("p1", "B", 9), ("p2", "A", 0)]
    current = session.execute(select(Stock.sku, Stock.warehouse, Stock.quantity).order_by(Stock.sku, Stock.warehouse))
    assert [tuple(r) for r in current] == [("p1", "A", 4), ("p1", "B", 9)]
    assert session.scalar(select(func.count()).select_from(StockHistory)) == 7


def test_a_batch_of_new_keys_is_copied_and_reported_new(session: Session) -> None:
    shop = _shop(session)
    result = upsert_orders(session, shop_id=shop, rows=[_order("a"), _order("b"), _order("a", price="5.00")])
    assert (result.inserted, result.updated, len(result.changes)) == (2, 0, 2)
    assert all(c.is_new for c in result.changes)
    stored = dict(session.execute(select(Order.external_id, Order.id)).all())
    assert result.ids == stored
    lines = session.execute(select(OrderLine.order_id, OrderLine.shop_id, OrderLine.sku)).all()
    assert sorted(lines) == sorted((stored[k], shop, "42") for k in ("a", "b"))


def test_a_key_stored_by_a_concurrent_writer_during_the_copy_falls_back_to_the_merge(clean_engine: Engine) -> None:
    """The writer that finds every key new COPYs them; if another writer stores one of those keys
    in between, the COPY waits for it, is refused by the unique index, and the batch is merged:
    the other writer's row is then the "old" side, and nothing is lost or reported twice."""
    with Session(clean_engine) as s, s.begin():
        shop = _shop(s)
    other = Session(clean_engine)
    other.begin()
    upsert_orders(other, shop_id=shop, rows=[_order("b")])  # not committed yet: invisible to our probe
    with ThreadPoolExecutor(1) as pool:

        def ours() -> tuple[int, int, int]:
            with Session(clean_engine) as s, s.begin():
                later = upsert_orders(s, shop_id=shop, rows=[_order("a"), _order("b", at=T0 + timedelta(hours=1))])
                return later.inserted, later.updated, len(later.changes)

        future = pool.submit(ours)
        _wait_until_blocked(clean_engine)  # our COPY now waits for the other writer's "b"
        other.commit()
        other.close()
        assert future.result(timeout=60) == (1, 1, 2)
    with Session(clean_engine) as s:
        rows = s.execute(select(Order.external_id, Order.source_updated_at).order_by(Order.external_id)).all()
        assert rows == [("a", T0), ("b", T0 + timedelta(hours=1))]
        assert s.scalar(select(func.count()).select_from(OrderLine)) == 2


def _wait_until_blocked(engine: Engine, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    query = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'COPY orders%'")
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.scalar(query):
                return
        time.sleep(0.05)  # polling, bounded by the deadline
    raise AssertionError("the second writer never waited for the first")


def test_lines_go_with_their_order_and_with_their_shop(session: Session) -> None:
    """order_lines has no foreign key to orders (0015: its per-line check cost a tuple lock on
    the order); a statement trigger deletes the lines of deleted orders, whichever way they go."""
    kept, gone = _shop(session), _shop(session)
    upsert_orders(session, shop_id=kept, rows=[_order("a"), _order("b")])
    upsert_orders(session, shop_id=gone, rows=[_order("c"), _order("d")])
    session.execute(text("DELETE FROM orders WHERE external_id = 'a'"))
    session.execute(text("DELETE FROM shops WHERE id = :id"), {"id": gone})  # orders go by their foreign key
    lines = session.execute(
        select(Order.external_id, OrderLine.sku).join(Order, Order.id == OrderLine.order_id, isouter=True)
    ).all()
    assert lines == [("b", "42")]  # no line of a deleted order is left, none of "b" is lost


def test_a_copied_order_keeps_its_payload_exactly(session: Session) -> None:
    shop = _shop(session)
    row = _order("a")
    row["raw"] = {
        **row["raw"],
        "subject": 'Футболка "X"',
        "nested": {"n": [1, 2.5, None, True]},
        "amount": Decimal("1.10"),
    }
    upsert_orders(session, shop_id=shop, rows=[row])
    stored = session.scalar(select(Order.raw))
    assert stored == {**row["raw"], "amount": "1.10"}  # Decimal as its exact string, as before
