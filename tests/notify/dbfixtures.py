"""People, shops and memberships for the outbox tests (plain ORM rows, no credentials)."""

from __future__ import annotations

from datetime import datetime
from itertools import count
from typing import Any

from sqlalchemy.orm import Session

from storage.models import Membership, Person, Shop
from storage.settings_repo import update_settings

_telegram = count(10_000)


def shop(session: Session, *, marketplace: str = "wb", name: str = "Shop", notify_from: datetime | None = None) -> Shop:
    row = Shop(
        marketplace=marketplace,
        name=name,
        notify_from=notify_from,
        currency="RUB" if marketplace == "wb" else "PLN",
        language="ru" if marketplace == "wb" else "pl",
    )
    session.add(row)
    session.flush()
    return row


def person(session: Session, *, language: str | None = "en", time_zone: str = "UTC", **settings: Any) -> Person:
    row = Person(telegram_id=next(_telegram), language=language, time_zone=time_zone)
    session.add(row)
    session.flush()
    update_settings(session, person_id=row.id, values=settings)
    return row


def member(session: Session, shop_: Shop, person_: Person, role: str = "member") -> None:
    session.add(Membership(shop_id=shop_.id, person_id=person_.id, role=role))
    session.flush()
