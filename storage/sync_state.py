"""Sync bookkeeping: cursors, run records, and the per-shop locks.

- A cursor moves only inside the transaction that wrote the rows it covers (`set_cursor`
  takes the caller's session).
- Run records are written in their own short transactions, so a failed batch still leaves
  a record of the failure.
- One sync of a shop at a time: a PostgreSQL advisory lock held by a dedicated connection
  for the whole sync, so it works across processes and machines and is released if the
  process dies. Each run record names the lock and its holder, so a run left `running` by a
  process that died is recognised (storage.reaping).
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


@dataclass(frozen=True)
class LockHolder:
    """An advisory lock held: (namespace, key) by the PostgreSQL backend `pid`."""

    namespace: int
    key: int
    pid: int


def start_run(
    engine: Engine,
    *,
    shop_id: int,
    stream: str,
    kind: str = "sync",
    flow_run_id: str | None = None,
    lock: LockHolder | None = None,
) -> int:
    """A `running` run record; `lock` is the shop lock the run runs under (storage.reaping
    marks the run crashed once that lock's holder is gone)."""
    with Session(engine) as session, session.begin():
        run = SyncRun(
            shop_id=shop_id,
            stream=stream,
            kind=kind,
            status="running",
            flow_run_id=flow_run_id,
            lock_namespace=lock.namespace if lock else None,
            lock_pid=lock.pid if lock else None,
        )
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
def advisory_lock(engine: Engine, *, namespace: int, key: int, wait_seconds: float = 0.0) -> Iterator[LockHolder]:
    """Hold a session-level advisory lock on a dedicated connection; LockBusy after `wait_seconds`.
    Yields who holds it (the connection's backend pid), for the run records made under it."""
    deadline = time.monotonic() + wait_seconds
    with engine.connect() as conn:
        while not conn.execute(text("SELECT pg_try_advisory_lock(:ns, :key)"), {"ns": namespace, "key": key}).scalar():
            conn.rollback()
            if time.monotonic() >= deadline:
                raise LockBusy(f"lock {namespace}/{key} is held by another process")
            time.sleep(0.2)
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        conn.commit()
        try:
            yield LockHolder(namespace, key, pid)
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:ns, :key)"), {"ns": namespace, "key": key})
            conn.commit()
