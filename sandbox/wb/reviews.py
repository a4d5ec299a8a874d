"""WB feedbacks: review j appears unanswered; 70 % get an answer 6 h later.
Stars skew positive but 1-2 star reviews are common enough to alert on.

Where a review is listed (the official spec of `/api/v1/feedbacks/archive`): it moves to the
archive when (1) it is answered, (2) no answer came within 30 days, or (3) it has no text and
no photos (at once: a rating-only review is never in `/api/v1/feedbacks`). When (1) happens
is not documented: here an answered review stays in `isAnswered=true` for
`ARCHIVE_AFTER_ANSWER` first, so both places are exercised. 12 % of reviews are rating-only
(no text, no photos), 5 % carry photos and no text (not archived for that).
"""

from __future__ import annotations

from typing import Any

from sandbox.catalog import WbProduct
from sandbox.hashing import h64, token_chars, u01
from sandbox.scenario import ShopSpec, TimeLayout
from sandbox.streams import Change, Timeline
from sandbox.timefmt import msk_offset

ANSWER_DELAY = 6 * 3600
ARCHIVE_AFTER_ANSWER = 3 * 86400  # answered -> archive (rule 1; the delay is our choice)
ARCHIVE_UNANSWERED = 30 * 86400  # no answer within 30 days -> archive (rule 2)
RATING_ONLY_SHARE, PHOTO_ONLY_SHARE = 0.12, 0.05
T_CREATED, T_ANSWERED = 0, 1
UNANSWERED, ANSWERED, ARCHIVE = "unanswered", "answered", "archive"
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

    def rating_only(self, j: int) -> bool:
        """No text and no photos: archived at once (rule 3)."""
        return u01(self.seed, self.stream, j, 8) < RATING_ONLY_SHARE

    def photo_only(self, j: int) -> bool:
        """Photos, no text: listed as usual."""
        return RATING_ONLY_SHARE <= u01(self.seed, self.stream, j, 8) < RATING_ONLY_SHARE + PHOTO_ONLY_SHARE

    def place(self, j: int, now: float) -> str:
        """Which list serves review j at `now`: unanswered, answered (isAnswered=true) or archive."""
        if self.rating_only(j):
            return ARCHIVE
        created = self.appear(j)
        if self.is_answered(j, now):
            return ARCHIVE if created + ANSWER_DELAY + ARCHIVE_AFTER_ANSWER <= now else ANSWERED
        return ARCHIVE if created + ARCHIVE_UNANSWERED <= now else UNANSWERED

    def review_id(self, j: int) -> str:
        return token_chars(self.seed, self.stream, j, 20, salt=4)

    def product(self, j: int) -> WbProduct:
        return self.products[h64(self.seed, self.stream, j, 5) % len(self.products)]

    def visible_count(self, now: float) -> int:
        return self.timeline.count_by(now)

    def is_answered(self, j: int, now: float) -> bool:
        return self.answered(j) and self.appear(j) + ANSWER_DELAY <= now

    def feedback(self, j: int, now: float) -> dict[str, Any]:
        product = self.product(j)
        size = product.sizes[h64(self.seed, self.stream, j, 6) % len(product.sizes)]
        stars = self.stars(j)
        answered = self.is_answered(j, now)
        created = self.appear(j)
        bare = self.rating_only(j) or self.photo_only(j)
        return {
            "id": self.review_id(j),
            "text": "" if bare else _TEXTS[stars],
            "pros": "" if bare or stars < 3 else "Качество",
            "cons": "" if bare or stars >= 4 else "Размер",
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
            "photoLinks": self.photos(j) if self.photo_only(j) else None,
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

    def photos(self, j: int) -> list[dict[str, str]]:
        base = f"https://feedback01.wbbasket.ru/sandbox/{self.review_id(j)}/photos"
        return [{"fullSize": f"{base}/fs.webp", "miniSize": f"{base}/ms.webp"}]
