"""Whether one person wants one stored notification, decided with their settings at delivery time.

The outbox holds one row per shop event; fan-out happens when a person's bot polls, so a
setting changed a minute ago already applies to everything not yet delivered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sellerpulse.notify.drafts import OWNER_KINDS, Kind

# Settings column that switches each kind on or off (notification_settings).
TOGGLES = {
    Kind.new_order.value: "new_orders_enabled",
    Kind.cancellation.value: "order_cancellations_enabled",
    Kind.buyout.value: "order_buyouts_enabled",
    Kind.return_.value: "order_returns_enabled",
    Kind.negative_review.value: "negative_reviews_enabled",
    Kind.critical_stock.value: "critical_stocks_enabled",
    Kind.stock_runout.value: "critical_stocks_enabled",
}


@dataclass(frozen=True, slots=True)
class Preferences:
    """A person's notification settings and profile (defaults as in the schema)."""

    notifications_enabled: bool = True
    new_orders_enabled: bool = True
    order_buyouts_enabled: bool = True
    order_cancellations_enabled: bool = True
    order_returns_enabled: bool = True
    negative_reviews_enabled: bool = True
    critical_stocks_enabled: bool = True
    notify_unpaid_orders: bool = False
    review_rating_threshold: int = 3
    critical_stock_threshold: int = 5
    stock_horizon_days: int = 3
    grouping_enabled: bool = True
    max_group_size: int = 5
    group_timeout: int = 300
    language: str | None = None
    time_zone: str = "UTC"

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Preferences:
        """From a row mapping; missing or NULL fields keep their defaults."""
        known = {k: v for k, v in values.items() if k in cls.__slots__ and v is not None}
        return cls(**known)


@dataclass(frozen=True, slots=True)
class Stored:
    """One outbox row as the poll sees it, with what delivery needs to know about its shop."""

    id: int
    shop_id: int
    kind: str
    payload: Mapping[str, Any]
    created_at: Any  # datetime
    role: str = "member"
    # For an Allegro `paid` new_order: whether its `bought` twin exists (the person who asked
    # for unpaid orders got that one instead).
    bought_notified: bool = False


def wants(pref: Preferences, item: Stored) -> bool:
    if not pref.notifications_enabled:
        return False
    if item.kind in OWNER_KINDS:
        return item.role == "owner"
    toggle = TOGGLES.get(item.kind)
    if toggle is None or not getattr(pref, toggle):
        return False
    check = _CHECKS.get(item.kind)
    return check(pref, item) if check else True


def _new_order(pref: Preferences, item: Stored) -> bool:
    stage = item.payload.get("stage")
    if stage == "bought":
        return pref.notify_unpaid_orders
    if stage == "paid":
        # Exactly one message per order: unpaid-order people had the `bought` one if it exists.
        return not (pref.notify_unpaid_orders and item.bought_notified)
    return True


def _cancellation(pref: Preferences, item: Stored) -> bool:
    # An Allegro order cancelled before payment was never announced to people who wait for payment.
    return pref.notify_unpaid_orders or item.payload.get("was_paid", True) is not False


def _review(pref: Preferences, item: Stored) -> bool:
    stars = _int(item.payload.get("stars"))
    threshold = pref.review_rating_threshold
    return threshold > 0 and stars is not None and stars <= threshold


def _critical_stock(pref: Preferences, item: Stored) -> bool:
    old, new = _int(item.payload.get("old_total")), _int(item.payload.get("new_total"))
    t = pref.critical_stock_threshold
    return old is not None and new is not None and old > t >= new


def _runout(pref: Preferences, item: Stored) -> bool:
    return _int(item.payload.get("horizon")) == pref.stock_horizon_days


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


_CHECKS = {
    Kind.new_order.value: _new_order,
    Kind.cancellation.value: _cancellation,
    Kind.negative_review.value: _review,
    Kind.critical_stock.value: _critical_stock,
    Kind.stock_runout.value: _runout,
}
