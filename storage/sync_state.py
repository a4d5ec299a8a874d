"""Sync bookkeeping: cursors, run records, and the per-shop locks.

- A cursor moves only inside the transaction that wrote the rows it covers (`set_cursor`
  takes the caller's session).
- Run records are written in their own short transactions, so a failed batch still leaves
  a record of the failure.
- One sync of a shop at a time: a PostgreSQL advisory lock held by a dedicated connection
  for the whole sync, so it works across processes and machines and is released if the
  process dies.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from storage.models import SyncCursor, SyncRun

# Advisory lock namespaces (first int of the two-int form): keeps our keys apart from others'.
LOCK_SYNC = 71_001
LOCK_BACKFILL = 71_002


def get_cursor(session: Session, *, shop_id: int, stream: str) -> dict[str, Any] | None:
    return session.scalar(select(SyncCursor.value).where(SyncCursor.shop_id == shop_id, SyncCursor.stream == stream))


def set_cursor(session: Session, *, shop_id: int, stream: str, value: dict[str, Any]) -> None:
    stmt = insert(SyncCursor).values(shop_id=shop_id, stream=stream, value=value)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[SyncCursor.shop_id, SyncCursor.stream],
            set_={"value": stmt.excluded.value, "updated_at": text("now()")},
        )
    )


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


def start_run(engine: Engine, *, shop_id: int, stream: str, kind: str = "sync", flow_run_id: str | None = None) -> int:
    with Session(engine) as session, session.begin():
        run = SyncRun(shop_id=shop_id, stream=stream, kind=kind, status="running", flow_run_id=flow_run_id)
        session.add(run)
        session.flush()
        return run.id


def finish_run(engine: Engine, *, run_id: int, status: str, counts: RunCounts, error: str | None = None) -> None:
    with Session(engine) as session, session.begin():
        session.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id)
            .values(status=status, finished_at=datetime.now(UTC), error=error, **counts.as_dict())
        )


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


class LockBusy(RuntimeError):
    """Another process holds the lock."""


@contextmanager
def advisory_lock(engine: Engine, *, namespace: int, key: int, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold a session-level advisory lock on a dedicated connection; LockBusy after `wait_seconds`."""
    deadline = time.monotonic() + wait_seconds
    with engine.connect() as conn:
        while not conn.execute(text("SELECT pg_try_advisory_lock(:ns, :key)"), {"ns": namespace, "key": key}).scalar():
            conn.rollback()
            if time.monotonic() >= deadline:
                raise LockBusy(f"lock {namespace}/{key} is held by another process")
            time.sleep(0.2)
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:ns, :key)"), {"ns": namespace, "key": key})
            conn.commit()
