"""Back-off of shops whose syncs keep failing: they wait exponentially longer, up to a cap.

A sync fails when none of its streams succeeded (a host that is down, a token refused); one
stream failing while the others work is not a reason to sync the shop's orders less often.
After the n-th failure in a row the shop waits `min(cap, base * (2**(n-1) - 1))`: the first
failure costs nothing (the next cycle tries again, as before), then one base, three, seven...
A success deletes the row.

The scheduled sync-all leaves out a shop whose `next_attempt_at` has not come (`backed_off`);
a sync asked for by hand runs anyway, and its outcome counts the same way. Times are on the
database server's clock, the one every worker shares; the count is one atomic upsert, so two
workers recording at once never lose a failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from storage.models import SyncBackoff

# The error kept is for operators (`shops list`): one line, bounded.
ERROR_CHARS = 500

_FAILED = text(
    """
    INSERT INTO sync_backoff AS b (shop_id, failures, next_attempt_at, last_error, failed_at)
    VALUES (:shop, 1, now(), :error, now())
    ON CONFLICT (shop_id) DO UPDATE SET
      failures = b.failures + 1,
      next_attempt_at = now() + make_interval(
        secs => LEAST(CAST(:cap AS double precision), :base * (power(2, b.failures) - 1))),
      last_error = EXCLUDED.last_error,
      failed_at = now()
    RETURNING failures, next_attempt_at
    """
)


@dataclass(frozen=True)
class Backoff:
    failures: int
    next_attempt_at: datetime
    last_error: str | None = None


def delay_seconds(failures: int, *, base: float, cap: float) -> float:
    """How long a shop waits after `failures` failed syncs in a row (the upsert's arithmetic)."""
    if failures < 1:
        return 0.0
    return min(cap, base * (2 ** (failures - 1) - 1))


def record_failure(session: Session, *, shop_id: int, error: str | None, base: float, cap: float) -> Backoff:
    line = (error or "").splitlines()[0][:ERROR_CHARS] if error else None
    failures, at = session.execute(_FAILED, {"shop": shop_id, "error": line, "base": base, "cap": cap}).one()
    return Backoff(failures, at, line)


def record_success(session: Session, *, shop_id: int) -> None:
    session.execute(delete(SyncBackoff).where(SyncBackoff.shop_id == shop_id))


def record_outcome(
    session: Session, *, shop_id: int, ok: bool, error: str | None, base: float, cap: float
) -> Backoff | None:
    """In the caller's transaction (a sync's last one): the shop's back-off after this sync
    (None: none)."""
    if ok:
        record_success(session, shop_id=shop_id)
        return None
    return record_failure(session, shop_id=shop_id, error=error, base=base, cap=cap)


def backed_off(session: Session) -> set[int]:
    """Shops whose next attempt has not come yet."""
    return set(session.scalars(select(SyncBackoff.shop_id).where(SyncBackoff.next_attempt_at > func.now())))


def backoffs(session: Session, *, shop_ids: list[int]) -> dict[int, Backoff]:
    rows = session.scalars(select(SyncBackoff).where(SyncBackoff.shop_id.in_(shop_ids)))
    return {r.shop_id: Backoff(r.failures, r.next_attempt_at, r.last_error) for r in rows}
