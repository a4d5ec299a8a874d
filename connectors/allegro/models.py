"""Allegro payloads: typed where we use them, tolerant of drift, `.raw` keeps the rest.

Money is ``{"amount": "123.45", "currency": "PLN"}`` on the wire (amount a string);
times are UTC. The 2023 spec calls some fields required that current responses may
lack (`discounts`), and newer fields appear (`note`, `marketplace`, ...): every field
here that is not an identifier is optional.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from connectors.parsing import Dec, Payload, RowParser, UtcDatetime, UtcDatetimeOpt


class Part(BaseModel):
    """Nested object: unknown fields ignored (the top-level `.raw` has them)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Money(Part):
    amount: Dec
    currency: str = "PLN"


class Ref(Part):
    id: str | None = None


class OfferRef(Part):
    id: str | None = None
    name: str | None = None
    external: Ref | None = None


class LineItem(Part):
    id: str
    offer: OfferRef | None = None
    quantity: int = 1
    original_price: Money | None = Field(None, alias="originalPrice")
    price: Money | None = None
    bought_at: UtcDatetimeOpt = Field(None, alias="boughtAt")


class Buyer(Part):
    id: str | None = None
    login: str | None = None
    email: str | None = None
    guest: bool | None = None
    first_name: str | None = Field(None, alias="firstName")
    last_name: str | None = Field(None, alias="lastName")


class Payment(Part):
    id: str | None = None
    type: str | None = None
    provider: str | None = None
    finished_at: UtcDatetimeOpt = Field(None, alias="finishedAt")
    paid_amount: Money | None = Field(None, alias="paidAmount")


class Fulfillment(Part):
    status: str | None = None


class Summary(Part):
    total_to_pay: Money | None = Field(None, alias="totalToPay")


class CheckoutForm(Payload):
    """A full order (checkout form). Key: `id`; newer `revision`/`updated_at` wins."""

    id: str
    status: str | None = None
    buyer: Buyer | None = None
    payment: Payment | None = None
    fulfillment: Fulfillment | None = None
    line_items: list[LineItem] = Field(default_factory=list, alias="lineItems")
    summary: Summary | None = None
    updated_at: UtcDatetimeOpt = Field(None, alias="updatedAt")
    revision: str | None = None
    message_to_seller: str | None = Field(None, alias="messageToSeller")
    marketplace: Ref | None = None

    @property
    def total(self) -> Decimal | None:
        money = self.summary.total_to_pay if self.summary else None
        return None if money is None else money.amount

    @property
    def bought_at(self) -> Any:
        times = [li.bought_at for li in self.line_items if li.bought_at is not None]
        return min(times) if times else None


class CheckoutFormRef(Part):
    id: str
    revision: str | None = None


class EventOrder(Part):
    checkout_form: CheckoutFormRef = Field(alias="checkoutForm")


class OrderEvent(Payload):
    """A journal entry: only a reference; fetch the checkout form for the order itself."""

    id: str
    type: str
    occurred_at: UtcDatetime = Field(alias="occurredAt")
    order: EventOrder

    @property
    def checkout_form_id(self) -> str:
        return self.order.checkout_form.id


class Stock(Part):
    available: int = 0
    sold: int | None = None


class Publication(Part):
    status: str | None = None


class SellingMode(Part):
    price: Money | None = None


class Offer(Payload):
    id: str
    name: str | None = None
    stock: Stock | None = None
    publication: Publication | None = None
    selling_mode: SellingMode | None = Field(None, alias="sellingMode")
    external: Ref | None = None

    @property
    def available(self) -> int | None:
        return None if self.stock is None else self.stock.available


class OfferEvent(Payload):
    id: str
    type: str
    occurred_at: UtcDatetime = Field(alias="occurredAt")
    offer: Ref | None = None

    @property
    def offer_id(self) -> str | None:
        return None if self.offer is None else self.offer.id


class CustomerReturn(Payload):
    id: str
    created_at: UtcDatetimeOpt = Field(None, alias="createdAt")
    order_id: str | None = Field(None, alias="orderId")
    items: list[dict[str, Any]] = Field(default_factory=list)
    refund: dict[str, Any] | None = None
    parcels: list[dict[str, Any]] = Field(default_factory=list)


CHECKOUT_FORM_PARSER = RowParser(CheckoutForm, key_field="id")
ORDER_EVENT_PARSER = RowParser(OrderEvent, key_field="id")
OFFER_PARSER = RowParser(Offer, key_field="id")
OFFER_EVENT_PARSER = RowParser(OfferEvent, key_field="id")
CUSTOMER_RETURN_PARSER = RowParser(CustomerReturn, key_field="id")
