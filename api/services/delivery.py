"""Notification delivery to a person's bot: poll after a cursor, ack to move the stored cursor.

Rendering, grouping and per-person filtering belong to the notifications work
(`storage.outbox` on `sellerpulse.notify`); this module only states what the API needs
from it, and adapts the real thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import psycopg
from sqlalchemy.orm import Session

from storage import outbox
from storage.apikeys import StoredKey


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


class CallerPoll(Protocol):
    """What the poll found for an API key and a Telegram id (storage.outbox.CallerPage)."""

    @property
    def key(self) -> StoredKey: ...

    @property
    def person_id(self) -> int | None: ...  # None: no such person, or a revoked key (nothing read)

    @property
    def page(self) -> DeliveredPage: ...


class DeliveredPage(Protocol):
    @property
    def items(self) -> Sequence[DeliveredItem]: ...

    @property
    def next_cursor(self) -> int: ...


class Delivery(Protocol):
    def poll_as(
        self,
        cur: psycopg.Cursor[Any],
        *,
        key_digest: str,
        telegram_id: int,
        after: int | None,
        at: datetime | None,
        limit: int,
        now: datetime,
    ) -> CallerPoll | None:
        """The bot's poll in one statement on a cursor of the driver: the key with this digest
        (None: no such key), the person, and their items after `after`, or after the cursor
        equivalent to the time `at` (old bots), or after their acked cursor."""
        ...

    def poll_many(
        self, session: Session, *, requests: Sequence[tuple[int, int | None]], limit: int, now: datetime
    ) -> dict[int, tuple[Sequence[DeliveredItem], int]]:
        """Several people in one go: {person_id: (items, next_cursor)}."""
        ...

    def ack(self, session: Session, *, person_id: int, cursor: int) -> int:
        """Move the stored cursor forward (never back); returns the stored value."""
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
