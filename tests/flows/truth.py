"""Compare what sellerpulse stored with the sandbox's ground truth."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sandbox.catalog import WB_WAREHOUSES
from sandbox.world import World
from storage.models import Order, Review, Sale, Stock


def stored_orders(engine: Engine, shop_id: int) -> dict[str, dict[str, Any]]:
    with Session(engine) as s:
        return {o.external_id: o.raw for o in s.scalars(select(Order).where(Order.shop_id == shop_id))}


def stored_sales(engine: Engine, shop_id: int) -> dict[str, dict[str, Any]]:
    with Session(engine) as s:
        return {r.sale_id: r.raw for r in s.scalars(select(Sale).where(Sale.shop_id == shop_id))}


def stored_reviews(engine: Engine, shop_id: int) -> dict[str, bool]:
    with Session(engine) as s:
        return {r.external_id: r.is_answered for r in s.scalars(select(Review).where(Review.shop_id == shop_id))}


def stored_stock(engine: Engine, shop_id: int) -> dict[tuple[str, str, str], int]:
    with Session(engine) as s:
        rows = s.scalars(select(Stock).where(Stock.shop_id == shop_id, Stock.quantity != 0))
        return {(r.sku, r.size, r.warehouse): r.quantity for r in rows}


def wb_stock_truth(world: World, shop: str) -> dict[tuple[str, str, str], int]:
    names = {wid: name for wid, name, _region in WB_WAREHOUSES}
    return {(str(nm), str(chrt), names[wh]): q for (nm, chrt, wh), q in world.wb_stock(shop).items() if q}


def assert_wb_matches(engine: Engine, world: World, shop: str, shop_id: int) -> None:
    orders, truth = stored_orders(engine, shop_id), world.wb_orders(shop)
    assert sorted(orders) == sorted(truth), "WB orders missing or extra"
    stale = [k for k in truth if orders[k] != truth[k]]
    assert not stale, f"{len(stale)} WB order(s) not at their latest state, e.g. {stale[:3]}"
    sales, sales_truth = stored_sales(engine, shop_id), world.wb_sales(shop)
    assert sales == sales_truth
    reviews = stored_reviews(engine, shop_id)
    assert reviews == {k: bool(v.get("answer")) for k, v in world.wb_reviews(shop).items()}
    assert stored_stock(engine, shop_id) == wb_stock_truth(world, shop)


def merged_into(engine: Engine, shop_id: int) -> dict[str, str | None]:
    with Session(engine) as s:
        rows = s.execute(select(Order.external_id, Order.merged_into).where(Order.shop_id == shop_id))
        return dict(rows.all())


def assert_allegro_matches(engine: Engine, world: World, shop: str, shop_id: int) -> None:
    """Every form Allegro shows is stored at its latest state; the only others stored are forms
    merged into a newer one (Allegro answers 404 for them), kept and linked to it."""
    orders, truth = stored_orders(engine, shop_id), world.allegro_checkout_forms(shop)
    merges, links = world.allegro_merges(shop), merged_into(engine, shop_id)
    assert set(truth) <= set(orders), "Allegro orders missing"
    extra = set(orders) - set(truth)
    assert extra <= set(merges), f"Allegro orders extra: {sorted(extra - set(merges))[:3]}"
    unlinked = {k for k in extra if links[k] != merges[k]}
    assert not unlinked, f"merged Allegro orders not linked to their new form: {sorted(unlinked)[:3]}"
    assert not any(links[k] for k in truth), "a live Allegro order marked as merged"
    assert all(orders[k].get("id") == k and orders[k].get("lineItems") for k in extra), "a merged backup blanked"
    stale = [k for k in truth if orders[k] != truth[k]]
    assert not stale, f"{len(stale)} Allegro order(s) not at their latest state, e.g. {stale[:3]}"
    stock = {sku: q for (sku, _size, _wh), q in stored_stock(engine, shop_id).items()}
    assert stock == {oid: q for oid, q in world.allegro_stock(shop).items() if q}
