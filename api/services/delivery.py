"""Notification delivery to a person's bot: poll after a cursor, ack to move the stored cursor.

Rendering, grouping and per-person filtering belong to the notifications work
(`storage.outbox` on `sellerpulse.notify`); this module only states what the API needs
from it, and adapts the real thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from storage import outbox


class DeliveredItem(Protocol):
    @property
    def id(self) -> int: ...  # the highest outbox id the item covers: acking it acks the whole item

    @property
    def ids(self) -> list[int]: ...

    @property
    def kind(self) -> str: ...

    @property
    def shop_id(self) -> int: ...

    @property
    def shop_name(self) -> str | None: ...

    @property
    def text(self) -> str: ...

    @property
    def image_url(self) -> str | None: ...

    @property
    def created_at(self) -> datetime: ...


class Delivery(Protocol):
    def poll(
        self, session: Session, *, person_id: int, after: int | None, limit: int, now: datetime
    ) -> tuple[Sequence[DeliveredItem], int]:
        """Items after `after` (None: after the person's acked cursor) and the next cursor."""
        ...

    def poll_many(
        self, session: Session, *, requests: Sequence[tuple[int, int | None]], limit: int, now: datetime
    ) -> dict[int, tuple[Sequence[DeliveredItem], int]]:
        """Several people in one go: {person_id: (items, next_cursor)}."""
        ...

    def ack(self, session: Session, *, person_id: int, cursor: int) -> int:
        """Move the stored cursor forward (never back); returns the stored value."""
        ...

    def cursor_at(self, session: Session, *, person_id: int, at: datetime) -> int:
        """The cursor that means "everything created after `at`" (old bots send a timestamp)."""
        ...


class OutboxDelivery(outbox.Delivery):
    """storage.outbox's delivery, plus its one-query batch poll."""

    def poll_many(
        self, session: Session, *, requests: Sequence[tuple[int, int | None]], limit: int, now: datetime
    ) -> dict[int, tuple[Sequence[DeliveredItem], int]]:
        pages = outbox.poll_many(session, requests=requests, limit=limit, now=now)
        return {person: (page.items, page.next_cursor) for person, page in pages.items()}


def default_delivery() -> Delivery:
    return OutboxDelivery()
