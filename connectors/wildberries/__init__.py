"""Wildberries seller API connector."""

from connectors.wildberries.client import WbUrls, WildberriesClient
from connectors.wildberries.models import (
    WbCard,
    WbFbsOrder,
    WbFbsStatus,
    WbFeedback,
    WbOrder,
    WbSale,
    WbStockRow,
)

__all__ = [
    "WbCard",
    "WbFbsOrder",
    "WbFbsStatus",
    "WbFeedback",
    "WbOrder",
    "WbSale",
    "WbStockRow",
    "WbUrls",
    "WildberriesClient",
]
