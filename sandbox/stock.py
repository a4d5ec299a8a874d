"""Stock over time: a deterministic simulation advanced with the clock.

Stock is a small state (products × sizes × warehouses), so unlike orders it
is simulated forward and cached: movement j happens at
`start + (j + 1) * step` and is one of

* sale (60 %): 1-3 units of a hashed SKU leave its fullest warehouse;
* restock (15 %): if some product total is under half the level, the
  lowest one gets 15-40 units (otherwise it is a sale);
* transfer (25 %): half of a SKU's units move from its fullest warehouse to
  another one; the product total does not change (no transition).

A product total crossing `level` downwards is a `stock_low` transition,
upwards `stock_recovered`. Orders and stock are not coupled (documented
simplification): stock is its own stream of movements.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sandbox.hashing import h64, randint, u01


@dataclass(frozen=True)
class StockSku:
    product: str  # WB nmId / Allegro offer id, as a string
    sku: str  # WB chrtId / Allegro offer id


@dataclass(frozen=True)
class StockMove:
    j: int
    at: int
    kind: str  # "sale" | "restock" | "transfer"
    deltas: tuple[tuple[int, int, int], ...]  # (sku index, warehouse index, delta)
    totals_after: tuple[int, ...] = ()  # product total after the move, per delta


@dataclass(frozen=True)
class StockCrossing:
    at: int
    product: str
    kind: str  # "stock_low" | "stock_recovered"
    total: int
    previous: int


class StockModel:
    def __init__(
        self, seed: int, stream: int, skus: list[StockSku], warehouses: int, start: int, step: float, level: int
    ) -> None:
        self.seed, self.stream = seed, stream
        self.skus, self.warehouses = skus, warehouses
        self.start, self.step, self.level = start, step, level
        top = max(3, 24 // warehouses)  # small shops: totals hover around the alert level
        self.qty = [[randint(seed, stream, s, w, 0, top) for w in range(warehouses)] for s in range(len(skus))]
        self.products = sorted({s.product for s in skus})
        self.initial = [row[:] for row in self.qty]
        # Product totals kept incrementally: restock picks the lowest total.
        self.totals: dict[str, int] = {p: 0 for p in self.products}
        for s_ix, sku in enumerate(skus):
            self.totals[sku.product] += sum(self.qty[s_ix])
        self.moves: list[StockMove] = []
        self.crossings: list[StockCrossing] = []
        self.sold = [0] * len(skus)
        self._next_j = 0
        self._lock = threading.Lock()

    def move_time(self, j: int) -> int:
        return self.start + int((j + 1) * self.step)

    def advance_to(self, now: float) -> None:
        with self._lock:
            while self.move_time(self._next_j) <= now:
                self._apply(self._next_j)
                self._next_j += 1

    def total(self, product: str) -> int:
        return self.totals[product]

    def _apply(self, j: int) -> None:
        x = u01(self.seed, self.stream, j, 100)
        if x < 0.6 or (x >= 0.75 and self.warehouses == 1):
            deltas = self._sale(j)
            kind = "sale"
        elif x < 0.75:
            # Restock only what runs low, so totals keep crossing the level.
            low = min(self.totals.values()) < max(1, self.level // 2)
            deltas, kind = (self._restock(j), "restock") if low else (self._sale(j), "sale")
        else:
            deltas, kind = self._transfer(j), "transfer"
        touched = {self.skus[s].product for s, _w, _d in deltas}
        before = {p: self.total(p) for p in touched}
        for s, w, d in deltas:
            self.qty[s][w] += d
            self.totals[self.skus[s].product] += d
            if kind == "sale":
                self.sold[s] -= d
        at = self.move_time(j)
        after = tuple(self.totals[self.skus[s].product] for s, _w, _d in deltas)
        self.moves.append(StockMove(j, at, kind, tuple(deltas), after))
        for p in sorted(touched):
            self._record_crossing(at, p, before[p], self.total(p))

    def _record_crossing(self, at: int, product: str, old: int, new: int) -> None:
        if old >= self.level > new:
            self.crossings.append(StockCrossing(at, product, "stock_low", new, old))
        elif old < self.level <= new:
            self.crossings.append(StockCrossing(at, product, "stock_recovered", new, old))

    def _fullest(self, s: int) -> int:
        row = self.qty[s]
        return max(range(self.warehouses), key=lambda w: (row[w], -w))

    def _sale(self, j: int) -> list[tuple[int, int, int]]:
        s = h64(self.seed, self.stream, j, 101) % len(self.skus)
        w = self._fullest(s)
        n = min(self.qty[s][w], randint(self.seed, self.stream, j, 102, 1, 3))
        return [(s, w, -n)] if n else []

    def _restock(self, j: int) -> list[tuple[int, int, int]]:
        product = min(self.products, key=lambda p: (self.totals[p], p))
        sku_ix = [s for s, sku in enumerate(self.skus) if sku.product == product]
        s = sku_ix[h64(self.seed, self.stream, j, 103) % len(sku_ix)]
        w = h64(self.seed, self.stream, j, 104) % self.warehouses
        return [(s, w, randint(self.seed, self.stream, j, 105, 15, 40))]

    def _transfer(self, j: int) -> list[tuple[int, int, int]]:
        s = h64(self.seed, self.stream, j, 106) % len(self.skus)
        src = self._fullest(s)
        dst = (src + 1 + h64(self.seed, self.stream, j, 107) % (self.warehouses - 1)) % self.warehouses
        n = (self.qty[s][src] + 1) // 2
        return [(s, src, -n), (s, dst, n)] if n else []
