"""Allegro REST API connector: OAuth device flow and refresh, orders, offers, returns."""

from connectors.allegro.auth import AllegroAuth, DeviceAuthorization, TokenPair
from connectors.allegro.client import AllegroClient, CheckoutFormBatch, EventBatch, EventStats
from connectors.allegro.models import CheckoutForm, CustomerReturn, Offer, OfferEvent, OrderEvent

__all__ = [
    "AllegroAuth",
    "AllegroClient",
    "CheckoutForm",
    "CheckoutFormBatch",
    "CustomerReturn",
    "DeviceAuthorization",
    "EventBatch",
    "EventStats",
    "Offer",
    "OfferEvent",
    "OrderEvent",
    "TokenPair",
]
