"""API keys: stored as sha256, shown once, compared in constant time, listable and revocable.

Keyword-only data-access functions; callers own the transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text, update
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


def authenticate(session: Session, *, secret: str, now: datetime | None = None) -> ApiKey | None:
    """The active key matching `secret`, or None. Touches last_used_at (coarsely)."""
    if not secret.startswith(KEY_PREFIX) or len(secret) > 128:
        return None
    digest = hash_key(secret)
    key = session.scalars(select(ApiKey).where(ApiKey.key_hash == digest)).first()
    # The lookup is by digest; compare again in constant time so no timing says how close a guess was.
    if key is None or not hmac.compare_digest(key.key_hash, digest) or key.revoked_at is not None:
        return None
    _touch(session, key.id, key.last_used_at, now)
    return key


@dataclass(frozen=True)
class Caller:
    key_id: int
    person_id: int | None  # None: no person with that telegram id


# The hot path (the bot polls all day): the key and the person in one round trip.
_KEY_AND_PERSON = text(
    "SELECT k.id, k.key_hash, k.revoked_at, k.last_used_at, "
    "(SELECT p.id FROM people p WHERE p.telegram_id = :telegram_id) AS person_id "
    "FROM api_keys k WHERE k.key_hash = :digest"
)


def authenticate_for(session: Session, *, secret: str, telegram_id: int, now: datetime | None = None) -> Caller | None:
    """Like `authenticate`, and also resolves the person the request acts for (None if unknown)."""
    if not secret.startswith(KEY_PREFIX) or len(secret) > 128:
        return None
    digest = hash_key(secret)
    row = session.execute(_KEY_AND_PERSON, {"digest": digest, "telegram_id": telegram_id}).first()
    if row is None or not hmac.compare_digest(row.key_hash, digest) or row.revoked_at is not None:
        return None
    _touch(session, row.id, row.last_used_at, now)
    return Caller(key_id=row.id, person_id=row.person_id)


def _touch(session: Session, key_id: int, last_used_at: datetime | None, now: datetime | None) -> None:
    now = now or datetime.now(UTC)
    if last_used_at is None or now - last_used_at >= LAST_USED_RESOLUTION:
        session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))


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
