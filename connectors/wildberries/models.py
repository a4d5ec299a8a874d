"""Wildberries payloads: only the fields we use are typed; `.raw` keeps the whole row.

Statistics times arrive in Moscow time without a zone and are converted to aware UTC
here; FBS and feedback times carry their own zone. Statistics prices are roubles
(floats on the wire, Decimal here); FBS prices are kopecks (ints) and are exposed
both as sent and as roubles.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import Field

from connectors.parsing import MoscowTimes, MskDatetimeOpt, Payload, RowParser, UtcDatetime, UtcDatetimeOpt

_KOPECKS = Decimal(100)


class WbOrder(MoscowTimes):
    """One unit of goods ordered. Key: `srid` (gNumber is the whole basket)."""

    msk_fields: ClassVar[tuple[str, ...]] = ("date", "last_change_date", "cancel_date")

    srid: str
    g_number: str | None = Field(None, alias="gNumber")
    date: datetime
    last_change_date: datetime = Field(alias="lastChangeDate")
    nm_id: int = Field(alias="nmId")
    supplier_article: str | None = Field(None, alias="supplierArticle")
    barcode: str | None = None
    tech_size: str | None = Field(None, alias="techSize")
    warehouse_name: str | None = Field(None, alias="warehouseName")
    region_name: str | None = Field(None, alias="regionName")
    total_price: Decimal = Field(Decimal(0), alias="totalPrice")
    discount_percent: Decimal = Field(Decimal(0), alias="discountPercent")
    spp: Decimal = Decimal(0)
    finished_price: Decimal = Field(Decimal(0), alias="finishedPrice")
    price_with_disc: Decimal = Field(Decimal(0), alias="priceWithDisc")
    is_cancel: bool = Field(False, alias="isCancel")
    cancel_date: datetime | None = Field(None, alias="cancelDate")


class WbSale(MoscowTimes):
    """A buyout (`saleID` starting with S) or a return (R, negative amounts). Key: `saleID`."""

    msk_fields: ClassVar[tuple[str, ...]] = ("date", "last_change_date")

    sale_id: str = Field(alias="saleID")
    srid: str | None = None
    g_number: str | None = Field(None, alias="gNumber")
    date: datetime
    last_change_date: datetime = Field(alias="lastChangeDate")
    nm_id: int = Field(alias="nmId")
    supplier_article: str | None = Field(None, alias="supplierArticle")
    barcode: str | None = None
    warehouse_name: str | None = Field(None, alias="warehouseName")
    total_price: Decimal = Field(Decimal(0), alias="totalPrice")
    finished_price: Decimal = Field(Decimal(0), alias="finishedPrice")
    price_with_disc: Decimal = Field(Decimal(0), alias="priceWithDisc")
    for_pay: Decimal = Field(Decimal(0), alias="forPay")
    payment_sale_amount: Decimal = Field(Decimal(0), alias="paymentSaleAmount")

    @property
    def is_return(self) -> bool:
        # The saleID prefix, not the srid, says what this row is.
        return self.sale_id.startswith("R")


class WbStockRow(Payload):
    """One size at one warehouse, now."""

    nm_id: int = Field(alias="nmId")
    chrt_id: int | None = Field(None, alias="chrtId")
    warehouse_id: int | None = Field(None, alias="warehouseId")
    warehouse_name: str | None = Field(None, alias="warehouseName")
    region_name: str | None = Field(None, alias="regionName")
    quantity: int = 0
    in_way_to_client: int = Field(0, alias="inWayToClient")
    in_way_from_client: int = Field(0, alias="inWayFromClient")


class WbProductDetails(Payload):
    nm_id: int | None = Field(None, alias="nmId")
    imt_id: int | None = Field(None, alias="imtId")
    product_name: str | None = Field(None, alias="productName")
    supplier_article: str | None = Field(None, alias="supplierArticle")
    brand_name: str | None = Field(None, alias="brandName")
    size: str | None = None


class WbFeedback(Payload):
    id: str
    text: str | None = None
    pros: str | None = None
    cons: str | None = None
    product_valuation: int = Field(alias="productValuation")
    created_date: UtcDatetime = Field(alias="createdDate")
    answer: dict[str, Any] | None = None
    state: str | None = None
    product_details: WbProductDetails | None = Field(None, alias="productDetails")
    user_name: str | None = Field(None, alias="userName")
    was_viewed: bool | None = Field(None, alias="wasViewed")

    @property
    def is_answered(self) -> bool:
        return bool(self.answer)


class WbCard(Payload):
    nm_id: int = Field(alias="nmID")
    imt_id: int | None = Field(None, alias="imtID")
    vendor_code: str | None = Field(None, alias="vendorCode")
    brand: str | None = None
    title: str | None = None
    subject_name: str | None = Field(None, alias="subjectName")
    photos: list[dict[str, Any]] = Field(default_factory=list)
    sizes: list[dict[str, Any]] = Field(default_factory=list)
    updated_at: UtcDatetimeOpt = Field(None, alias="updatedAt")


class WbFbsOrder(Payload):
    """An FBS assembly task. `rid` equals statistics `srid`. Prices on the wire are kopecks."""

    id: int
    rid: str | None = None
    order_uid: str | None = Field(None, alias="orderUid")
    created_at: UtcDatetime = Field(alias="createdAt")
    nm_id: int | None = Field(None, alias="nmId")
    chrt_id: int | None = Field(None, alias="chrtId")
    article: str | None = None
    warehouse_id: int | None = Field(None, alias="warehouseId")
    price_kopecks: int | None = Field(None, alias="price")
    converted_price_kopecks: int | None = Field(None, alias="convertedPrice")
    currency_code: int | None = Field(None, alias="currencyCode")

    @property
    def price(self) -> Decimal | None:
        return None if self.price_kopecks is None else Decimal(self.price_kopecks) / _KOPECKS


class WbFbsStatus(Payload):
    id: int
    supplier_status: str | None = Field(None, alias="supplierStatus")
    wb_status: str | None = Field(None, alias="wbStatus")


# Order-feed statuses and cancel types the spec lists; anything else is logged, not guessed at.
FEED_STATUSES = frozenset({"created", "buyout", "cancel", "return", "returnDefective"})
FEED_CANCEL_TYPES = frozenset({"app", "receipt", "expire", "other"})


class WbFeedOrder(Payload):
    """One unit in the order feed (key `srid`, the statistics srid), as tolerant as it gets:
    the response schema is cut off in our spec copy, so only `srid` is required. Times carry
    an offset (a bare one is Moscow time)."""

    srid: str
    status: str | None = None
    cancel_type: str | None = Field(None, alias="cancelType")
    updated_at: MskDatetimeOpt = Field(None, alias="updatedAt")
    created_at: MskDatetimeOpt = Field(None, alias="createdAt")
    nm_id: int | None = Field(None, alias="nmId")
    chrt_id: int | None = Field(None, alias="chrtId")
    seller_price: Decimal | None = Field(None, alias="sellerPrice")
    warehouse_name: str | None = Field(None, alias="warehouseName")
    is_mp: bool | None = Field(None, alias="isMp")

    @property
    def status_time(self) -> datetime | None:
        """When the current status began (for `created` WB sends the creation time)."""
        return self.updated_at or (self.created_at if self.status == "created" else None)


ORDER_PARSER = RowParser(WbOrder, key_field="srid")
SALE_PARSER = RowParser(WbSale, key_field="saleID")
STOCK_PARSER = RowParser(WbStockRow, key_field="nmId")
FEEDBACK_PARSER = RowParser(WbFeedback, key_field="id")
CARD_PARSER = RowParser(WbCard, key_field="nmID")
FBS_ORDER_PARSER = RowParser(WbFbsOrder, key_field="id")
FBS_STATUS_PARSER = RowParser(WbFbsStatus, key_field="id")
FEED_PARSER = RowParser(WbFeedOrder, key_field="srid")
