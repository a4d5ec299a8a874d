"""Allegro order merges: several purchases of one buyer paid together become one new checkout form.

What the real API does (allegro-api issues 1111, 1705, 2172, 2774, 2829, 8898, 10406, 12888):
the buyer makes separate purchases (each its own checkout form, BOUGHT / FILLED_IN), then pays
for them together. Allegro then creates a NEW checkout-form id carrying the old forms' line
items (same `lineItem.id`s, each with its own `boughtAt`), in READY_FOR_PROCESSING; the journal
gets a READY_FOR_PROCESSING event pointing at the new id, the old forms' BOUGHT / FILLED_IN
events stay as they were, and the old ids are deleted: `GET /order/checkout-forms/{old}` answers
404 and the listing shows only the new form. Nothing in the new form names the old ids: the
shared `lineItem.id`s are the only link.

Two sources of merges, both deterministic by seed:

* natural: a share of forms (`ShopSpec.allegro_merge_share`) lead a group of 2 or 3 consecutive
  forms (the same buyer); the group's earlier forms are never paid on their own, and when the
  last one would be paid (+10 min after it was bought) the merged form appears in its place
  and goes on as that form would have (processing, sent, ...), under the new id;
* forced (operator API, `World.merge_allegro`): any unpaid, uncancelled forms, merged now.

Index arithmetic only: a merge never materialises the shop (see streams.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sandbox.hashing import u01, uuid_for


@dataclass(frozen=True)
class Merge:
    members: tuple[int, ...]  # form indices, oldest first; the last one goes on as the new form
    at: int  # when the buyer paid them together: the new form exists from then on
    new_id: str
    forced: bool = False

    @property
    def last(self) -> int:
        return self.members[-1]


class MergePlan:
    def __init__(
        self,
        seed: int,
        stream: int,
        share: float,
        in_range: Callable[[int], bool],
        paid_at: Callable[[int], int],
    ) -> None:
        self.seed, self.stream, self.share = seed, stream, share
        self.in_range, self.paid_at = in_range, paid_at
        self.forced: dict[int, Merge] = {}  # member index -> its forced merge
        self.forced_list: list[Merge] = []  # in time order
        self._natural: dict[int, Merge | None] = {}

    @property
    def active(self) -> bool:
        return self.share > 0 or bool(self.forced_list)

    def _r(self, k: int) -> bool:
        return k >= 0 and u01(self.seed, self.stream, k, 15) < self.share

    def _size(self, k: int) -> int:
        return 2 if u01(self.seed, self.stream, k, 16) < 0.7 else 3

    def _leader(self, k: int) -> bool:
        # A leader's group is the next 1-2 forms: no leader within two before it, so groups never overlap.
        return self._r(k) and not self._r(k - 1) and not self._r(k - 2) and self.in_range(k + self._size(k) - 1)

    def natural(self, k: int) -> Merge | None:
        if self.share <= 0:
            return None
        if k not in self._natural:
            self._natural[k] = self._find(k)
        return self._natural[k]

    def _find(self, k: int) -> Merge | None:
        for d in (0, 1, 2):
            lead = k - d
            if lead >= 0 and self._leader(lead) and d < self._size(lead):
                members = tuple(range(lead, lead + self._size(lead)))
                last = members[-1]
                return Merge(members, self.paid_at(last), uuid_for(self.seed, self.stream, last, 16))
        return None

    def of(self, k: int) -> Merge | None:
        return self.forced.get(k) or self.natural(k)

    def add_forced(self, members: tuple[int, ...], at: int) -> Merge:
        last = members[-1]
        merge = Merge(members, at, uuid_for(self.seed, self.stream, last, 17), forced=True)
        for k in members:
            self.forced[k] = merge
        self.forced_list.append(merge)
        return merge
