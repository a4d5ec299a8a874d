"""Runs that died: a `running` sync run whose lease is gone or has expired.

Every sync and backfill runs under a lease of its shop (storage.leases), renewed while it
works; each run record names that lease's fencing token. When the process is killed (SIGKILL,
OOM, a worker or machine that died), nothing renews the lease and nothing finishes the run
record: it would say `running` for ever and never count as a failure. Once the lease has
expired (or been taken over, or released without the run being finished), the run can never
write again (the fence refuses it), so reaping marks it `failed`, with the reason, and counts
it like any failure: the owners hear `sync_failing` once a stream has been failing (crashed
runs included) for longer than the setting.

Reaping runs where runs are looked at: when a sync or backfill of the shop takes its lease,
at the start of every sync-all, and when the API shows a shop's runs. It is one statement, safe
to run anywhere at any time: a run whose lease is alive is never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from storage import outbox
from storage.sync_state import failing_since

CRASHED = (
    "crashed: the run's process stopped without finishing it (killed, or its worker or machine died): "
    "its lease of the shop expired"
)

# The run `r` (a sync_runs row) has no live lease: no unexpired lease of its shop carries its
# token. A run without a token was recorded before migration 0014 (every run since is made
# under a lease): dead. Also what the API's one-statement dashboard checks before it shows
# runs (api.fastroutes): a shop with such a run is shown by the route that reaps them.
HOLDER_GONE = """(r.lease_token IS NULL OR NOT EXISTS (
          SELECT 1 FROM sync_leases l
          WHERE l.shop_id = r.shop_id AND l.token = r.lease_token AND l.expires_at > clock_timestamp()))"""

_REAP = text(
    f"""
    UPDATE sync_runs r SET status = 'failed', finished_at = now(), error = :reason
    WHERE r.status = 'running' AND (CAST(:shop AS bigint) IS NULL OR r.shop_id = :shop)
      AND {HOLDER_GONE}
    RETURNING r.id, r.shop_id, r.stream
    """
)


@dataclass(frozen=True)
class Reaped:
    run_id: int
    shop_id: int
    stream: str


def reap_dead_runs(session: Session, *, failing_after: timedelta, shop_id: int | None = None) -> list[Reaped]:
    """Mark the dead `running` runs (of one shop, or all) failed, in the caller's transaction,
    and tell the owners of a stream failing for longer than `failing_after`."""
    rows = session.execute(_REAP, {"reason": CRASHED, "shop": shop_id}).all()
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


def reap(engine: Engine, *, failing_after: timedelta, shop_id: int | None = None) -> list[Reaped]:
    """`reap_dead_runs` in a transaction of its own."""
    with Session(engine) as session, session.begin():
        return reap_dead_runs(session, failing_after=failing_after, shop_id=shop_id)
