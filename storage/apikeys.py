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
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from storage.models import ApiKey

KEY_PREFIX = "sp_"
PREFIX_LENGTH = 11  # "sp_" + 8 characters: enough to tell keys apart, far too little to guess one
# last_used_at is a hint for operators, not an audit log: writing it on every poll would cost a row
# update per request, so it is refreshed at most this often.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# The touch never waits: every request of a bot uses one key, and a request that touched it holds
# the row until its transaction ends; the others skip (one touch a minute is all that is wanted),
# where waiting queued every request behind the slowest (a batch poll) and emptied the pool.
TOUCH = (
    "UPDATE api_keys SET last_used_at = :now WHERE id = (SELECT id FROM api_keys WHERE id = :id FOR UPDATE SKIP LOCKED)"
)


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
        session.execute(text(TOUCH), {"now": now, "id": key.id})
    return key


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
        cur.execute(TOUCH.replace(":now", "%(now)s").replace(":id", "%(id)s"), {"now": now, "id": key.id})
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
