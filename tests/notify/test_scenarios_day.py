"""One sandbox day, synced every 15 minutes, checked from several sides (read-only tests).

See test_scenarios.py for how notifications are compared with the sandbox's transitions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from storage import outbox
from storage.models import Membership
from storage.settings_repo import update_settings
from tests.flows.conftest import clients_for, make_sandbox
from tests.notify.scenario import assert_exact, expected, notify_from, run_day, stored


@pytest.fixture(scope="module")
async def day(engine: Engine):
    """One sandbox day (24 h, a sync every 15 min) shared by the read-only tests below."""
    app = make_sandbox(scenario="lively")
    async with clients_for(app) as clients:
        shops = await run_day(engine, app, steps=96, step=900, clients=clients)
    yield engine, app.state.world, shops
    from storage.models import Base

    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


def test_a_normal_day(day) -> None:
    engine, world, shops = day
    assert_exact(engine, world, shops)
    with Session(engine) as s:
        kinds = {k for (k,) in s.execute(text("SELECT DISTINCT kind FROM notifications"))}
    assert {"new_order", "cancellation", "buyout", "negative_review", "critical_stock"} <= kinds


def test_stock_moved_between_warehouses_is_silent(day) -> None:
    engine, world, shops = day
    for name, shop_id in shops.items():
        model = world.wb[name].stock if name in world.wb else world.allegro[name].stock
        since = notify_from(engine, shop_id).timestamp()
        transfers = [m for m in model.moves if m.kind == "transfer" and m.at > since]
        if name.startswith("wb"):
            assert transfers, f"{name}: the day had no transfer to check"
        # Exactly the sandbox's crossings, of which transfers make none.
        want = expected(world, name, notify_from(engine, shop_id), world.now_dt())
        got = stored(engine, shop_id)
        assert {e for e in got if e[0] == "critical_stock"} == {e for e in want if e[0] == "critical_stock"}


def test_multi_item_basket_is_one_message(day) -> None:
    engine, world, shops = day
    with Session(engine) as s:
        baskets = s.execute(
            text(
                # A basket the order feed saw first has no gNumber yet: its `basket_key` groups it.
                "SELECT coalesce(n.payload->>'basket_id', n.payload->>'basket_key'), array_agg(n.id ORDER BY n.id) "
                "FROM notifications n "
                "WHERE n.shop_id = :shop AND n.kind = 'new_order' GROUP BY 1 HAVING count(*) > 1"
            ),
            {"shop": shops["wb1"]},
        ).all()
        assert baskets, "the day had no multi-item basket"
        owner = s.scalar(select(Membership.person_id).where(Membership.shop_id == shops["wb1"]))
        update_settings(s, person_id=owner, values={"grouping_enabled": False})
        items, after = [], 0
        while True:
            page = outbox.poll(s, person_id=owner, after=after, limit=200, now=datetime.now(UTC) + timedelta(hours=1))
            items += page.items
            if page.next_cursor == after:
                break
            after = page.next_cursor
        s.rollback()
    by_ids = {tuple(i.notification_ids): i for i in items}
    for basket, ids in baskets:
        item = by_ids[tuple(ids)]
        assert item.text.count("• ") == len(ids) and (basket.startswith("feed:") or basket in item.text)


def test_review_answered_after_it_arrived_notifies_once(day) -> None:
    engine, world, shops = day
    with Session(engine) as s:
        rows = s.execute(
            text(
                "SELECT r.external_id, count(n.id) FROM reviews r JOIN notifications n "
                "ON n.shop_id = r.shop_id AND n.kind = 'negative_review' "
                "AND n.dedupe_key = r.shop_id || :kind || r.external_id || :new "
                "WHERE r.shop_id = :shop AND r.is_answered GROUP BY 1"
            ),
            {"shop": shops["wb1"], "kind": ":negative_review:", "new": ":new"},
        ).all()
    assert rows, "no review of the day was answered later"
    assert all(count == 1 for _, count in rows)
