"""Allegro device logins started through the API (keyword-only; the caller owns the transaction).

A login is pending until it is connected, denied, expired, failed or superseded (its person
started a newer one past their cap). One that is still pending after its code ran out counts
as expired everywhere here: the worker that polled it stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from storage.models import AllegroLogin

LOCK_LOGINS = 71_020  # advisory lock namespace (see storage.outbox, storage.sync_state for others)


def add_login(
    session: Session,
    *,
    id: str,
    person_id: int,
    user_code: str,
    verification_uri: str,
    verification_uri_complete: str | None,
    expires_at: datetime,
    shop_name: str | None = None,
) -> AllegroLogin:
    login = AllegroLogin(
        id=id,
        person_id=person_id,
        user_code=user_code,
        verification_uri=verification_uri,
        verification_uri_complete=verification_uri_complete,
        expires_at=expires_at,
        status="pending",
        shop_name=shop_name,
    )
    session.add(login)
    session.flush()
    return login


def get_login(session: Session, *, id: str) -> AllegroLogin | None:
    return session.get(AllegroLogin, id)


def lock_logins(session: Session) -> None:
    """Until the transaction ends: one decision about caps and reuse at a time, in every worker."""
    session.execute(text("SELECT pg_advisory_xact_lock(:ns, 0)"), {"ns": LOCK_LOGINS})


def pending_of(session: Session, *, person_id: int, now: datetime) -> list[AllegroLogin]:
    """A person's logins still waiting for approval, oldest first."""
    query = (
        select(AllegroLogin)
        .where(AllegroLogin.person_id == person_id, AllegroLogin.status == "pending", AllegroLogin.expires_at > now)
        .order_by(AllegroLogin.created_at, AllegroLogin.id)
    )
    return list(session.scalars(query))


def count_pending(session: Session, *, now: datetime) -> tuple[int, datetime | None]:
    """Logins waiting for approval over the whole install, and when the first of them expires."""
    row = session.execute(
        select(func.count(), func.min(AllegroLogin.expires_at)).where(
            AllegroLogin.status == "pending", AllegroLogin.expires_at > now
        )
    ).one()
    return int(row[0]), row[1]


def supersede(session: Session, *, ids: Sequence[str]) -> None:
    if ids:
        session.execute(
            update(AllegroLogin)
            .where(AllegroLogin.id.in_(list(ids)), AllegroLogin.status == "pending")
            .values(status="superseded")
        )


def still_pending(session: Session, *, id: str, now: datetime) -> bool:
    """Whether a login is still worth polling (not ended, superseded or run out)."""
    return bool(
        session.scalar(
            select(func.count()).where(
                AllegroLogin.id == id, AllegroLogin.status == "pending", AllegroLogin.expires_at > now
            )
        )
    )


def claim_pending(session: Session, *, id: str) -> AllegroLogin | None:
    """The login, locked until the transaction ends, if it is still pending: whoever completes it
    decides alone (a login superseded meanwhile must not connect a shop)."""
    query = select(AllegroLogin).where(AllegroLogin.id == id, AllegroLogin.status == "pending").with_for_update()
    return session.scalars(query).first()


def finish_login(session: Session, *, id: str, status: str, shop_id: int | None = None) -> None:
    """Record how a pending login ended (an ended one stays as it is)."""
    session.execute(
        update(AllegroLogin)
        .where(AllegroLogin.id == id, AllegroLogin.status == "pending")
        .values(status=status, shop_id=shop_id)
    )
