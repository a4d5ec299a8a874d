"""The sandbox world: shops, their lazily generated data, credentials, and
the ground truth tests compare against.

Ground truth (all at the current sandbox time, `world.now()`):

* `wb_orders(shop)`: {srid: latest order row} — exactly what flag=0 paging
  from the beginning would end with after deduplicating by srid;
* `wb_sales(shop)`: {saleID: latest sale row} (S buyouts and R returns);
* `wb_stock(shop)`: {(nmId, chrtId, warehouseId): quantity} (zeros included);
* `wb_reviews(shop)`: {feedback id: feedback} (answered and unanswered);
* `allegro_checkout_forms(shop)`: {id: checkout form at its latest revision}
  (orders older than 365 days excluded, as the API has dropped them);
* `allegro_offers(shop)`: {offer id: offer with stock};
* `allegro_customer_returns(shop)`: {return id: return};
* `transitions(shop, since, until)`: the real transitions, time-ordered, at the time they
  happened (a WB new_order when it was placed, its `date`, even if statistics list it days later):
  new_order, payment (Allegro: READY_FOR_PROCESSING), cancellation, buyout,
  return, review (data: stars),
  stock_low / stock_recovered (product total crossing `low_stock_level`;
  warehouse transfers never cross).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sandbox.allegro.merges import Merge
from sandbox.allegro.oauth import AllegroAuth, TokenPair
from sandbox.allegro.orders import S_BOUGHT, S_CANCEL_POST, S_CANCEL_PRE, S_PAID, S_RETURN, AllegroOrderModel
from sandbox.catalog import WB_WAREHOUSES, AllegroOffer, WbProduct, allegro_offers, money, wb_products
from sandbox.clock import SandboxClock
from sandbox.config import SandboxConfig
from sandbox.faults import FaultInjector
from sandbox.hashing import h64
from sandbox.latency import Latency
from sandbox.ratelimit import RateLimiter
from sandbox.requestlog import RequestLog
from sandbox.response_cache import ResponseCache
from sandbox.scenario import Scenario, ShopSpec, layout_for, load_scenario
from sandbox.stock import StockModel, StockSku
from sandbox.timefmt import to_dt, utc_z
from sandbox.wb import feed as wb_feed
from sandbox.wb import tokens as wbtokens
from sandbox.wb.orders import CANCEL_DELAY, RETURN_DELAY, SALE_DELAY, T_CANCEL, T_RETURN, T_SALE, WbOrderModel
from sandbox.wb.reviews import T_CREATED, WbReviewModel


@dataclass(frozen=True)
class Transition:
    at: datetime  # sandbox time (UTC) the change happened (a new WB order: when placed, its `date`)
    kind: str  # new_order | payment | cancellation | buyout | return | review | stock_low | stock_recovered
    shop: str
    entity_id: str  # srid (WB orders, buyouts, returns) / checkout-form id / return id / feedback id / nmId / offer id
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": utc_z(self.at.timestamp()),
            "kind": self.kind,
            "shop": self.shop,
            "entity_id": self.entity_id,
            "data": self.data,
        }


@dataclass
class WbShop:
    spec: ShopSpec
    seller_id: str
    products: tuple[WbProduct, ...]
    orders: WbOrderModel
    reviews: WbReviewModel
    stock: StockModel
    token: str


@dataclass
class AllegroShop:
    spec: ShopSpec
    seller_id: str
    offers: tuple[AllegroOffer, ...]
    orders: AllegroOrderModel
    stock: StockModel
    pair: TokenPair  # the ready pair printed at startup


class World:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.scenario: Scenario = load_scenario(config.scenario)
        self.clock = SandboxClock(config.start, config.speed)
        self.faults = FaultInjector(config.seed, config.faults)
        self.latency = Latency(config.latency)
        self.limiter = RateLimiter(config.rate_limits, config.rate_limit_scale)
        self.log = RequestLog(config.request_log_size)
        if config.cache_responses and config.speed != 0:
            raise ValueError("the response cache needs a frozen clock (--speed 0): a running clock changes every body")
        self.responses = ResponseCache(config.cache_responses)
        self.seed = config.seed
        self.wb_key = hashlib.blake2b(f"wb-key:{config.seed}".encode(), digest_size=32).digest()
        self.history_start = int(self.clock.start_epoch - self.scenario.history_days * 86400)
        self.client_id = config.allegro_client_id
        self.client_secret = (
            config.allegro_client_secret
            or hashlib.blake2b(f"secret:{config.seed}".encode(), digest_size=16).hexdigest()
        )
        self.event_retention_s = config.event_retention_s
        allegro_names = [s.name for s in self.scenario.allegro_shops]
        self.auth = AllegroAuth(config.seed, self.client_id, self.client_secret, allegro_names, config.auto_approve)
        self.auth.token_requests = config.allegro_token_requests
        self._token_ids = 0  # WB token ids are numbered: deterministic under the seed
        self.wb: dict[str, WbShop] = {s.name: self._build_wb(s) for s in self.scenario.wb_shops}
        self.allegro: dict[str, AllegroShop] = {s.name: self._build_allegro(s) for s in self.scenario.allegro_shops}

    # -- construction ---------------------------------------------------------
    def _build_wb(self, spec: ShopSpec) -> WbShop:
        products = wb_products(self.seed, spec.index, spec.products)
        orders = WbOrderModel(
            self.seed, spec, products, layout_for(spec, self.history_start, self.scenario.history_days)
        )
        reviews_layout = layout_for(spec, self.history_start, self.scenario.history_days, spec.reviews_per_order)
        reviews = WbReviewModel(self.seed, spec, products, reviews_layout)
        skus = [StockSku(str(p.nm_id), str(s.chrt_id)) for p in products for s in p.sizes]
        stock = StockModel(
            self.seed,
            0x6000 + spec.index,
            skus,
            len(WB_WAREHOUSES),
            self.history_start,
            spec.stock_step,
            self.scenario.low_stock_level,
        )
        seller_id = f"sandbox-seller-{spec.index}"
        token = self.mint_wb_token_for(spec.name, seller_id, wbtokens.ALL_CATEGORIES, None)
        return WbShop(spec, seller_id, products, orders, reviews, stock, token)

    def _build_allegro(self, spec: ShopSpec) -> AllegroShop:
        offers = allegro_offers(self.seed, spec.index, spec.products)
        orders = AllegroOrderModel(
            self.seed, spec, offers, layout_for(spec, self.history_start, self.scenario.history_days)
        )
        skus = [StockSku(o.offer_id, o.offer_id) for o in offers]
        stock = StockModel(
            self.seed, 0x7000 + spec.index, skus, 1, self.history_start, spec.stock_step, self.scenario.low_stock_level
        )
        pair = self.auth.issue(spec.name, self.client_id, self.clock.epoch())
        return AllegroShop(spec, str(50_000_000 + spec.index), offers, orders, stock, pair)

    # -- time -----------------------------------------------------------------
    def now(self) -> float:
        return self.clock.epoch()

    def statistics_now(self) -> float:
        """The time WB statistics last refreshed: they serve the world as it was then."""
        now, every = self.now(), self.config.wb_statistics_refresh_s
        return now if every <= 0 else now - now % every  # on the clock's half hours, as WB

    def now_dt(self) -> datetime:
        return self.clock.now()

    def advance(self, seconds: float) -> datetime:
        self.clock.advance(seconds)
        return self.clock.now()

    # -- shops & credentials --------------------------------------------------
    def shop_names(self) -> list[str]:
        return [s.name for s in self.scenario.shops]

    def marketplace_of(self, shop: str) -> str:
        if shop in self.wb:
            return "wb"
        if shop in self.allegro:
            return "allegro"
        raise KeyError(shop)

    def wb_token(self, shop: str) -> str:
        return self.wb[shop].token

    def mint_wb_token_for(
        self,
        shop: str,
        seller_id: str,
        categories: tuple[str, ...] | list[str],
        exp: float | None,
        kind: str = "personal",
    ) -> str:
        if kind not in wbtokens.TOKEN_KINDS:
            raise ValueError(f"unknown WB token kind {kind!r}; known: {', '.join(wbtokens.TOKEN_KINDS)}")
        self._token_ids += 1
        token_id = f"{h64(self.seed, 0x8000, self._token_ids) % 16**32:032x}"
        expires = int(exp if exp is not None else self.clock.epoch() + wbtokens.TOKEN_TTL)
        claims = wbtokens.WbClaims(token_id, seller_id, wbtokens.mask_for(list(categories)), expires, kind)
        return wbtokens.issue(self.wb_key, claims)

    def mint_wb_token(
        self,
        shop: str,
        categories: tuple[str, ...] | list[str] = wbtokens.ALL_CATEGORIES,
        ttl: float = wbtokens.TOKEN_TTL,
        kind: str = "personal",
    ) -> str:
        """A new token for a WB shop (e.g. wrong categories, short-lived, or a Base token:
        `kind="base"`, with the Base rates of sandbox.ratelimit and buckets of its own)."""
        return self.mint_wb_token_for(shop, self.wb[shop].seller_id, categories, self.clock.epoch() + ttl, kind)

    def wb_shop_for_seller(self, seller_id: str) -> WbShop | None:
        return next((s for s in self.wb.values() if s.seller_id == seller_id), None)

    def allegro_pair(self, shop: str) -> TokenPair:
        """The ready pair issued at startup (the CLI prints it)."""
        return self.allegro[shop].pair

    def issue_allegro_pair(self, shop: str) -> TokenPair:
        """A fresh pair for a shop, as if the device flow had just run."""
        return self.auth.issue(shop, self.client_id, self.now())

    def approve_device(self, code: str, shop: str | None = None) -> str:
        return self.auth.decide(code, True, shop, self.now()).shop or ""

    def deny_device(self, code: str) -> None:
        self.auth.decide(code, False, None, self.now())

    def revoke_allegro(self, shop: str | None = None, token_id: str | None = None) -> int:
        return self.auth.revoke(shop=shop, jti=token_id)

    def rotate_allegro(self, shop: str | None = None, token_id: str | None = None) -> TokenPair:
        """Refresh a shop's live pair as another process would (KeyError: none is live)."""
        return self.auth.rotate(self.now(), shop=shop, jti=token_id)

    @property
    def allegro_token_requests(self) -> int | None:
        """API requests an Allegro access token survives (None: only its 12 h)."""
        return self.auth.token_requests

    @allegro_token_requests.setter
    def allegro_token_requests(self, value: int | None) -> None:
        self.auth.token_requests = value

    def set_faults(self, spec: str | None) -> str:
        return self.faults.set_spec(spec).to_spec()

    def set_rate_limits(self, enabled: bool, scale: float | None = None) -> None:
        self.limiter.enabled = enabled
        if scale is not None:
            self.limiter.scale = scale
        self.limiter.reset_all()

    def event_retention(self) -> float:
        return self.faults.event_retention() or self.event_retention_s

    # -- ground truth: WB -----------------------------------------------------
    def wb_orders(self, shop: str) -> dict[str, dict[str, Any]]:
        return {r["srid"]: r for r in self.wb[shop].orders.all_orders(self.now())}

    def wb_feed(self, shop: str) -> dict[str, dict[str, Any]]:
        """{srid: order-feed row} of the last 31 days, as the feed shows them now."""
        return {r["srid"]: r for r in wb_feed.all_rows(self.wb[shop].orders, self.now())}

    def wb_sales(self, shop: str) -> dict[str, dict[str, Any]]:
        return {r["saleID"]: r for r in self.wb[shop].orders.all_sales(self.now())}

    def wb_stock(self, shop: str) -> dict[tuple[int, int, int], int]:
        model = self.wb[shop].stock
        model.advance_to(self.now())
        return {
            (int(sku.product), int(sku.sku), WB_WAREHOUSES[w][0]): model.qty[s][w]
            for s, sku in enumerate(model.skus)
            for w in range(model.warehouses)
        }

    def wb_reviews(self, shop: str) -> dict[str, dict[str, Any]]:
        model, now = self.wb[shop].reviews, self.now()
        return {model.review_id(j): model.feedback(j, now) for j in range(model.visible_count(now))}

    # -- ground truth: Allegro --------------------------------------------------
    def allegro_checkout_forms(self, shop: str) -> dict[str, dict[str, Any]]:
        model, now = self.allegro[shop].orders, self.now()
        return {
            model.form_id_at(k, now): model.checkout_form(k, now)
            for k in range(model.oldest_retained(now), model.visible_count(now))
            if not model.gone(k, now)
        }

    def allegro_merges(self, shop: str) -> dict[str, str]:
        """{old checkout-form id: the id of the form it was merged into}, for merges done by now
        (365-day window). The old ids answer 404 and are gone from the listing."""
        model, now = self.allegro[shop].orders, self.now()
        out: dict[str, str] = {}
        for k in range(model.oldest_retained(now), model.visible_count(now)):
            m = model.merged(k, now)
            if m is not None:
                out[model.form_id(k)] = m.new_id
        return out

    def merge_allegro(self, shop: str, form_ids: list[str]) -> dict[str, Any]:
        """Act as the buyer: pay these unpaid forms together now. Allegro merges them into a new
        checkout form (READY_FOR_PROCESSING, their line items); the old ids answer 404."""
        model, now = self.allegro[shop].orders, self.now()
        merge = model.force_merge(form_ids, now)
        return {
            "id": merge.new_id,
            "merged": [model.form_id(k) for k in merge.members],
            "at": utc_z(merge.at, millis=True),
        }

    def allegro_offers(self, shop: str) -> dict[str, dict[str, Any]]:
        return {o["id"]: o for o in self.offer_rows(shop)}

    def allegro_stock(self, shop: str) -> dict[str, int]:
        return {oid: o["stock"]["available"] for oid, o in self.allegro_offers(shop).items()}

    def allegro_customer_returns(self, shop: str) -> dict[str, dict[str, Any]]:
        model, now = self.allegro[shop].orders, self.now()
        out = {}
        for _t, _tag, k in model.timeline.changes_between(self.history_start, now, tags={S_RETURN}):
            out[model.return_id(k)] = model.customer_return(k)
        return out

    def offer_rows(self, shop: str) -> list[dict[str, Any]]:
        entry = self.allegro[shop]
        entry.stock.advance_to(self.now())
        rows = []
        for s, offer in enumerate(entry.offers):
            available = entry.stock.qty[s][0]
            rows.append(
                {
                    "id": offer.offer_id,
                    "name": offer.name,
                    "primaryImage": {"url": offer.image},
                    "sellingMode": {"format": "BUY_NOW", "price": money(offer.price)},
                    "stock": {"available": available, "sold": entry.stock.sold[s]},
                    "publication": {"status": "ACTIVE" if available > 0 else "ENDED"},
                    "external": {"id": offer.external_id},
                }
            )
        return rows

    def stock(self, shop: str) -> dict[tuple[str, str], int]:
        """Marketplace-neutral stock truth: {(sku, warehouse): quantity}."""
        if shop in self.wb:
            return {(f"{nm}/{chrt}", str(wh)): q for (nm, chrt, wh), q in self.wb_stock(shop).items()}
        return {(oid, "allegro"): q for oid, q in self.allegro_stock(shop).items()}

    def ground_truth(self, shop: str) -> dict[str, Any]:
        """Everything for one shop, JSON-ready (the operator endpoint's body)."""
        if shop in self.wb:
            return {
                "shop": shop,
                "marketplace": "wb",
                "at": utc_z(self.now()),
                "orders": list(self.wb_orders(shop).values()),
                "sales": list(self.wb_sales(shop).values()),
                "stock": [
                    {"nmId": nm, "chrtId": ch, "warehouseId": wh, "quantity": q}
                    for (nm, ch, wh), q in self.wb_stock(shop).items()
                ],
                "reviews": list(self.wb_reviews(shop).values()),
            }
        return {
            "shop": shop,
            "marketplace": "allegro",
            "at": utc_z(self.now()),
            "checkoutForms": list(self.allegro_checkout_forms(shop).values()),
            "offers": list(self.allegro_offers(shop).values()),
            "customerReturns": list(self.allegro_customer_returns(shop).values()),
            "merges": self.allegro_merges(shop),
        }

    # -- transitions ----------------------------------------------------------
    def transitions(self, shop: str, since: datetime | None = None, until: datetime | None = None) -> list[Transition]:
        """Real transitions with since < at <= until (defaults: history start, now)."""
        lo = since.timestamp() + 1e-6 if since else float(self.history_start)
        hi = min(until.timestamp(), self.now()) if until else self.now()
        raw = self._wb_transitions(shop, lo, hi) if shop in self.wb else self._allegro_transitions(shop, lo, hi)
        raw.extend(self._stock_transitions(shop, lo, hi))
        raw.sort(key=lambda t: (t[0], t[1], t[2]))
        return [Transition(to_dt(at), kind, shop, entity, data) for at, kind, entity, data in raw]

    def _wb_transitions(self, shop: str, lo: float, hi: float) -> list[tuple[int, str, str, dict[str, Any]]]:
        entry = self.wb[shop]
        m = entry.orders
        out: list[tuple[int, str, str, dict[str, Any]]] = []
        # A new order happens when it is placed (its `date`, when the real-time feed shows it),
        # not when statistics list it (1-30 min later, 1-3 days for 12 % of baskets).
        for i in m.orders.indices_appearing(lo, hi + wb_feed.MAX_LISTING_DELAY):
            placed = m.order_date(i)
            if m.orders.in_range(i) and lo <= placed <= hi:
                out.append((placed, "new_order", m.srid(i), {"gNumber": m.g_number(i), "nmId": m.product(i)[0].nm_id}))
        for _t, _tag, i in m.orders.changes_between(lo, hi, tags={T_CANCEL}):
            out.append((m.appear(i) + CANCEL_DELAY, "cancellation", m.srid(i), {}))
        for _t, tag, i in m.sales.changes_between(lo, hi, tags={T_SALE, T_RETURN}):
            # Keyed by srid: a unit is bought out and returned at most once, and the order feed,
            # which knows no saleID, reports the same transition.
            if tag == T_SALE:
                out.append((m.appear(i) + SALE_DELAY, "buyout", m.srid(i), {"saleID": m.sale_id(i, "S")}))
            else:
                out.append((m.appear(i) + RETURN_DELAY, "return", m.srid(i), {"saleID": m.sale_id(i, "R")}))
        r = entry.reviews
        for t, _tag, j in r.timeline.changes_between(lo, hi, tags={T_CREATED}):
            out.append((t, "review", r.review_id(j), {"stars": r.stars(j), "nmId": r.product(j).nm_id}))
        return out

    def _allegro_transitions(self, shop: str, lo: float, hi: float) -> list[tuple[int, str, str, dict[str, Any]]]:
        m = self.allegro[shop].orders
        out: list[tuple[int, str, str, dict[str, Any]]] = []
        tags = {S_BOUGHT, S_PAID, S_CANCEL_PRE, S_CANCEL_POST, S_RETURN}
        for t, tag, k in m.timeline.changes_between(lo, hi, tags=tags):
            if tag == S_BOUGHT:
                out.append((t, "new_order", m.form_id(k), {"buyer": m.buyer_login(k)}))
            elif tag == S_PAID:
                out.append((t, "payment", m.form_id_at(k, t), {}))
                merge = m.merged(k, t)
                if merge is not None:
                    out.append(self._merge_transition(m, merge))
            elif tag == S_RETURN:
                out.append((t, "return", m.return_id(k), {"orderId": m.form_id_at(k, t)}))
            else:
                out.append((t, "cancellation", m.form_id_at(k, t), {"paid": tag == S_CANCEL_POST}))
        for merge in m.merges.forced_list:
            if lo < merge.at <= hi:
                out.append((merge.at, "payment", merge.new_id, {}))
                out.append(self._merge_transition(m, merge))
        return out

    @staticmethod
    def _merge_transition(m: AllegroOrderModel, merge: Merge) -> tuple[int, str, str, dict[str, Any]]:
        """A merge is no order of its own: its purchases were new_orders, its payment a payment."""
        return (merge.at, "merge", merge.new_id, {"from": [m.form_id(j) for j in merge.members]})

    def _stock_transitions(self, shop: str, lo: float, hi: float) -> list[tuple[int, str, str, dict[str, Any]]]:
        model = self.wb[shop].stock if shop in self.wb else self.allegro[shop].stock
        model.advance_to(self.now())
        return [
            (c.at, c.kind, c.product, {"total": c.total, "previous": c.previous, "level": model.level})
            for c in model.crossings
            if lo <= c.at <= hi
        ]
