"""People (Telegram users) and what they may do with the shops they belong to.

Every shop lookup here is scoped by membership: a shop the person does not belong to is
indistinguishable from one that does not exist. Keyword-only; callers own the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from storage.history import history_complete_expr
from storage.models import Membership, Person, Role, Shop, ShopStatus
from storage.settings_repo import ensure_settings
from storage.shops import add_member, set_status
from storage.stream_limits import limits_of

PROFILE_FIELDS = ("username", "first_name", "last_name", "language", "time_zone")


@dataclass(frozen=True)
class MemberShop:
    shop: Shop
    role: str
    # Its first sync finished and no history read is pending (storage.history).
    history_complete: bool = False
    # Streams the marketplace limits this shop's token on, until when (storage.stream_limits).
    limited_until: dict[str, datetime] = field(default_factory=dict)


def get_person(session: Session, *, telegram_id: int) -> Person | None:
    return session.scalars(select(Person).where(Person.telegram_id == telegram_id)).first()


def person_id_of(session: Session, *, telegram_id: int) -> int | None:
    return session.scalar(select(Person.id).where(Person.telegram_id == telegram_id))


def person_ids_of(session: Session, *, telegram_ids: list[int]) -> dict[int, int]:
    """{telegram_id: person id} for the registered ones."""
    rows = session.execute(select(Person.telegram_id, Person.id).where(Person.telegram_id.in_(telegram_ids)))
    return {telegram_id: person_id for telegram_id, person_id in rows}


def register_person(session: Session, *, telegram_id: int, profile: dict[str, Any]) -> tuple[Person, bool]:
    """Create or update a person; a new person gets default notification settings. Returns (person, created)."""
    person = get_person(session, telegram_id=telegram_id)
    created = person is None
    if person is None:
        person = Person(telegram_id=telegram_id)
        session.add(person)
    for name in PROFILE_FIELDS:
        if name in profile:
            setattr(person, name, profile[name])
    if not created:
        person.updated_at = datetime.now(UTC)
    session.flush()
    ensure_settings(session, person_id=person.id)
    return person, created


def member_shops(session: Session, *, person_id: int, limit: int, offset: int) -> tuple[list[MemberShop], int]:
    """The person's shops (id order) and how many there are."""
    query = (
        select(Shop, Membership.role, history_complete_expr())
        .join(Membership, Membership.shop_id == Shop.id)
        .where(Membership.person_id == person_id)
    )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(Shop.id).limit(limit).offset(offset)).all()
    limited = _limits(session, [s.id for s, _r, _h in rows])
    return [MemberShop(s, r, bool(h), limited[s.id]) for s, r, h in rows], total


def member_shop(session: Session, *, person_id: int, shop_id: int) -> MemberShop | None:
    row = session.execute(
        select(Shop, Membership.role, history_complete_expr())
        .join(Membership, Membership.shop_id == Shop.id)
        .where(Membership.person_id == person_id, Shop.id == shop_id)
    ).first()
    if row is None:
        return None
    return MemberShop(row[0], row[1], bool(row[2]), _limits(session, [row[0].id])[row[0].id])


def _limits(session: Session, shop_ids: list[int]) -> dict[int, dict[str, datetime]]:
    """Per shop, {stream without its marketplace prefix: until} of the limits in force now."""
    found = limits_of(session, shop_ids=shop_ids, now=datetime.now(UTC))
    return {i: {s.split("_", 1)[-1]: at for s, at in sorted(v.items())} for i, v in found.items()}


def rename_shop(session: Session, *, shop: Shop, name: str) -> Shop:
    shop.name = name
    session.flush()
    return shop


def remove_shop(session: Session, *, shop: Shop, purge: bool, reason: str = "removed by its owner") -> None:
    """Stop syncing the shop. Its token is dropped either way; `purge` also deletes all its data."""
    if purge:
        # Every table hangs off shops with ON DELETE CASCADE: one statement removes all of it.
        session.execute(delete(Shop).where(Shop.id == shop.id))
        session.expunge(shop)
        return
    shop.credentials = None
    set_status(session, shop=shop, status=ShopStatus.disabled, reason=reason)


def invite(session: Session, *, shop_id: int, person_id: int) -> Membership:
    """Add a member; an existing membership (owner or member) is left as it is."""
    return add_member(session, shop_id=shop_id, person_id=person_id, role=Role.member)


def leave_shop(session: Session, *, shop: Shop, person_id: int) -> None:
    """Leave a shop. The last owner leaving promotes the longest-standing member; the last person
    leaving stops its syncing (nobody would be told anything)."""
    session.execute(delete(Membership).where(Membership.shop_id == shop.id, Membership.person_id == person_id))
    remaining = session.execute(
        select(Membership.person_id, Membership.role)
        .where(Membership.shop_id == shop.id)
        .order_by(Membership.created_at, Membership.person_id)
    ).all()
    if not remaining:
        shop.credentials = None
        set_status(session, shop=shop, status=ShopStatus.disabled, reason="every member left")
        return
    if all(role != Role.owner.value for _, role in remaining):
        session.execute(
            update(Membership)
            .where(Membership.shop_id == shop.id, Membership.person_id == remaining[0][0])
            .values(role=Role.owner.value)
        )


class LastMember(ValueError):
    """Removing this person would leave the shop reaching nobody."""


def remove_member(session: Session, *, shop: Shop, person_id: int) -> bool:
    """Take a person off a shop (an operator's decision, unlike `leave_shop`): never its last
    person, since a shop that reaches nobody loses every notification. The last owner going
    promotes the longest-standing member. Returns False when they were not a member."""
    people = session.scalars(select(Membership.person_id).where(Membership.shop_id == shop.id)).all()
    if person_id not in people:
        return False
    if len(people) == 1:
        raise LastMember("it is the shop's only person: add someone else first, or remove the shop")
    leave_shop(session, shop=shop, person_id=person_id)
    return True


@dataclass(frozen=True)
class PersonRow:
    person: Person
    shops: list[tuple[int, str, str]]  # (shop id, name, role)


def list_people(session: Session) -> list[PersonRow]:
    """Everyone, by Telegram id, with the shops they belong to."""
    people = list(session.scalars(select(Person).order_by(Person.telegram_id)))
    rows = session.execute(
        select(Membership.person_id, Shop.id, Shop.name, Membership.role)
        .join(Shop, Shop.id == Membership.shop_id)
        .order_by(Shop.id)
    )
    shops: dict[int, list[tuple[int, str, str]]] = {}
    for person_id, shop_id, name, role in rows:
        shops.setdefault(person_id, []).append((shop_id, name, role))
    return [PersonRow(p, shops.get(p.id, [])) for p in people]
