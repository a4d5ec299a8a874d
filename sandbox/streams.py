"""Lazy, time-ordered change streams.

Every generated item (WB order row, Allegro checkout form, ...) has an index i
and an appearance time `appear(i)` that never decreases with i. Each kind of
later change (price filled in, cancelled, bought out, ...) happens a CONSTANT
delay after the appearance, for the items its predicate selects. So each kind
of change is itself a stream sorted by i, and a heap merge of a handful of
streams yields every change in time order, starting anywhere, in O(1) memory.
That is what lets a 1,000,000-row shop page through `lastChangeDate` or the
Allegro event journal without ever materialising the shop.

Ties are ordered by (time, tag, index); the Allegro event id encodes exactly
that tuple, so a cursor can be decoded back into a resume position.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sandbox.scenario import TimeLayout


@dataclass(frozen=True)
class Change:
    tag: int  # orders ties; unique per timeline
    row: str  # which row this change updates (its latest change wins)
    delay: int  # seconds after appear(i)
    applies: Callable[[int], bool]


ChangeAt = tuple[int, int, int]  # (time, tag, index)


class Timeline:
    def __init__(self, layout: TimeLayout, appear: Callable[[int], int], changes: list[Change]) -> None:
        self.layout = layout
        self.appear = appear
        self.changes = {c.tag: c for c in changes}

    # -- index arithmetic -------------------------------------------------
    def in_range(self, i: int) -> bool:
        return i >= 0 and (self.layout.count is None or i < self.layout.count)

    def first_index_at(self, t: float) -> int:
        """Smallest i with appear(i) >= t (may be past the end)."""
        lay = self.layout
        i = max(0, int((t - lay.start) / lay.step) - 6)
        if lay.count is not None:
            i = min(i, lay.count)  # a non-live shop ends: never guess past it
        while i > 0 and self.appear(i - 1) >= t:
            i -= 1
        while self.in_range(i) and self.appear(i) < t:
            i += 1
        return i

    def count_by(self, t: float) -> int:
        """How many items appeared at or before `t`. Appearance times are whole seconds and sandbox
        time is not (`--speed`, scaled runs): an item due at second 101 is not there at 100.5."""
        return self.first_index_at(math.floor(t) + 1)

    def indices_appearing(self, t_from: float, t_to: float) -> range:
        """Indices with t_from <= appear(i) <= t_to."""
        lo = self.first_index_at(t_from)
        hi = self.count_by(t_to)
        return range(lo, max(lo, hi))

    # -- changes ----------------------------------------------------------
    def change_time(self, tag: int, i: int) -> int:
        return self.appear(i) + self.changes[tag].delay

    def _next_valid(self, change: Change, i: int, now: float) -> int | None:
        while self.in_range(i):
            if self.appear(i) + change.delay > now:
                return None
            if change.applies(i):
                return i
            i += 1
        return None

    def changes_between(
        self, t_from: float, now: float, after: ChangeAt | None = None, tags: set[int] | None = None
    ) -> Iterator[ChangeAt]:
        """All changes with t_from <= time <= now (and > `after`), time-ordered."""
        heap: list[ChangeAt] = []
        for change in self.changes.values():
            if tags is not None and change.tag not in tags:
                continue
            start = max(t_from, after[0] if after else t_from)
            i = self.first_index_at(start - change.delay)
            while after is not None and self.in_range(i) and (self.appear(i) + change.delay, change.tag, i) <= after:
                i += 1
            j = self._next_valid(change, i, now)
            if j is not None:
                heapq.heappush(heap, (self.appear(j) + change.delay, change.tag, j))
        while heap:
            item = heapq.heappop(heap)
            yield item
            change = self.changes[item[1]]
            j = self._next_valid(change, item[2] + 1, now)
            if j is not None:
                heapq.heappush(heap, (self.appear(j) + change.delay, change.tag, j))

    def is_latest(self, tag: int, i: int, now: float) -> bool:
        """Is this change the latest one of its row at `now`?"""
        mine = self.changes[tag]
        t = self.appear(i) + mine.delay
        for other in self.changes.values():
            if other.row != mine.row or other.tag == tag:
                continue
            t2 = self.appear(i) + other.delay
            if (t2, other.tag) > (t, tag) and t2 <= now and other.applies(i):
                return False
        return True

    def applied(self, row: str, i: int, now: float) -> list[Change]:
        """Changes of `row` that happened to item i by `now`, oldest first."""
        out = [c for c in self.changes.values() if c.row == row and self.appear(i) + c.delay <= now and c.applies(i)]
        return sorted(out, key=lambda c: (c.delay, c.tag))

    def latest_before(self, tag: int, now: float) -> int | None:
        """Index of the last change `tag` at or before now (for event-stats)."""
        change = self.changes[tag]
        i = self.count_by(now - change.delay) - 1
        if self.layout.count is not None:
            i = min(i, self.layout.count - 1)
        guard = 0
        while i >= 0 and guard < 100_000:
            if self.appear(i) + change.delay <= now and change.applies(i):
                return i
            i -= 1
            guard += 1
        return None
