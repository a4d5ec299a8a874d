"""Sync bookkeeping: cursors and run records (the per-shop lease is storage.leases).

- A cursor moves only inside the transaction that wrote the rows it covers (`set_cursor`
  takes the caller's session).
- Run records are written in their own short transactions, so a failed batch still leaves
  a record of the failure.
- One sync of a shop at a time: a lease row with a fencing token (storage.leases). Each run
  record names the token of the lease it runs under, so a run left `running` by a process
  that died (its lease gone or expired) is recognised (storage.reaping).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, bindparam, delete, insert, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from storage.models import SyncCursor, SyncRun

# The hot statements of every stream (its start, its pages' cursors, its end) on the tables, not
# the mapped classes: SQLAlchemy Core skips the ORM's compile and flush steps (a stream's start
# and end went through the unit of work and the ORM's bulk update with its session sync).
CURSORS = SyncCursor.__table__
RUNS = SyncRun.__table__


def get_cursor(session: Session, *, shop_id: int, stream: str) -> dict[str, Any] | None:
    c = CURSORS.c
    return session.scalar(select(c.value).where(c.shop_id == shop_id, c.stream == stream))


# Text, not the PostgreSQL dialect's insert().on_conflict_do_update(): that construct has no
# cache key in SQLAlchemy 2.0 (its Insert sets inherit_cache = False), so it was compiled anew
# on every page of every stream; a text() statement is compiled once.
_SET_CURSOR = text(
    """
    INSERT INTO sync_cursors (shop_id, stream, value) VALUES (:shop_id, :stream, :value)
    ON CONFLICT (shop_id, stream) DO UPDATE SET value = excluded.value, updated_at = now()
    """
).bindparams(bindparam("value", type_=JSONB))


def set_cursor(session: Session, *, shop_id: int, stream: str, value: dict[str, Any]) -> None:
    session.execute(_SET_CURSOR, {"shop_id": shop_id, "stream": stream, "value": value})


@dataclass
class RunCounts:
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    stale_refused: int = 0
    requests: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def start_run(engine: Engine, **run: Any) -> int:
    """`add_run` in a transaction of its own."""
    with Session(engine) as session, session.begin():
        return add_run(session, **run)


def add_run(
    session: Session,
    *,
    shop_id: int,
    stream: str,
    kind: str = "sync",
    flow_run_id: str | None = None,
    lease_token: int | None = None,
) -> int:
    """A `running` run record; `lease_token` is the token of the shop lease the run runs under
    (storage.reaping marks the run crashed once that lease is gone or expired)."""
    values = {"shop_id": shop_id, "stream": stream, "kind": kind, "status": "running"}
    stmt = insert(RUNS).values(**values, flow_run_id=flow_run_id, lease_token=lease_token).returning(RUNS.c.id)
    return int(session.execute(stmt).scalar_one())


def finish_run(engine: Engine, *, run_id: int, status: str, counts: RunCounts, error: str | None = None) -> None:
    with Session(engine) as session, session.begin():
        close_run(session, run_id=run_id, status=status, counts=counts, error=error)


def close_run(session: Session, *, run_id: int, status: str, counts: RunCounts, error: str | None = None) -> None:
    """`finish_run` in the caller's transaction."""
    session.execute(
        update(RUNS)
        .where(RUNS.c.id == run_id)
        .values(status=status, finished_at=datetime.now(UTC), error=error, **counts.as_dict())
    )


def delete_runs(session: Session, *, run_ids: list[int]) -> None:
    """Run records of streams begun ahead that never ran (tasks.context.discard_begun)."""
    session.execute(delete(SyncRun).where(SyncRun.id.in_(run_ids), SyncRun.status == "running"))


def failing_since(session: Session, *, shop_id: int, stream: str) -> datetime | None:
    """Start of the current run of consecutive failures of a stream, or None if its last run passed."""
    last_ok = session.scalar(
        select(SyncRun.started_at)
        .where(SyncRun.shop_id == shop_id, SyncRun.stream == stream, SyncRun.status == "success")
        .order_by(SyncRun.started_at.desc())
        .limit(1)
    )
    query = select(SyncRun.started_at).where(
        SyncRun.shop_id == shop_id, SyncRun.stream == stream, SyncRun.status == "failed"
    )
    if last_ok is not None:
        query = query.where(SyncRun.started_at > last_ok)
    return session.scalar(query.order_by(SyncRun.started_at.asc()).limit(1))


# Runs that are not a sync of the shop as a whole: the order feed is read on its own schedule
# too (flows.feed), and a feed read alone must not count as this cycle's sync of a WB shop.
NOT_A_SYNC = ("wb_feed",)


def synced_since(engine: Engine, shop_ids: list[int], since: datetime) -> set[int]:
    """The shops among `shop_ids` a sync of which began at or after `since` (the database's
    clock): one query, on the index of runs by shop, stream and start."""
    with Session(engine) as session:
        return synced_since_in(session, shop_ids, since)


def synced_since_in(session: Session, shop_ids: list[int], since: datetime) -> set[int]:
    """`synced_since` in the caller's session."""
    if not shop_ids:
        return set()
    query = (
        select(SyncRun.shop_id)
        .where(SyncRun.shop_id.in_(shop_ids), SyncRun.kind == "sync", SyncRun.started_at >= since)
        .where(SyncRun.stream.not_in(NOT_A_SYNC))
        .distinct()
    )
    return set(session.scalars(query))


def database_now(engine: Engine) -> datetime:
    """The database server's clock: the one every worker's runs are recorded by."""
    with engine.connect() as conn:
        return conn.execute(text("SELECT clock_timestamp()")).scalar_one()
