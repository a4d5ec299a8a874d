"""When a stream may call the marketplace again, after a 429 that asked for a long wait.

Some tokens get far less than the usual limit (a WB Base token: statistics orders 1 request per
3 hours, sales 1 per 2 hours, the order feed 1 per 3 hours). Such a 429's retry time is longer
than a run waits (connectors.errors.RetryLater), so the stream stops, and the time WB named is
kept here: every later sync and feed read of the shop, on any worker, skips the stream without
a request until then (calling every minute would only be refused again and counted against
us), then reads on from its cursor, so nothing is lost.

One row of `sync_cursors` per limited stream, under the stream name plus `LIMIT_SUFFIX`
(`wb_feed@limit`: `{"until": ISO time, "retry_after_s": seconds}`), deleted by the stream's next
success. Keyword-only functions; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from storage.models import SyncCursor
from storage.sync_state import CURSORS, set_cursor

LIMIT_SUFFIX = "@limit"


def record_limit(session: Session, *, shop_id: int, stream: str, now: datetime, retry_after: float) -> datetime:
    """The stream may not call before `now + retry_after`; returns that time."""
    until = now + timedelta(seconds=retry_after)
    value = {"until": until.isoformat(), "retry_after_s": round(retry_after, 1)}
    set_cursor(session, shop_id=shop_id, stream=stream + LIMIT_SUFFIX, value=value)
    return until


def limit_and_cursor(
    session: Session, *, shop_id: int, stream: str, cursor: str | None = None
) -> tuple[datetime | None, dict[str, Any] | None]:
    """When the stream may call again (None: no limit recorded; may be in the past) and its
    cursor, the one named `cursor` if it keeps it under another name (None: none stored), in
    one query."""
    name, c = cursor or stream, CURSORS.c  # Core, not the ORM: every stream's start (storage.sync_state)
    rows = dict(
        session.execute(
            select(c.stream, c.value).where(c.shop_id == shop_id, c.stream.in_([name, stream + LIMIT_SUFFIX]))
        )
        .tuples()
        .all()
    )
    return _until(rows.get(stream + LIMIT_SUFFIX)), rows.get(name)


def _until(value: dict[str, Any] | None) -> datetime | None:
    return datetime.fromisoformat(value["until"]) if value and value.get("until") else None


def clear_limit(session: Session, *, shop_id: int, stream: str) -> None:
    session.execute(delete(SyncCursor).where(SyncCursor.shop_id == shop_id, SyncCursor.stream == stream + LIMIT_SUFFIX))


def limits_of(session: Session, *, shop_ids: Iterable[int], now: datetime) -> dict[int, dict[str, datetime]]:
    """{shop id: {stream: until}} of the limits still in force at `now` (every shop listed)."""
    ids = list(shop_ids)
    out: dict[int, dict[str, datetime]] = {i: {} for i in ids}
    rows = session.execute(
        select(SyncCursor.shop_id, SyncCursor.stream, SyncCursor.value).where(
            SyncCursor.shop_id.in_(ids), SyncCursor.stream.like(f"%{LIMIT_SUFFIX}")
        )
    ).all()
    for shop_id, stream, value in rows:
        until = datetime.fromisoformat(value["until"]) if value and value.get("until") else None
        if until is not None and until > now:
            out[shop_id][stream.removesuffix(LIMIT_SUFFIX)] = until
    return out
