"""Named scenarios: which shops exist, how big and how lively they are.

A scenario only fixes sizes and rates; every row is generated lazily by the
models (`sandbox.wb.orders`, `sandbox.allegro.orders`, ...) as a pure function
of (seed, shop, index), so a 1,000,000-row shop costs no memory until read.

Time layout: the history starts `history_days` before the clock start; order
i appears at roughly `history_start + i * step` where
`step = history_days * 86400 / orders`. A `live` shop keeps generating orders
at the same step after the clock start (forever); a non-live shop stops at
`orders`. Stock and reviews follow the same rule.

Override sizes with `name:key=value,...`, e.g. `wb-1m:wb_orders=200000` or
`day:allegro_orders=30000,history_days=20`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class ShopSpec:
    name: str
    marketplace: str  # "wb" | "allegro"
    index: int  # stable per-scenario number, mixes into the seed
    orders: int  # orders generated over the history (WB order rows / Allegro forms)
    live: bool = False  # keep generating after the clock start
    products: int = 10
    reviews_per_order: float = 0.2  # WB reviews generated per order
    stock_step: float = 1800.0  # seconds between stock movements
    # Allegro: share of forms that start a group of 2-3 purchases paid together and merged into
    # a new checkout form (sandbox/allegro/merges.py).
    allegro_merge_share: float = 0.0


@dataclass(frozen=True)
class Scenario:
    name: str
    history_days: float
    shops: tuple[ShopSpec, ...]
    low_stock_level: int = 5  # product total crossing this level is a transition

    def shop(self, name: str) -> ShopSpec:
        for shop in self.shops:
            if shop.name == name:
                return shop
        raise KeyError(name)

    @property
    def wb_shops(self) -> tuple[ShopSpec, ...]:
        return tuple(s for s in self.shops if s.marketplace == "wb")

    @property
    def allegro_shops(self) -> tuple[ShopSpec, ...]:
        return tuple(s for s in self.shops if s.marketplace == "allegro")


def _wb(name: str, index: int, orders: int, **kw: object) -> ShopSpec:
    return ShopSpec(name=name, marketplace="wb", index=index, orders=orders, **kw)  # type: ignore[arg-type]


def _al(name: str, index: int, orders: int, **kw: object) -> ShopSpec:
    return ShopSpec(name=name, marketplace="allegro", index=index, orders=orders, **kw)  # type: ignore[arg-type]


SCENARIOS: dict[str, Scenario] = {
    # A handful of everything: fits in a test assertion message.
    "tiny": Scenario("tiny", 10.0, (_wb("wb1", 1, 40, products=4), _al("allegro1", 2, 25, products=4))),
    # Small and live: new orders keep coming as the clock runs (the demo).
    "lively": Scenario(
        "lively",
        3.0,
        (
            _wb("wb1", 1, 300, live=True, products=12, stock_step=900.0),
            _wb("wb2", 2, 120, live=True, products=6, stock_step=1200.0),
            _al("allegro1", 3, 200, live=True, products=10, stock_step=900.0, allegro_merge_share=0.04),
            _al("allegro2", 4, 80, live=True, products=5, stock_step=1200.0, allegro_merge_share=0.04),
        ),
    ),
    # Like lively, but busy at real speed (--speed 1): about one WB order a
    # minute and one Allegro order every two minutes, one day of history.
    "demo": Scenario(
        "demo",
        1.0,
        (
            _wb("wb1", 1, 1440, live=True, products=12, reviews_per_order=0.1, stock_step=300.0),
            _wb("wb2", 2, 144, live=True, products=6, stock_step=900.0),
            _al("allegro1", 3, 720, live=True, products=10, stock_step=300.0, allegro_merge_share=0.03),
            _al("allegro2", 4, 96, live=True, products=5, stock_step=900.0, allegro_merge_share=0.03),
        ),
    ),
    # A busy day's worth of shops with two months of history.
    "day": Scenario(
        "day",
        60.0,
        (_wb("wb1", 1, 20_000, products=60, reviews_per_order=0.05), _al("allegro1", 2, 5_000, products=40)),
    ),
    # Benchmarks.
    "wb-1m": Scenario(
        "wb-1m",
        85.0,
        (_wb("wb1", 1, 1_000_000, products=200, reviews_per_order=0.01), _al("allegro1", 2, 100, products=10)),
    ),
    "allegro-200k": Scenario(
        "allegro-200k",
        300.0,
        (_wb("wb1", 1, 100, products=10), _al("allegro1", 2, 200_000, products=200)),
    ),
    # Many small live shops (scale tests and benchmarks/scale): size it with wb_shops=N,allegro_shops=M.
    "fleet": Scenario(
        "fleet",
        2.0,
        (
            _wb("wb1", 1, 60, live=True, products=5, reviews_per_order=0.1, stock_step=1800.0),
            _al("allegro1", 2, 40, live=True, products=5, stock_step=1800.0),
        ),
    ),
}

_SCENARIO_KEYS = {
    "history_days",
    "wb_orders",
    "allegro_orders",
    "products",
    "low_stock_level",
    "live",
    "allegro_merges",
    "wb_shops",
    "allegro_shops",
}


def load_scenario(text: str) -> Scenario:
    """`name` or `name:key=value,...` (keys: history_days, wb_orders,
    allegro_orders, products, low_stock_level, live=0|1, allegro_merges=<share>, wb_shops,
    allegro_shops)."""
    name, _, overrides = text.partition(":")
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    scenario = SCENARIOS[name]
    for item in filter(None, (p.strip() for p in overrides.split(","))):
        key, _, raw = item.partition("=")
        if key not in _SCENARIO_KEYS:
            raise ValueError(f"unknown scenario override {key!r}")
        scenario = _override(scenario, key, raw)
    return scenario


def _override(scenario: Scenario, key: str, raw: str) -> Scenario:
    if key == "history_days":
        return replace(scenario, history_days=float(raw))
    if key == "low_stock_level":
        return replace(scenario, low_stock_level=int(raw))
    if key in ("wb_shops", "allegro_shops"):
        return _resize(scenario, key.removesuffix("_shops"), int(raw))
    shops: list[ShopSpec] = []
    for shop in scenario.shops:
        if key == "wb_orders" and shop.marketplace == "wb" or key == "allegro_orders" and shop.marketplace == "allegro":
            shop = replace(shop, orders=int(raw))
        elif key == "products":
            shop = replace(shop, products=int(raw))
        elif key == "live":
            shop = replace(shop, live=raw not in ("0", "false", "no"))
        elif key == "allegro_merges" and shop.marketplace == "allegro":
            shop = replace(shop, allegro_merge_share=float(raw))
        shops.append(shop)
    return replace(scenario, shops=tuple(shops))


def _resize(scenario: Scenario, marketplace: str, count: int) -> Scenario:
    """`count` shops of the marketplace, copies of its first one named wb1, wb2... (allegro1...),
    each with an index of its own (its own rows)."""
    if count < 0:
        raise ValueError(f"{marketplace}_shops must be 0 or more")
    model = next(s for s in scenario.shops if s.marketplace == marketplace)
    others = [s for s in scenario.shops if s.marketplace != marketplace]
    taken = {s.index for s in others}
    indexes = (i for i in range(1, 10 * (count + len(others)) + 2) if i not in taken)
    copies = [replace(model, name=f"{marketplace}{n}", index=next(indexes)) for n in range(1, count + 1)]
    return replace(scenario, shops=tuple(others + copies))


@dataclass(frozen=True)
class TimeLayout:
    """Where a shop's generated stream sits in time (integer epoch seconds)."""

    start: int  # history start
    step: float  # seconds between consecutive items
    count: int | None  # None: unbounded (live)
    extra: dict[str, float] = field(default_factory=dict)

    def index_upper(self, t: float) -> int:
        """An index bound: every item with time <= t has index < this."""
        if t < self.start:
            return 0
        n = int((t - self.start) / self.step) + 8
        return n if self.count is None else min(n, self.count)


def layout_for(shop: ShopSpec, history_start: int, history_days: float, per_order: float = 1.0) -> TimeLayout:
    count = max(1, round(shop.orders * per_order))
    step = history_days * 86400.0 / count
    return TimeLayout(start=history_start, step=step, count=None if shop.live else count)
