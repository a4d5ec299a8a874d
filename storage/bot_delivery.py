"""What the Telegram bot needs besides the outbox: whom to deliver to, what it already sent,
people who blocked it, shops whose notifications are paused, and invites to shared shops.

Keyword-only data-access functions; callers own the transaction.

Exactly once to a person: the bot writes a delivery record for every notification id of an
item right after Telegram answered, and acks its cursor only after the whole page is
recorded. After a crash between the two, the API hands the same items out again and the
bot looks their ids up here: recorded ones are not sent twice. A record is final (the first
answer wins), so a retried write never changes what happened.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import exists, select, text, update
from sqlalchemy.orm import Session

from storage import outbox
from storage.models import (
    DeliveryRecord,
    DeliveryStatus,
    Membership,
    Person,
    Role,
    Shop,
    ShopInvite,
)
from storage.shops import add_member

INVITE_TTL = timedelta(days=7)
INVITE_PREFIX = "inv_"


# -- recipients and blocked people ----------------------------------------------------------


def recipients(session: Session, *, after: int, limit: int) -> list[tuple[int, int]]:
    """(person id, Telegram id) of active people who belong to a shop, by person id after `after`."""
    member = exists().where(Membership.person_id == Person.id)
    rows = session.execute(
        select(Person.id, Person.telegram_id)
        .where(Person.id > after, Person.inactive_since.is_(None), member)
        .order_by(Person.id)
        .limit(limit)
    )
    return [(pid, tid) for pid, tid in rows]


def set_inactive(session: Session, *, person: Person, reason: str) -> None:
    """Stop delivering to a person (Telegram said they blocked the bot); the first time counts."""
    if person.inactive_since is None:
        person.inactive_since = datetime.now(UTC)
        person.inactive_reason = reason
        session.flush()


def set_active(session: Session, *, person: Person) -> bool:
    """Deliver to the person again; True if they were inactive.

    What arrived while they had blocked the bot is not sent as a flood when they come back:
    their cursor moves to the newest notification (the data stays in the dashboard and orders).
    """
    if person.inactive_since is None:
        return False
    person.inactive_since = None
    person.inactive_reason = None
    session.flush()
    outbox.ack(session, person_id=person.id, cursor=2**63 - 1)  # ack clamps to the newest id
    return True


# -- delivery records -----------------------------------------------------------------------


def recorded_ids(session: Session, *, person_id: int, ids: Sequence[int]) -> set[int]:
    """Which of these notification ids already have a record for this person."""
    if not ids:
        return set()
    rows = session.scalars(
        select(DeliveryRecord.notification_id).where(
            DeliveryRecord.person_id == person_id, DeliveryRecord.notification_id.in_(list(ids))
        )
    )
    return set(rows)


def record(
    session: Session,
    *,
    person_id: int,
    item_id: int,
    ids: Sequence[int],
    status: DeliveryStatus,
    message_id: int | None = None,
    detail: str | None = None,
    attempts: int = 1,
) -> int:
    """A record per notification id of one item; ids already recorded keep their first record.
    Ids that are not (or no longer) in the outbox are left out. Returns how many were new.

    One statement: it runs once per message the bot sends."""
    result = session.execute(
        text(
            "INSERT INTO delivery_records "
            "(person_id, notification_id, item_id, status, telegram_message_id, detail, attempts) "
            "SELECT :person, n.id, :item, :status, :message, :detail, :attempts "
            "FROM notifications n WHERE n.id = ANY(:ids) "
            "ON CONFLICT DO NOTHING RETURNING notification_id"
        ),
        {
            "person": person_id,
            "item": item_id,
            "status": status.value,
            "message": message_id,
            "detail": detail,
            "attempts": max(1, min(attempts, 32_000)),
            "ids": sorted(set(ids) | {item_id}),
        },
    )
    return len(result.all())


def list_records(
    session: Session,
    *,
    person_id: int | None = None,
    status: DeliveryStatus | None = None,
    limit: int = 100,
) -> list[tuple[DeliveryRecord, int]]:
    """The newest records first, with the person's Telegram id."""
    query = select(DeliveryRecord, Person.telegram_id).join(Person, Person.id == DeliveryRecord.person_id)
    if person_id is not None:
        query = query.where(DeliveryRecord.person_id == person_id)
    if status is not None:
        query = query.where(DeliveryRecord.status == status.value)
    query = query.order_by(DeliveryRecord.recorded_at.desc(), DeliveryRecord.notification_id.desc()).limit(limit)
    return [(rec, tid) for rec, tid in session.execute(query)]


# -- paused shops ---------------------------------------------------------------------------


def set_paused(session: Session, *, shop: Shop, paused: bool) -> Shop:
    if paused and shop.paused_at is None:
        shop.paused_at = datetime.now(UTC)
    elif not paused:
        shop.paused_at = None
    session.flush()
    return shop


def paused_shops(session: Session) -> list[tuple[int, datetime]]:
    rows = session.execute(select(Shop.id, Shop.paused_at).where(Shop.paused_at.is_not(None)).order_by(Shop.id))
    return [(sid, at) for sid, at in rows]


# -- invites --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewInvite:
    code: str  # shown once; only its hash is stored
    expires_at: datetime


class InviteRefused(Exception):
    """The code is unknown, used or expired (one answer for all three: codes are not probeable)."""


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def create_invite(session: Session, *, shop_id: int, created_by: int, ttl: timedelta = INVITE_TTL) -> NewInvite:
    code = INVITE_PREFIX + secrets.token_urlsafe(12)  # fits a Telegram deep link (start=...)
    expires = datetime.now(UTC) + ttl
    session.add(ShopInvite(code_hash=_hash(code), shop_id=shop_id, created_by=created_by, expires_at=expires))
    session.flush()
    return NewInvite(code=code, expires_at=expires)


def accept_invite(session: Session, *, code: str, person_id: int) -> tuple[int, str]:
    """Join the invite's shop as a member (an existing membership stays as it is); the code is
    spent. Returns (shop id, role). Raises InviteRefused."""
    now = datetime.now(UTC)
    invite = session.scalars(select(ShopInvite).where(ShopInvite.code_hash == _hash(code)).with_for_update()).first()
    if invite is None or invite.used_at is not None or invite.expires_at <= now:
        raise InviteRefused("this invite is unknown, used or expired")
    shop = session.get(Shop, invite.shop_id)
    if shop is None or shop.credentials is None:  # removed since: nothing to join
        raise InviteRefused("this invite is unknown, used or expired")
    member = add_member(session, shop_id=invite.shop_id, person_id=person_id, role=Role.member)
    session.execute(
        update(ShopInvite).where(ShopInvite.code_hash == invite.code_hash).values(used_by=person_id, used_at=now)
    )
    return invite.shop_id, member.role
