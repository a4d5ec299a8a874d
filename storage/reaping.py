"""Runs that died: a `running` sync run whose process no longer holds the shop's lock.

Every sync and backfill runs under a PostgreSQL advisory lock of its shop (storage.sync_state),
held by a connection of the process doing it; each run record names that lock and the backend
(pid) holding it. When the process is killed (SIGKILL, OOM, a worker that died), PostgreSQL
ends its connection and releases the lock, but nothing finishes the run record: it would say
`running` for ever and never count as a failure. Reaping marks such a run `failed`, with the
reason, and counts it like any failure: the owners hear `sync_failing` once a stream has been
failing (crashed runs included) for longer than the setting.

Reaping runs where runs are looked at: when a sync or backfill of the shop takes its lock,
at the start of every sync-all, and when the API shows a shop's runs. It is one statement, safe
to run anywhere at any time: a run whose holder still holds the lock is never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from storage import outbox
from storage.sync_state import LOCK_BACKFILL, LOCK_SYNC, LockHolder, failing_since

CRASHED = (
    "crashed: the run's process stopped without finishing it (killed, or its worker or machine died): "
    "it no longer holds the shop's lock"
)

# The run `r` (a sync_runs row) is not held by the process it names: no granted advisory lock
# of its shop is that run's (its namespace and backend; any of the shop's, for a run recorded
# without them). Also what the API's one-statement dashboard checks before it shows runs
# (api.fastroutes): a shop with such a run is shown by the route that reaps them.
HOLDER_GONE = f"""NOT EXISTS (
          SELECT 1 FROM pg_locks l
          WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
            AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND l.objid::bigint = r.shop_id
            AND CASE WHEN r.lock_pid IS NULL THEN l.classid::bigint IN ({LOCK_SYNC}, {LOCK_BACKFILL})
                     ELSE l.classid::bigint = r.lock_namespace AND l.pid = r.lock_pid END)"""

# A run names its lock (namespace, shop id) and the backend holding it; a run recorded without
# one (before migration 0007) is alive while any process holds one of the shop's locks. The
# caller may hold one of the shop's locks itself, just taken (`taken_ns`): every run under that
# lock is then dead, whoever it names (a pooled connection keeps its backend pid from one sync
# to the next, so the pid alone cannot tell an old run from a live one).
_REAP = text(
    f"""
    UPDATE sync_runs r SET status = 'failed', finished_at = now(), error = :reason
    WHERE r.status = 'running' AND (CAST(:shop AS bigint) IS NULL OR r.shop_id = :shop)
      AND (
        r.lock_namespace = CAST(:taken_ns AS integer)
        OR (r.lock_pid IS NULL AND r.kind = :taken_kind)
        OR {HOLDER_GONE})
    RETURNING r.id, r.shop_id, r.stream
    """
)


@dataclass(frozen=True)
class Reaped:
    run_id: int
    shop_id: int
    stream: str


def reap_dead_runs(
    session: Session, *, failing_after: timedelta, shop_id: int | None = None, taken: LockHolder | None = None
) -> list[Reaped]:
    """Mark the dead `running` runs (of one shop, or all) failed, in the caller's transaction,
    and tell the owners of a stream failing for longer than `failing_after`. `taken`: the lock
    of this shop the caller has just taken, before starting any run under it."""
    if taken is not None and taken.key != shop_id:
        raise ValueError("a lock taken is the lock of the shop being reaped")
    params = {
        "reason": CRASHED,
        "shop": shop_id,
        "taken_ns": taken.namespace if taken else None,
        "taken_kind": None if taken is None else "sync" if taken.namespace == LOCK_SYNC else "backfill",
    }
    rows = session.execute(_REAP, params).all()
    reaped = [Reaped(*row) for row in rows]
    now = datetime.now(UTC)
    for shop, stream in sorted({(r.shop_id, r.stream) for r in reaped}):
        outbox.notify_sync_failing(
            session,
            shop=outbox.shop_context(session, shop_id=shop),
            stream=stream,
            failing_since=failing_since(session, shop_id=shop, stream=stream),
            now=now,
            after=failing_after,
            error=CRASHED,
        )
    return reaped


def reap(
    engine: Engine, *, failing_after: timedelta, shop_id: int | None = None, taken: LockHolder | None = None
) -> list[Reaped]:
    """`reap_dead_runs` in a transaction of its own."""
    with Session(engine) as session, session.begin():
        return reap_dead_runs(session, failing_after=failing_after, shop_id=shop_id, taken=taken)
