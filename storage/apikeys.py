"""API keys: stored as sha256, shown once, compared in constant time, listable and revocable.

Keyword-only data-access functions; callers own the transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage.models import ApiKey

KEY_PREFIX = "sp_"
PREFIX_LENGTH = 11  # "sp_" + 8 characters: enough to tell keys apart, far too little to guess one
# last_used_at is a hint for operators, not an audit log: writing it on every poll would cost a row
# update per request, so it is refreshed at most this often.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    secret: str  # the only time the plaintext exists outside the caller's hands


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(session: Session, *, name: str) -> NewKey:
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, prefix=secret[:PREFIX_LENGTH], key_hash=hash_key(secret))
    session.add(key)
    session.flush()
    return NewKey(key=key, secret=secret)


def digest_of(secret: str) -> str | None:
    """The stored form of a secret; None for one that cannot be a key (not worth a query)."""
    if not secret.startswith(KEY_PREFIX) or len(secret) > 128:
        return None
    return hash_key(secret)


def authenticate(session: Session, *, secret: str, now: datetime | None = None) -> ApiKey | None:
    """The active key matching `secret`, or None. Touches last_used_at (coarsely)."""
    digest = digest_of(secret)
    if digest is None:
        return None
    key = session.scalars(select(ApiKey).where(ApiKey.key_hash == digest)).first()
    if key is None or not _active(key.key_hash, key.revoked_at, digest):
        return None
    now = now or datetime.now(UTC)
    if _due(key.last_used_at, now):
        session.connection().exec_driver_sql(_TOUCH, {"id": key.id, "now": now})
    return key


# The coarse touch never waits for the key's row: every request of a busy bot finds it due at
# the same moment, and one holding the row lock for its whole transaction (a slow batch poll)
# made the others wait for it, the poll's fast path with its event loop blocked (the mixed
# benchmark: statement timeouts, a worker answering 7 requests in 20 s). Whoever holds the
# lock is touching it anyway; the rest skip.
_TOUCH = (
    "UPDATE api_keys SET last_used_at = %(now)s WHERE id = "
    "(SELECT id FROM api_keys WHERE id = %(id)s FOR UPDATE SKIP LOCKED)"
)


@dataclass(frozen=True, slots=True)
class StoredKey:
    """An api_keys row as a query found it by digest (the poll reads it with its page)."""

    id: int
    key_hash: str
    revoked_at: datetime | None
    last_used_at: datetime | None


def verify(cur: psycopg.Cursor[Any], key: StoredKey | None, digest: str, now: datetime | None = None) -> bool:
    """`authenticate` for a key row read by another statement (storage.outbox.poll_as), on a
    cursor of the driver: the same checks, the same coarse touch."""
    if key is None or not _active(key.key_hash, key.revoked_at, digest):
        return False
    now = now or datetime.now(UTC)
    if _due(key.last_used_at, now):
        cur.execute(_TOUCH, {"id": key.id, "now": now})
    return True


def _active(key_hash: str, revoked_at: datetime | None, digest: str) -> bool:
    # The lookup is by digest; compare again in constant time so no timing says how close a guess was.
    return hmac.compare_digest(key_hash, digest) and revoked_at is None


def _due(last_used_at: datetime | None, now: datetime) -> bool:
    return last_used_at is None or now - last_used_at >= LAST_USED_RESOLUTION


def list_keys(session: Session, *, include_revoked: bool = True) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return list(session.scalars(query))


def revoke_key(session: Session, *, key_id: int, now: datetime | None = None) -> bool:
    """Revoke a key; False when there is no such active key."""
    result = session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now or datetime.now(UTC))
    )
    return bool(result.rowcount)


# -- failed authentication, per client address ----------------------------------------------

FAILURE_WINDOW_SECONDS = 60
# One counter per address, restarted when its minute is over; RETURNING says how many failures
# the address has in its current minute and how many seconds of that minute are left.
_RECORD_FAILURE = """
WITH w AS (SELECT now() - make_interval(secs => %(window)s) AS since)
INSERT INTO api_auth_failures AS f (client, window_start, failures) VALUES (%(client)s, now(), 1)
ON CONFLICT (client) DO UPDATE SET
    failures = CASE WHEN f.window_start > (SELECT since FROM w) THEN f.failures + 1 ELSE 1 END,
    window_start = CASE WHEN f.window_start > (SELECT since FROM w) THEN f.window_start ELSE now() END
RETURNING failures, extract(epoch FROM f.window_start + make_interval(secs => %(window)s) - now())::float8
"""
# Counters of addresses that have stopped failing are of no use once their minute is over.
_FORGET_FAILURES = "DELETE FROM api_auth_failures WHERE window_start < now() - make_interval(secs => %(keep)s)"


@dataclass(frozen=True, slots=True)
class Failures:
    count: int  # failures of this address in its current minute, this one included
    seconds_left: float  # until that minute is over


def record_failure(cur: psycopg.Cursor[Any], *, client: str) -> Failures:
    """Count a failed authentication from `client` (one statement, on a cursor of the driver:
    the caller's transaction is usually being rolled back, so this runs in its own)."""
    params = {"client": client[:64], "window": FAILURE_WINDOW_SECONDS}
    row = cur.execute(_RECORD_FAILURE, params).fetchone()
    assert row is not None
    failures = Failures(count=int(row[0]), seconds_left=max(0.0, float(row[1])))
    if failures.count == 1:  # a new minute for this address: a good moment to drop stale ones
        cur.execute(_FORGET_FAILURES, {"keep": 10 * FAILURE_WINDOW_SECONDS})
    return failures
