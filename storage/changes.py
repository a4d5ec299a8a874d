"""What a set-based write changed: the contract between the sync writes and the notification rules.

Every upsert in `storage/` returns one `RowChange` per row it inserted or changed, taken in
the same statement as the write (so in the same transaction). Rows that were already
identical are not returned: a repeated sync produces no changes, hence no notifications.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RowChange:
    # The marketplace's natural key (checkout-form id, srid, saleID, feedback id, sku...).
    key: str
    # The row's columns before the write; None when the row is seen for the first time.
    old: dict[str, Any] | None
    # The row's columns after the write.
    new: dict[str, Any]

    @property
    def is_new(self) -> bool:
        return self.old is None
