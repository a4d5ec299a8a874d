"""Linking merged Allegro forms by their shared line ids (storage.allegro_merges), on PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import allegro_merges
from storage.models import Order, Shop
from storage.upserts import upsert_orders

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _shop(session: Session, marketplace: str = "allegro") -> int:
    shop = Shop(marketplace=marketplace, name=f"s-{uuid.uuid4().hex[:6]}")
    session.add(shop)
    session.flush()
    return shop.id


def _form(form_id: str, lines: list[str], status: str = "FILLED_IN") -> dict:
    return {
        "external_id": form_id,
        "status": "paid" if status == "READY_FOR_PROCESSING" else "new",
        "marketplace_status": status,
        "is_cancelled": False,
        "total_amount": Decimal("10.00") * len(lines),
        "currency": "PLN",
        "bought_at": T0,
        "source_updated_at": T0,
        "raw": {"id": form_id, "lineItems": [{"id": k} for k in lines]},
        "lines": [{"line_key": k, "sku": "1", "quantity": 1} for k in lines],
    }


def _links(session: Session, shop_id: int) -> dict[str, str | None]:
    return dict(session.execute(select(Order.external_id, Order.merged_into).where(Order.shop_id == shop_id)).all())


def _ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def test_forms_whose_lines_live_on_under_a_bigger_form_are_linked_once(session: Session) -> None:
    shop = _shop(session)
    a, b, c = _ids(3)
    upsert_orders(session, shop_id=shop, rows=[_form("old1", [a]), _form("old2", [b, c]), _form("other", _ids(2))])
    written = upsert_orders(session, shop_id=shop, rows=[_form("new", [a, b, c], "READY_FOR_PROCESSING")])
    made = allegro_merges.link(session, shop_id=shop, external_ids=list(written.ids))
    assert made == {"old1": "new", "old2": "new"}
    assert _links(session, shop) == {"old1": "new", "old2": "new", "other": None, "new": None}
    assert allegro_merges.link(session, shop_id=shop, external_ids=["new"]) == {}  # idempotent
    links = allegro_merges.links_of(session, shop_id=shop, external_ids=["new", "old1"])
    assert links.into == {"old1": "new", "old2": "new"}
    assert links.parts["new"] == [{"id": "old1", "paid": False}, {"id": "old2", "paid": False}]
    backup = session.scalars(select(Order).where(Order.shop_id == shop, Order.external_id == "old2")).one()
    assert backup.raw["lineItems"] == [{"id": b}, {"id": c}]  # kept as it was


def test_an_old_form_written_after_its_merged_form_is_linked_too(session: Session) -> None:
    shop = _shop(session)
    a, b = _ids(2)
    upsert_orders(session, shop_id=shop, rows=[_form("new", [a, b], "READY_FOR_PROCESSING")])
    late = upsert_orders(session, shop_id=shop, rows=[_form("old", [a])])
    assert allegro_merges.link(session, shop_id=shop, external_ids=list(late.ids)) == {"old": "new"}


def test_a_form_merged_twice_names_the_last_one(session: Session) -> None:
    shop = _shop(session)
    a, b, c = _ids(3)
    upsert_orders(session, shop_id=shop, rows=[_form("first", [a])])
    upsert_orders(session, shop_id=shop, rows=[_form("second", [a, b])])
    allegro_merges.link(session, shop_id=shop, external_ids=["second"])
    upsert_orders(session, shop_id=shop, rows=[_form("third", [a, b, c], "READY_FOR_PROCESSING")])
    allegro_merges.link(session, shop_id=shop, external_ids=["third"])
    assert _links(session, shop) == {"first": "third", "second": "third", "third": None}


def test_equal_line_sets_other_shops_and_positional_keys_never_link(session: Session) -> None:
    shop, other = _shop(session), _shop(session)
    a, b = _ids(2)
    upsert_orders(session, shop_id=shop, rows=[_form("x", [a, b])])
    upsert_orders(session, shop_id=shop, rows=[_form("y", [a, b])])
    upsert_orders(session, shop_id=other, rows=[_form("z", [a])])
    upsert_orders(session, shop_id=shop, rows=[_form("p1", ["1"]), _form("p2", ["0", "1"])])
    for s, ids in ((shop, ["x", "y", "p1", "p2"]), (other, ["z"])):
        assert allegro_merges.link(session, shop_id=s, external_ids=ids) == {}
