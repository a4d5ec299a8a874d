"""Per-person decisions at delivery time (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sellerpulse.notify.delivery import Preferences, Stored, wants

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def item(kind: str, payload: dict[str, Any] | None = None, **kw: Any) -> Stored:
    return Stored(id=1, shop_id=1, kind=kind, payload=payload or {}, created_at=AT, **kw)


def test_master_switch_and_kind_toggles() -> None:
    assert wants(Preferences(), item("buyout"))
    assert not wants(Preferences(notifications_enabled=False), item("buyout"))
    assert not wants(Preferences(order_buyouts_enabled=False), item("buyout"))
    assert wants(Preferences(order_buyouts_enabled=False), item("return"))
    assert not wants(Preferences(), item("unknown_kind"))


@pytest.mark.parametrize(
    ("unpaid", "stage", "bought_exists", "expected"),
    [
        (False, "bought", False, False),
        (False, "paid", True, True),
        (False, "paid", False, True),
        (True, "bought", False, True),
        (True, "paid", True, False),  # had the bought one already
        (True, "paid", False, True),  # first seen paid: the only one there is
        (False, None, False, True),  # WB
        (True, None, False, True),
    ],
)
def test_allegro_exactly_one_new_order_message_per_person(
    unpaid: bool, stage: str | None, bought_exists: bool, expected: bool
) -> None:
    payload = {"stage": stage} if stage else {}
    assert (
        wants(Preferences(notify_unpaid_orders=unpaid), item("new_order", payload, bought_notified=bought_exists))
        is expected
    )


def test_unpaid_cancellation_only_for_people_who_heard_of_unpaid_orders() -> None:
    unpaid = item("cancellation", {"was_paid": False})
    assert not wants(Preferences(), unpaid)
    assert wants(Preferences(notify_unpaid_orders=True), unpaid)
    assert wants(Preferences(), item("cancellation", {"was_paid": True}))
    assert wants(Preferences(), item("cancellation", {}))


@pytest.mark.parametrize(
    ("stars", "threshold", "expected"), [(1, 3, True), (3, 3, True), (4, 3, False), (5, 5, True), (1, 0, False)]
)
def test_review_threshold(stars: int, threshold: int, expected: bool) -> None:
    pref = Preferences(review_rating_threshold=threshold)
    assert wants(pref, item("negative_review", {"stars": stars})) is expected


def test_review_without_stars_is_not_sent() -> None:
    assert not wants(Preferences(), item("negative_review", {}))


@pytest.mark.parametrize(
    ("old", "new", "threshold", "expected"),
    [
        (9, 3, 5, True),
        (9, 5, 5, True),
        (6, 6, 5, False),
        (9, 6, 5, False),
        (30, 15, 20, True),
        (30, 15, 5, False),
        (5, 0, 5, False),
    ],
)
def test_critical_stock_uses_the_persons_threshold(old: int, new: int, threshold: int, expected: bool) -> None:
    pref = Preferences(critical_stock_threshold=threshold)
    assert wants(pref, item("critical_stock", {"old_total": old, "new_total": new})) is expected


def test_runout_only_for_the_chosen_horizon() -> None:
    pref = Preferences(stock_horizon_days=7)
    assert wants(pref, item("stock_runout", {"horizon": 7}))
    assert not wants(pref, item("stock_runout", {"horizon": 14}))
    assert not wants(
        Preferences(stock_horizon_days=7, critical_stocks_enabled=False), item("stock_runout", {"horizon": 7})
    )


def test_owner_only_kinds() -> None:
    assert wants(Preferences(), item("shop_needs_reauth", role="owner"))
    assert not wants(Preferences(), item("shop_needs_reauth", role="member"))
    assert not wants(Preferences(), item("sync_failing", role="member"))


def test_preferences_from_row_ignore_nulls_and_unknown_columns() -> None:
    pref = Preferences.of({"max_group_size": 7, "language": None, "person_id": 3, "time_zone": "Europe/Warsaw"})
    assert pref.max_group_size == 7 and pref.language is None and pref.time_zone == "Europe/Warsaw"
