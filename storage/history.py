"""History reads of a shop and whether its history is complete.

A history read is a read of a shop's past orders over a range of their key (Allegro: the
checkout forms by `lineItems.boughtAt`): the first sync's backup of the order history, or a
backfill. It stores how far it got (`done_until`: every order whose key is before it is stored)
in the same transaction as the rows it covers, so a retry or the next run continues where it
stopped and never reads a finished window again.

A shop's history is complete when its first sync has finished (its notify-from point is set)
and no history read of it is pending. Until then the API and `sellerpulse shops list` say
"history incomplete": a shop is never half backed up without saying so.

Keyword-only; the caller owns the transaction.
    begin_read(session, *, shop_id, name, since, until) -> HistoryProgress    (get or create)
    get_read(session, *, shop_id, name) -> HistoryProgress | None
    restart_read(session, *, shop_id, name) -> HistoryProgress                 (read it all again)
    advance_read(session, *, shop_id, name, done_until) -> None                (never moves back)
    finish_read(session, *, shop_id, name) -> None                             (and reads it covers)
    pending_reads(session, *, shop_id) -> list[HistoryProgress]
    history_complete(session, *, shop_id) -> bool
    history_status(session, *, shop_ids) -> dict[int, bool]
    history_complete_expr() -> a boolean SQL expression over `shops` (for a query's columns)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from storage.models import HistoryRead, Shop

FIRST_SYNC = "first-sync"


def backfill_name(since: datetime, until: datetime) -> str:
    """One name per range: re-running a backfill with the same range continues it."""
    return f"backfill:{since.isoformat()}:{until.isoformat()}"


@dataclass(frozen=True)
class HistoryProgress:
    shop_id: int
    name: str
    since: datetime
    until: datetime
    done_until: datetime | None
    started_at: datetime
    completed_at: datetime | None

    @property
    def resume_from(self) -> datetime:
        """Where the read goes on: nothing before this point is read again."""
        return max(self.since, self.done_until) if self.done_until else self.since

    @property
    def complete(self) -> bool:
        return self.completed_at is not None

    @classmethod
    def of(cls, row: HistoryRead) -> HistoryProgress:
        return cls(row.shop_id, row.name, row.since, row.until, row.done_until, row.started_at, row.completed_at)


def _row(session: Session, shop_id: int, name: str) -> HistoryRead | None:
    return session.scalars(select(HistoryRead).where(HistoryRead.shop_id == shop_id, HistoryRead.name == name)).first()


def get_read(session: Session, *, shop_id: int, name: str) -> HistoryProgress | None:
    row = _row(session, shop_id, name)
    return HistoryProgress.of(row) if row else None


def begin_read(session: Session, *, shop_id: int, name: str, since: datetime, until: datetime) -> HistoryProgress:
    """The read of that name, created pending over [since, until] if it did not exist (an
    existing one keeps its range and progress)."""
    session.execute(
        insert(HistoryRead)
        .values(shop_id=shop_id, name=name, since=since, until=until)
        .on_conflict_do_nothing(index_elements=[HistoryRead.shop_id, HistoryRead.name])
    )
    session.flush()
    found = get_read(session, shop_id=shop_id, name=name)
    assert found is not None
    return found


def restart_read(session: Session, *, shop_id: int, name: str) -> HistoryProgress:
    """Read the range again from its start (a finished backfill run once more): pending again."""
    session.execute(
        update(HistoryRead)
        .where(HistoryRead.shop_id == shop_id, HistoryRead.name == name)
        .values(done_until=None, completed_at=None, started_at=func.now(), updated_at=func.now())
    )
    found = get_read(session, shop_id=shop_id, name=name)
    if found is None:
        raise LookupError(f"no history read {name!r} of shop {shop_id}")
    return found


def advance_read(session: Session, *, shop_id: int, name: str, done_until: datetime) -> None:
    """Everything before `done_until` is stored (in this transaction). Never moves back."""
    session.execute(
        update(HistoryRead)
        .where(HistoryRead.shop_id == shop_id, HistoryRead.name == name)
        .values(done_until=func.greatest(func.coalesce(HistoryRead.done_until, done_until), done_until))
        .values(updated_at=func.now())
    )


def finish_read(session: Session, *, shop_id: int, name: str) -> None:
    """The read is done; so is every pending read of the shop whose range lies within it."""
    row = _row(session, shop_id, name)
    if row is None:
        return
    session.execute(
        update(HistoryRead)
        .where(
            HistoryRead.shop_id == shop_id,
            HistoryRead.completed_at.is_(None),
            (HistoryRead.name == name) | and_(HistoryRead.since >= row.since, HistoryRead.until <= row.until),
        )
        .values(done_until=func.greatest(HistoryRead.until, func.coalesce(HistoryRead.done_until, HistoryRead.until)))
        .values(completed_at=func.now(), updated_at=func.now())
    )


def pending_reads(session: Session, *, shop_id: int) -> list[HistoryProgress]:
    rows = session.scalars(
        select(HistoryRead)
        .where(HistoryRead.shop_id == shop_id, HistoryRead.completed_at.is_(None))
        .order_by(HistoryRead.started_at, HistoryRead.id)
    )
    return [HistoryProgress.of(r) for r in rows]


def history_complete_expr() -> ColumnElement[bool]:
    """True for a shop whose first sync has finished and that has no pending history read."""
    pending = exists().where(HistoryRead.shop_id == Shop.id, HistoryRead.completed_at.is_(None))
    return and_(Shop.notify_from.is_not(None), ~pending)


def history_status(session: Session, *, shop_ids: Iterable[int]) -> dict[int, bool]:
    """{shop id: history complete} for the shops that exist."""
    ids = list(shop_ids)
    if not ids:
        return {}
    rows = session.execute(select(Shop.id, history_complete_expr()).where(Shop.id.in_(ids)))
    return {shop_id: bool(done) for shop_id, done in rows}


def history_complete(session: Session, *, shop_id: int) -> bool:
    return history_status(session, shop_ids=[shop_id]).get(shop_id, False)
