"""The types the rules produce and the dedupe-key scheme.

A dedupe key names a real transition: `{shop_id}:{kind}:{entity}:{transition}`. It is built
from the data (ids, stages, the day, the failure streak's start), not from when a sync ran,
so a retry, a restart or an overlapping run that sees the same transition builds the same
key and the outbox's unique index drops the copy.

    new_order      {shop}:new_order:{srid | checkout-form id}:seen | bought | paid
    cancellation   {shop}:cancellation:{order id}:cancelled
    buyout/return  {shop}:buyout|return:{srid}:sale (WB statistics and order feed alike; saleID
                   when a sale has no srid) ; Allegro {shop}:return:{return id}:customer_return
    negative_review{shop}:negative_review:{feedback id}:new
    critical_stock {shop}:critical_stock:{sku}:{old}>{new}@{snapshot minute}
    stock_runout   {shop}:stock_runout:{sku}:{day}:{horizon}d
    reauth         {shop}:shop_needs_reauth:shop:{status changed at}
    sync_failing   {shop}:sync_failing:{stream}:{failing since}

The one exception is stock: a report is a state with no id, so a crossing is named by its
totals and the snapshot's minute. Exactly-once there rests on the merge itself: overlapping
merges of one shop serialise on the stock rows' locks, and the second sees no total change.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

MAX_KEY = 255


class Kind(enum.StrEnum):
    new_order = "new_order"
    cancellation = "cancellation"
    buyout = "buyout"
    return_ = "return"
    negative_review = "negative_review"
    critical_stock = "critical_stock"
    stock_runout = "stock_runout"
    shop_needs_reauth = "shop_needs_reauth"
    sync_failing = "sync_failing"


# Kinds only a shop's owners receive.
OWNER_KINDS = frozenset({Kind.shop_needs_reauth.value, Kind.sync_failing.value})


@dataclass(frozen=True, slots=True)
class ShopContext:
    id: int
    marketplace: str  # "wb" | "allegro"
    name: str
    notify_from: datetime | None
    currency: str | None = None
    language: str | None = None
    # The run writing the batch is a backfill. It does not silence anything: silence is for
    # history, what happened before `notify_from`, whichever run writes it.
    backfill: bool = False
    # The shop's first sync finished and no history read is pending. Until then an unseen order
    # stamped just before `notify_from` may be history not read yet: only later ones are news.
    history_complete: bool = True

    @property
    def silent(self) -> bool:
        """Before its first sync a shop has no notify-from point: everything is history."""
        return self.notify_from is None


@dataclass(frozen=True, slots=True)
class ProductInfo:
    """What the catalog (products table) knows about a SKU, for nicer messages."""

    name: str | None = None
    image_url: str | None = None


@dataclass(frozen=True, slots=True)
class Draft:
    kind: str
    dedupe_key: str
    entity: str
    payload: dict[str, Any] = field(default_factory=dict)


def dedupe_key(shop_id: int, kind: str, entity: str, transition: str) -> str:
    key = f"{shop_id}:{kind}:{entity}:{transition}"
    if len(key) <= MAX_KEY:
        return key
    # Marketplace ids are short; a pathological one is hashed rather than truncated (no collisions).
    import hashlib

    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{shop_id}:{kind}:#{digest}"


def _fallback(value: Any) -> str:
    # Decimal (money stays exact as a string) and anything else orjson does not know.
    return str(value)


def jsonable(value: Any) -> Any:
    """Payloads are JSONB: money as strings (exact), times as ISO 8601 with their offset.

    One orjson round trip (C speed): a sync page can make tens of thousands of drafts.
    """
    return orjson.loads(orjson.dumps(value, default=_fallback, option=orjson.OPT_NON_STR_KEYS))
