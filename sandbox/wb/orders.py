"""WB statistics orders and sales, generated lazily.

Item i is one unit of goods (one order row, key `srid`). Items come in
baskets of 1-4 consecutive indices sharing `gNumber`, `date` and appearance
time. Changes after the appearance (constant delays, see `streams`):

* 30 % of rows appear with prices 0, filled in 8 h later;
* 10 % are cancelled 3 h later (`isCancel` true, a newer `lastChangeDate`);
* 75 % of the rest are bought out 2 days later (sale row `S...`); 30 % of
  those sale rows also start at price 0 and are filled in 8 h later;
* 12 % of buyouts are returned 9 days after the order (row `R...`,
  negative amounts).

12 % of baskets are late: `date` is 1-3 days before the row first appears
(its first `lastChangeDate`); the rest are 1-30 minutes late.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from sandbox.catalog import SELLER_WAREHOUSE, WB_WAREHOUSES, WbProduct
from sandbox.hashing import hasher
from sandbox.scenario import ShopSpec, TimeLayout
from sandbox.streams import Change, Timeline
from sandbox.timefmt import MSK, msk_naive

PRICE_FILL_DELAY = 8 * 3600
CANCEL_DELAY = 3 * 3600
SALE_DELAY = 2 * 86400
RETURN_DELAY = 9 * 86400
NOT_CANCELLED = "0001-01-01T00:00:00"

T_NEW, T_PRICE, T_CANCEL = 0, 1, 2
T_SALE, T_SALE_PRICE, T_RETURN = 3, 4, 5

_REGIONS = (
    ("Центральный федеральный округ", "Московская область"),
    ("Приволжский федеральный округ", "Республика Татарстан"),
    ("Северо-Западный федеральный округ", "Санкт-Петербург"),
    ("Сибирский федеральный округ", "Новосибирская область"),
)

# salts for independent per-item decisions
_S_START, _S_JIT, _S_LATE, _S_LATE2, _S_PROD, _S_SIZE = 1, 2, 3, 4, 5, 6
_S_ZERO, _S_CANCEL, _S_FBS, _S_BUY, _S_SZERO, _S_RET = 7, 8, 9, 10, 11, 12
_S_DISC, _S_SPP, _S_WH, _S_REG = 13, 14, 15, 16


class WbOrderModel:
    def __init__(self, seed: int, shop: ShopSpec, products: tuple[WbProduct, ...], layout: TimeLayout) -> None:
        self.seed = seed
        self.shop = shop
        self.products = products
        self.layout = layout
        self.stream = 0x3000 + shop.index
        self._h = hasher(seed, self.stream)  # h64(seed, stream, i, salt), faster
        # Bounded caches: neighbouring rows share baskets and times; memory stays flat (a row
        # asks for its own predicates within microseconds: 1,024 entries generate as fast as 16,384).
        self.appear = lru_cache(maxsize=16384)(self._appear)  # type: ignore[method-assign]
        # A row asks these several times (its basket, its timeline's predicates, its prices):
        # each is a seeded hash or three, dearer in Python integers than a cache probe.
        self.basket_start = lru_cache(maxsize=1024)(self.basket_start)  # type: ignore[method-assign]
        self.zero_price = lru_cache(maxsize=1024)(self.zero_price)  # type: ignore[method-assign]
        self.cancelled = lru_cache(maxsize=1024)(self.cancelled)  # type: ignore[method-assign]
        self.orders = Timeline(
            layout,
            self.appear,
            [
                Change(T_NEW, "order", 0, lambda i: True),
                Change(T_PRICE, "order", PRICE_FILL_DELAY, self.zero_price),
                Change(T_CANCEL, "order", CANCEL_DELAY, self.cancelled),
            ],
        )
        self.sales = Timeline(
            layout,
            self.appear,
            [
                Change(T_SALE, "sale", SALE_DELAY, self.bought_out),
                Change(T_SALE_PRICE, "sale", SALE_DELAY + PRICE_FILL_DELAY, self.sale_zero_price),
                Change(T_RETURN, "return", RETURN_DELAY, self.returned),
            ],
        )

    # -- per-item facts (pure functions of seed, shop, index) ---------------
    def _u(self, i: int, salt: int) -> float:
        return self._h(i, salt) / 18446744073709551616.0  # hashing.u01

    def basket_start(self, i: int) -> int:
        block = i - i % 4
        j = i
        while j > block and self._u(j, _S_START) >= 0.55:
            j -= 1
        return j

    def _appear(self, i: int) -> int:
        b = self.basket_start(i)
        return self.layout.start + int((b + 0.9 * self._u(b, _S_JIT)) * self.layout.step)

    def order_date(self, i: int) -> int:
        b = self.basket_start(i)
        late = (
            86400 + self._u(b, _S_LATE2) * 2 * 86400 if self._u(b, _S_LATE) < 0.12 else 60 + self._u(b, _S_LATE2) * 1740
        )
        return self.appear(i) - int(late)

    def zero_price(self, i: int) -> bool:
        return self._u(i, _S_ZERO) < 0.3

    def cancelled(self, i: int) -> bool:
        return self._u(i, _S_CANCEL) < 0.1

    def fbs(self, i: int) -> bool:
        return self._u(i, _S_FBS) < 0.15

    def bought_out(self, i: int) -> bool:
        return not self.cancelled(i) and self._u(i, _S_BUY) < 0.75

    def sale_zero_price(self, i: int) -> bool:
        return self.bought_out(i) and self._u(i, _S_SZERO) < 0.3

    def returned(self, i: int) -> bool:
        return self.bought_out(i) and self._u(i, _S_RET) < 0.12

    def product(self, i: int) -> tuple[WbProduct, int]:
        p = self.products[self._h(i, _S_PROD) % len(self.products)]
        return p, self._h(i, _S_SIZE) % len(p.sizes)

    def srid(self, i: int) -> str:
        return f"{self._h(i, 20) % 10**6:06d}{self.shop.index:02d}{i:011d}.0.0"

    def g_number(self, i: int) -> str:
        b = self.basket_start(i)
        return f"{self._h(b, 21) % 10**7:07d}{self.shop.index:02d}{b:010d}"

    def sale_id(self, i: int, kind: str) -> str:
        return f"{kind}{self.shop.index:02d}{i:010d}"

    def visible_count(self, now: float) -> int:
        """Number of items that have appeared by `now` (they are 0..n-1)."""
        return self.orders.count_by(now)

    # -- row builders -----------------------------------------------------------
    def _prices(self, i: int, filled: bool) -> dict[str, Any]:
        product, _ = self.product(i)
        if not filled:
            return {"totalPrice": 0, "discountPercent": 0, "spp": 0, "finishedPrice": 0, "priceWithDisc": 0}
        disc = 5 + self._h(i, _S_DISC) % 51  # hashing.randint(..., 5, 55)
        spp = self._h(i, _S_SPP) % 26  # hashing.randint(..., 0, 25)
        with_disc = round(product.price * (100 - disc) / 100, 2)
        return {
            "totalPrice": float(product.price),
            "discountPercent": disc,
            "spp": float(spp),
            "finishedPrice": round(with_disc * (100 - spp) / 100, 2),
            "priceWithDisc": with_disc,
        }

    def seller_price(self, i: int) -> float:
        """The price with the seller's discount, known at once (the feed has it; statistics
        rows may show 0 for a while)."""
        return float(self._prices(i, True)["priceWithDisc"])

    def _common(self, i: int) -> dict[str, Any]:
        product, size_ix = self.product(i)
        size = product.sizes[size_ix]
        if self.fbs(i):
            warehouse, wtype = SELLER_WAREHOUSE[1], "Склад продавца"
        else:
            warehouse, wtype = WB_WAREHOUSES[self._h(i, _S_WH) % len(WB_WAREHOUSES)][1], "Склад WB"
        okrug, region = _REGIONS[self._h(i, _S_REG) % len(_REGIONS)]
        return {
            "warehouseName": warehouse,
            "warehouseType": wtype,
            "countryName": "Россия",
            "oblastOkrugName": okrug,
            "regionName": region,
            "supplierArticle": product.vendor_code,
            "nmId": product.nm_id,
            "barcode": size.barcode,
            "category": product.category,
            "subject": product.subject,
            "brand": product.brand,
            "techSize": size.tech_size,
            "incomeID": 30_000_000 + (i // 500),
            "isSupply": False,
            "isRealization": True,
        }

    def order_row(self, i: int, now: float) -> dict[str, Any]:
        applied = self.orders.applied("order", i, now)
        tags = {c.tag for c in applied}
        last = self.appear(i) + applied[-1].delay
        row = {"date": msk_naive(self.order_date(i)), "lastChangeDate": msk_naive(last)}
        row.update(self._common(i))
        row.update(self._prices(i, not self.zero_price(i) or T_PRICE in tags))
        cancelled = T_CANCEL in tags
        row["isCancel"] = cancelled
        row["cancelDate"] = msk_naive(self.appear(i) + CANCEL_DELAY) if cancelled else NOT_CANCELLED
        row["sticker"] = str(self._h(i, 22) % 10**10)
        row["gNumber"] = self.g_number(i)
        row["srid"] = self.srid(i)
        return row

    def sale_row(self, i: int, kind: str, now: float) -> dict[str, Any]:
        """kind "S" (buyout) or "R" (return)."""
        if kind == "S":
            applied = self.sales.applied("sale", i, now)
            last = self.appear(i) + applied[-1].delay
            filled = not self.sale_zero_price(i) or any(c.tag == T_SALE_PRICE for c in applied)
            happened = self.appear(i) + SALE_DELAY
        else:
            happened = last = self.appear(i) + RETURN_DELAY
            filled = True
        row = {"date": msk_naive(happened - 60), "lastChangeDate": msk_naive(last)}
        row.update(self._common(i))
        prices = self._prices(i, filled)
        for_pay = round(prices["priceWithDisc"] * 0.85, 2)
        payment = int(prices["finishedPrice"])
        sign = -1 if kind == "R" else 1
        for key in ("totalPrice", "finishedPrice", "priceWithDisc"):
            prices[key] = sign * prices[key] if prices[key] else 0
        row.update(prices)
        row["paymentSaleAmount"] = sign * payment
        row["forPay"] = sign * for_pay if for_pay else 0
        row["saleID"] = self.sale_id(i, kind)
        row["sticker"] = str(self._h(i, 22) % 10**10)
        row["gNumber"] = self.g_number(i)
        row["srid"] = self.srid(i)
        return row

    # -- statistics reads ---------------------------------------------------------
    def orders_since(self, date_from: float, now: float) -> Iterator[dict[str, Any]]:
        """flag=0: rows with lastChangeDate >= dateFrom (literally), oldest change first."""
        for _t, tag, i in self.orders.changes_between(date_from, now):
            if self.orders.is_latest(tag, i, now):
                yield self.order_row(i, now)

    def sales_since(self, date_from: float, now: float) -> Iterator[dict[str, Any]]:
        for _t, tag, i in self.sales.changes_between(date_from, now):
            if self.sales.is_latest(tag, i, now):
                yield self.sale_row(i, "R" if tag == T_RETURN else "S", now)

    def orders_on_day(self, day_start: float, now: float) -> Iterator[dict[str, Any]]:
        """flag=1: rows whose `date` falls on that Moscow calendar day."""
        for i in self.orders.indices_appearing(day_start, min(now, day_start + 86400 + 3 * 86400 + 1800)):
            if day_start <= self.order_date(i) < day_start + 86400:
                yield self.order_row(i, now)

    def sales_on_day(self, day_start: float, now: float) -> Iterator[dict[str, Any]]:
        for kind, delay, pred in (("S", SALE_DELAY, self.bought_out), ("R", RETURN_DELAY, self.returned)):
            lo, hi = day_start - delay + 60, min(now - delay, day_start + 86400 - delay + 60)
            if hi < lo:
                continue
            for i in self.orders.indices_appearing(lo, hi):
                if pred(i) and day_start <= self.appear(i) + delay - 60 < day_start + 86400:
                    yield self.sale_row(i, kind, now)

    # -- ground truth -------------------------------------------------------------
    def all_orders(self, now: float) -> Iterator[dict[str, Any]]:
        for i in range(self.visible_count(now)):
            yield self.order_row(i, now)

    def all_sales(self, now: float) -> Iterator[dict[str, Any]]:
        for _t, tag, i in self.sales.changes_between(self.layout.start, now, tags={T_SALE, T_RETURN}):
            yield self.sale_row(i, "R" if tag == T_RETURN else "S", now)


def msk_day_start(epoch: float) -> float:
    """Start of the Moscow calendar day containing `epoch`."""
    from datetime import datetime

    dt = datetime.fromtimestamp(epoch, tz=MSK).replace(hour=0, minute=0, second=0, microsecond=0)
    return dt.timestamp()
