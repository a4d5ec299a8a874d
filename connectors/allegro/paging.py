"""Paging state for Allegro reads (pure logic, tested without HTTP).

* :class:`EventJournalPaginator`: ``/order/events`` and ``/sale/offer-events`` from a
  cursor (the id of the last event processed), until a short page says we caught up.
* :class:`ListingPlan`: the ``/order/checkout-forms`` listing over a time window. The
  API refuses ``offset + limit > 10000``, so a window holding more orders than that is
  split into sub-windows (sized from its ``totalCount``) until each fits. Windows are
  read oldest first, and ids already delivered are dropped: orders on a boundary
  instant fall in two windows, and orders move between pages while they change. Only the ids
  of the window being read and of the one before it are kept (a window's sub-windows count
  as it): a 200,000-order history does not hold 200,000 ids.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from connectors.errors import PayloadError

OFFSET_CAP = 10_000  # offset + limit must stay at or under this
LISTING_LIMIT = 100
JOURNAL_LIMIT = 1000
_FILL = 0.8  # aim sub-windows at 80% of the cap: orders keep arriving while we read
_MIN_WIDTH = timedelta(milliseconds=1)  # Allegro times have millisecond precision


@dataclass
class EventJournalPaginator:
    from_id: str | None = None
    limit: int = JOURNAL_LIMIT
    has_next_page: bool = True
    _seen: set[str] = field(default_factory=set)

    def init_request(self) -> dict[str, str]:
        params = {"limit": str(self.limit)}
        self.update_request(params)
        return params

    def update_request(self, params: dict[str, str]) -> None:
        if self.from_id is not None:
            params["from"] = self.from_id

    def update_state(self, events: list[Any]) -> list[int]:
        """Advance the cursor to the last event; return positions of events not seen in this read."""
        if len(events) < self.limit:
            self.has_next_page = False  # a short page: caught up
        keep = []
        for i, event in enumerate(events):
            eid = event.get("id") if isinstance(event, dict) else None
            if eid is not None and eid in self._seen:
                continue  # the journal repeated itself across or within pages
            if eid is not None:
                self._seen.add(str(eid))
            keep.append(i)
        last = next((e.get("id") for e in reversed(events) if isinstance(e, dict) and e.get("id")), None)
        if last is not None:
            self.from_id = str(last)
        elif events:
            raise PayloadError("event page without a single event id: cannot advance the cursor")
        return keep


@dataclass(frozen=True)
class Window:
    """[since, until], both inclusive (Allegro's .gte/.lte); `group`: the window of the plan it
    was split from (its sub-windows share it)."""

    since: datetime
    until: datetime
    group: int = 0

    def split(self, parts: int) -> list[Window]:
        if self.until - self.since < _MIN_WIDTH * 2:
            raise PayloadError(
                f"more than {OFFSET_CAP} orders within {self.since.isoformat()}..{self.until.isoformat()}: "
                "cannot split the window further"
            )
        # Whole milliseconds: the filters are sent at millisecond precision.
        width_ms = (self.until - self.since) / _MIN_WIDTH
        step = _MIN_WIDTH * math.ceil(width_ms / parts)
        bounds = sorted({min(self.since + step * i, self.until) for i in range(parts)} | {self.until})
        # Adjacent windows share their boundary instant; dedupe removes the overlap.
        return [Window(a, b, self.group) for a, b in zip(bounds, bounds[1:], strict=False)]


def parts_needed(total: int) -> int:
    return max(2, math.ceil(total / (OFFSET_CAP * _FILL)))


@dataclass
class ListingPlan:
    """Windows still to read, oldest first, and the ids delivered by the current window group
    and the one before it (id -> group)."""

    pending: list[Window]
    limit: int = LISTING_LIMIT
    seen: dict[str, int] = field(default_factory=dict)
    splits: int = 0
    group: int = 0

    @classmethod
    def over(
        cls, since: datetime, until: datetime, limit: int = LISTING_LIMIT, *, max_width: timedelta | None = None
    ) -> ListingPlan:
        """[since, until] as one window, or as consecutive windows at most `max_width` wide."""
        if max_width is None or max_width <= timedelta(0) or until - since <= max_width:
            return cls([Window(since, until)], limit=limit)
        bounds = [since]
        while bounds[-1] + max_width < until:
            bounds.append(bounds[-1] + max_width)
        bounds.append(until)
        windows = [Window(a, b, i) for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False))]
        return cls(windows, limit=limit)

    def next_window(self) -> Window | None:
        if not self.pending:
            return None
        window = self.pending.pop(0)
        if window.group > self.group:
            # Windows are read in order: an order of a group before the previous one cannot
            # come again (only a boundary instant is shared, with the neighbour).
            self.group = window.group
            self.seen = {oid: g for oid, g in self.seen.items() if g >= window.group - 1}
        return window

    def fits(self, total: int) -> bool:
        return total <= OFFSET_CAP

    def split(self, window: Window, total: int) -> None:
        """Replace `window` by enough sub-windows that each should fit under the cap."""
        self.pending[:0] = window.split(parts_needed(total))
        self.splits += 1

    def offsets(self, total: int) -> list[int]:
        """Page offsets that read `total` rows without passing the cap."""
        last = min(total, OFFSET_CAP)
        return [o for o in range(0, last, self.limit) if o + self.limit <= OFFSET_CAP]

    def take_new(self, rows: list[Any]) -> list[int]:
        keep = []
        for i, row in enumerate(rows):
            oid = row.get("id") if isinstance(row, dict) else None
            if oid is not None and oid in self.seen:
                continue
            if oid is not None:
                self.seen[oid] = self.group
            keep.append(i)
        return keep
