"""Allegro device logins started through the API (keyword-only; the caller owns the transaction)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from storage.models import AllegroLogin


def add_login(
    session: Session,
    *,
    id: str,
    person_id: int,
    user_code: str,
    verification_uri: str,
    verification_uri_complete: str | None,
    expires_at: datetime,
) -> AllegroLogin:
    login = AllegroLogin(
        id=id,
        person_id=person_id,
        user_code=user_code,
        verification_uri=verification_uri,
        verification_uri_complete=verification_uri_complete,
        expires_at=expires_at,
        status="pending",
    )
    session.add(login)
    session.flush()
    return login


def get_login(session: Session, *, id: str) -> AllegroLogin | None:
    return session.get(AllegroLogin, id)


def finish_login(session: Session, *, id: str, status: str, shop_id: int | None = None) -> None:
    """Record how a pending login ended (an ended one stays as it is)."""
    session.execute(
        update(AllegroLogin)
        .where(AllegroLogin.id == id, AllegroLogin.status == "pending")
        .values(status=status, shop_id=shop_id)
    )
