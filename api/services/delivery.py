"""Notification delivery to a person's bot: poll after a cursor, ack to move the stored cursor.

The notifications work (sellerpulse.notify) owns rendering, grouping and per-person
filtering; `default_delivery()` uses it when it is installed. Until then `OutboxDelivery`
serves the outbox as it is: one item per notification, the person's on/off switches
honoured, and the payload's own `text` (or the kind) as the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.orm import Session

MAX_LIMIT = 200


@dataclass(frozen=True)
class DeliveredItem:
    id: int  # the highest outbox id the item covers: acking it acks the whole item
    ids: list[int]
    kind: str
    shop_id: int
    shop_name: str | None
    text: str
    image_url: str | None
    created_at: datetime


class Delivery(Protocol):
    def poll(
        self, session: Session, *, person_id: int, after: int | None, limit: int, now: datetime
    ) -> tuple[list[DeliveredItem], int]:
        """Items after `after` (None: after the person's acked cursor) and the next cursor."""
        ...

    def ack(self, session: Session, *, person_id: int, cursor: int) -> int:
        """Move the stored cursor forward (never back); returns the stored value."""
        ...

    def cursor_at(self, session: Session, *, person_id: int, at: datetime) -> int:
        """The cursor that means "everything created after `at`" (old bots send a timestamp)."""
        ...


# One index range scan per shop of the person (ix_notifications_shop_id), merged and cut.
POLL_SQL = text(
    """
    SELECT n.id, n.kind, n.shop_id, s.name AS shop_name, n.payload, n.created_at
    FROM memberships m
    JOIN shops s ON s.id = m.shop_id
    CROSS JOIN LATERAL (
        SELECT id, kind, shop_id, payload, created_at FROM notifications
        WHERE shop_id = m.shop_id AND id > :after ORDER BY id LIMIT :limit
    ) n
    WHERE m.person_id = :person_id
    ORDER BY n.id
    LIMIT :limit
    """
)
CURSOR_SQL = text("SELECT last_notification_id FROM delivery_cursors WHERE person_id = :person_id")
SETTINGS_SQL = text("SELECT * FROM notification_settings WHERE person_id = :person_id")
# Never past the newest notification: a bogus huge cursor would silently swallow everything to come.
ACK_SQL = text(
    """
    INSERT INTO delivery_cursors (person_id, last_notification_id, updated_at)
    VALUES (:person_id, LEAST(:cursor, (SELECT coalesce(max(id), 0) FROM notifications)), now())
    ON CONFLICT (person_id) DO UPDATE
        SET last_notification_id = GREATEST(delivery_cursors.last_notification_id, EXCLUDED.last_notification_id),
            updated_at = now()
    RETURNING last_notification_id
    """
)
CURSOR_AT_SQL = text(
    """
    SELECT coalesce(max(n.id), 0) FROM memberships m
    JOIN notifications n ON n.shop_id = m.shop_id
    WHERE m.person_id = :person_id AND n.created_at <= :at
    """
)

# Which switch silences which kind (shop status alerts always go to owners).
KIND_SWITCH = {
    "new_order": "new_orders_enabled",
    "buyout": "order_buyouts_enabled",
    "cancellation": "order_cancellations_enabled",
    "return": "order_returns_enabled",
    "negative_review": "negative_reviews_enabled",
    "critical_stock": "critical_stocks_enabled",
    "stock_runout": "critical_stocks_enabled",
}


def stored_cursor(session: Session, *, person_id: int) -> int:
    return session.execute(CURSOR_SQL, {"person_id": person_id}).scalar() or 0


class OutboxDelivery:
    def poll(
        self, session: Session, *, person_id: int, after: int | None, limit: int, now: datetime
    ) -> tuple[list[DeliveredItem], int]:
        start = stored_cursor(session, person_id=person_id) if after is None else after
        rows = session.execute(POLL_SQL, {"person_id": person_id, "after": start, "limit": limit}).all()
        if not rows:
            return [], start
        wanted = self._filter(session, person_id)
        items = [_item(r) for r in rows if wanted(r.kind)]
        # The cursor passes filtered-out rows too, or they would be fetched again forever.
        return items, rows[-1].id

    def _filter(self, session: Session, person_id: int) -> Any:
        row = session.execute(SETTINGS_SQL, {"person_id": person_id}).mappings().first()
        if row is None:
            return lambda kind: True
        if not row["notifications_enabled"]:
            return lambda kind: False
        return lambda kind: row.get(KIND_SWITCH.get(kind, ""), True)

    def ack(self, session: Session, *, person_id: int, cursor: int) -> int:
        return session.execute(ACK_SQL, {"person_id": person_id, "cursor": cursor}).scalar_one()

    def cursor_at(self, session: Session, *, person_id: int, at: datetime) -> int:
        return session.execute(CURSOR_AT_SQL, {"person_id": person_id, "at": at}).scalar() or 0


def _item(row: Any) -> DeliveredItem:
    payload = row.payload if isinstance(row.payload, dict) else {}
    return DeliveredItem(
        id=row.id,
        ids=[row.id],
        kind=row.kind,
        shop_id=row.shop_id,
        shop_name=row.shop_name,
        text=str(payload.get("text") or row.kind),
        image_url=payload.get("image_url"),
        created_at=row.created_at,
    )


def default_delivery() -> Delivery:
    return OutboxDelivery()
