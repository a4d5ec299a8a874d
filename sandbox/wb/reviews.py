"""WB feedbacks: review j appears unanswered; 70 % get an answer 6 h later.
Stars skew positive but 1-2 star reviews are common enough to alert on."""

from __future__ import annotations

from typing import Any

from sandbox.catalog import WbProduct
from sandbox.hashing import h64, token_chars, u01
from sandbox.scenario import ShopSpec, TimeLayout
from sandbox.streams import Change, Timeline
from sandbox.timefmt import msk_offset

ANSWER_DELAY = 6 * 3600
T_CREATED, T_ANSWERED = 0, 1
_STARS = ((0.08, 1), (0.15, 2), (0.25, 3), (0.45, 4), (1.01, 5))
_TEXTS = {1: "Ужасно, брак", 2: "Не понравилось", 3: "Нормально", 4: "Хороший товар", 5: "Отлично, рекомендую"}
_NAMES = ("Анна", "Иван", "Мария", "Олег", "Светлана", "Покупатель")


class WbReviewModel:
    def __init__(self, seed: int, shop: ShopSpec, products: tuple[WbProduct, ...], layout: TimeLayout) -> None:
        self.seed = seed
        self.shop = shop
        self.products = products
        self.stream = 0x4000 + shop.index
        self.timeline = Timeline(
            layout,
            self.appear,
            [Change(T_CREATED, "review", 0, lambda j: True), Change(T_ANSWERED, "review", ANSWER_DELAY, self.answered)],
        )

    def appear(self, j: int) -> int:
        lay = self.timeline.layout
        return lay.start + int((j + 0.9 * u01(self.seed, self.stream, j, 1)) * lay.step)

    def answered(self, j: int) -> bool:
        return u01(self.seed, self.stream, j, 2) < 0.7

    def stars(self, j: int) -> int:
        x = u01(self.seed, self.stream, j, 3)
        return next(s for bound, s in _STARS if x < bound)

    def review_id(self, j: int) -> str:
        return token_chars(self.seed, self.stream, j, 20, salt=4)

    def product(self, j: int) -> WbProduct:
        return self.products[h64(self.seed, self.stream, j, 5) % len(self.products)]

    def visible_count(self, now: float) -> int:
        return self.timeline.first_index_at(now + 1)

    def is_answered(self, j: int, now: float) -> bool:
        return self.answered(j) and self.appear(j) + ANSWER_DELAY <= now

    def feedback(self, j: int, now: float) -> dict[str, Any]:
        product = self.product(j)
        size = product.sizes[h64(self.seed, self.stream, j, 6) % len(product.sizes)]
        stars = self.stars(j)
        answered = self.is_answered(j, now)
        created = self.appear(j)
        return {
            "id": self.review_id(j),
            "text": _TEXTS[stars],
            "pros": "" if stars < 3 else "Качество",
            "cons": "Размер" if stars < 4 else "",
            "productValuation": stars,
            "createdDate": msk_offset(created),
            "answer": {"text": "Спасибо за отзыв!", "state": "wbRu", "editable": False} if answered else None,
            "state": "wbRu" if answered else "none",
            "productDetails": {
                "imtId": product.imt_id,
                "nmId": product.nm_id,
                "productName": product.title,
                "supplierArticle": product.vendor_code,
                "supplierName": "ИП Sandbox",
                "brandName": product.brand,
                "size": size.tech_size,
            },
            "photoLinks": None,
            "video": None,
            "wasViewed": answered,
            "userName": _NAMES[h64(self.seed, self.stream, j, 7) % len(_NAMES)],
            "orderStatus": "buyout",
            "matchingSize": "ok",
            "isAbleSupplierFeedbackValuation": True,
            "supplierFeedbackValuation": 0,
            "isAbleSupplierProductValuation": True,
            "supplierProductValuation": 0,
            "isAbleReturnProductOrders": False,
            "returnProductOrdersDate": None,
            "bables": None,
            "lastOrderShkId": 0,
            "lastOrderCreatedAt": msk_offset(created - 5 * 86400),
            "color": "",
            "subjectId": product.subject_id,
            "subjectName": product.subject,
            "parentFeedbackId": None,
            "childFeedbackId": None,
        }
