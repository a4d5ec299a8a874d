"""Shops and who belongs to them. Keyword-only data-access functions; callers own the transaction."""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from sellerpulse.crypto import SecretBox
from storage.credentials import seal, unseal
from storage.models import Marketplace, Membership, Person, Role, Shop, ShopStatus, SyncRun

log = logging.getLogger(__name__)

DEFAULT_LANGUAGE = {Marketplace.wb.value: "ru", Marketplace.allegro.value: "pl"}
DEFAULT_CURRENCY = {Marketplace.wb.value: "RUB", Marketplace.allegro.value: "PLN"}


def account_key(marketplace: str, identity: str) -> str:
    """A stable, non-secret fingerprint of a marketplace account (e.g. Allegro user id, WB seller id)."""
    return hashlib.sha256(f"{marketplace}:{identity}".encode()).hexdigest()


def create_shop(
    session: Session,
    *,
    marketplace: str,
    name: str,
    credentials: dict[str, Any],
    account: str | None = None,
    owner_id: int | None = None,
    token_expires_at: datetime | None = None,
    box: SecretBox | None = None,
) -> Shop:
    """Create a shop, or re-activate the one already connected to the same marketplace account.

    A re-connected shop keeps its data and its notify-from point, so reconnecting never
    replays old events as notifications.
    """
    key = account_key(marketplace, account) if account else None
    shop = None
    if key is not None:
        shop = session.scalars(select(Shop).where(Shop.marketplace == marketplace, Shop.account_key == key)).first()
    if shop is None:
        shop = Shop(
            marketplace=marketplace,
            name=name,
            account_key=key,
            language=DEFAULT_LANGUAGE.get(marketplace),
            currency=DEFAULT_CURRENCY.get(marketplace),
        )
        session.add(shop)
    shop.credentials = seal(credentials, box=box)
    shop.token_expires_at = token_expires_at
    set_status(session, shop=shop, status=ShopStatus.active, reason=None)
    session.flush()
    if owner_id is not None:
        add_member(session, shop_id=shop.id, person_id=owner_id, role=Role.owner)
    return shop


def set_status(session: Session, *, shop: Shop, status: ShopStatus, reason: str | None) -> bool:
    """Move a shop to `status`; returns True when that is a change."""
    if shop.status == status.value and shop.status_reason == reason:
        return False
    changed = shop.status != status.value
    shop.status = status.value
    shop.status_reason = reason
    if changed:
        shop.status_changed_at = datetime.now(UTC)
    session.flush()
    return changed


def add_member(session: Session, *, shop_id: int, person_id: int, role: Role = Role.member) -> Membership:
    member = session.get(Membership, (shop_id, person_id))
    if member is None:
        member = Membership(shop_id=shop_id, person_id=person_id, role=role.value)
        session.add(member)
    elif role is Role.owner:
        member.role = role.value
    session.flush()
    return member


def get_shop(session: Session, *, shop_id: int) -> Shop | None:
    return session.get(Shop, shop_id)


def find_shop(session: Session, *, ref: str) -> Shop | None:
    """A shop by id or by exact name (CLI convenience); see `shops_named` for the ambiguous case."""
    if ref.isdigit():
        return session.get(Shop, int(ref))
    return session.scalars(select(Shop).where(Shop.name == ref).order_by(Shop.id)).first()


def shops_named(session: Session, *, name: str) -> list[Shop]:
    """Every shop with exactly this name (names are unique per owner, not per install)."""
    return list(session.scalars(select(Shop).where(Shop.name == name).order_by(Shop.id)))


def same_name(session: Session, *, name: str, person_ids: list[int], exclude_shop_id: int | None = None) -> Shop | None:
    """A shop one of these people belongs to that already has this name (case and spaces ignored):
    two shops a person cannot tell apart in the bot are one too many."""
    query = (
        select(Shop)
        .join(Membership, Membership.shop_id == Shop.id)
        .where(Membership.person_id.in_(person_ids), func.lower(func.trim(Shop.name)) == name.strip().lower())
    )
    if exclude_shop_id is not None:
        query = query.where(Shop.id != exclude_shop_id)
    return session.scalars(query.order_by(Shop.id)).first()


def shop_with_account(session: Session, *, marketplace: str, account: str | None) -> Shop | None:
    """The shop already connected to this marketplace account (WB seller, Allegro user), if known."""
    if not account:
        return None
    key = account_key(marketplace, account)
    return session.scalars(select(Shop).where(Shop.marketplace == marketplace, Shop.account_key == key)).first()


def shop_with_wb_token(session: Session, *, token: str, box: SecretBox | None = None) -> Shop | None:
    """The WB shop that stores exactly this token. Credentials are encrypted with a random IV, so
    each is decrypted and compared (a handful of shops per install; constant-time compare)."""
    for shop in session.scalars(
        select(Shop).where(Shop.marketplace == Marketplace.wb.value, Shop.credentials.is_not(None))
    ):
        try:
            stored = str(unseal(shop, box=box).get("token", ""))
        except Exception:  # noqa: BLE001 - a shop sealed with a key no longer configured cannot match
            log.warning("could not decrypt the credentials of shop %s to compare tokens", shop.id)
            continue
        if hmac.compare_digest(stored.encode(), token.encode()):
            return shop
    return None


def is_paused(shop: Shop) -> bool:
    """Disabled with its token kept: an operator paused it (a removed shop has no token)."""
    return shop.status == ShopStatus.disabled.value and shop.credentials is not None


def pause_shop(session: Session, *, shop: Shop, reason: str) -> bool:
    """Stop syncing a shop and keep its token, so `resume_shop` can start it again."""
    return set_status(session, shop=shop, status=ShopStatus.disabled, reason=reason)


class CannotResume(ValueError):
    """The shop needs something before it can sync again (a token, a login)."""


def resume_shop(session: Session, *, shop: Shop) -> bool:
    """Sync a paused (or broken, once its cause is fixed) shop again; its token must still be there."""
    if shop.status == ShopStatus.needs_reauth.value:
        raise CannotResume("its Allegro login expired: connect it again with `sellerpulse shops reconnect`")
    if shop.credentials is None:
        how = "set-token" if shop.marketplace == Marketplace.wb.value else "reconnect"
        raise CannotResume(f"it was removed and its token dropped: give it one with `sellerpulse shops {how}`")
    return set_status(session, shop=shop, status=ShopStatus.active, reason=None)


@dataclass(frozen=True)
class Member:
    shop_id: int
    telegram_id: int
    username: str | None
    role: str


def members_of(session: Session, *, shop_ids: list[int]) -> dict[int, list[Member]]:
    """Who belongs to each shop, owners first, then by when they joined."""
    rows = session.execute(
        select(Membership.shop_id, Person.telegram_id, Person.username, Membership.role)
        .join(Person, Person.id == Membership.person_id)
        .where(Membership.shop_id.in_(shop_ids))
        .order_by(Membership.shop_id, Membership.role != Role.owner.value, Membership.created_at, Person.id)
    )
    found: dict[int, list[Member]] = {shop_id: [] for shop_id in shop_ids}
    for shop_id, telegram_id, username, role in rows:
        found[shop_id].append(Member(shop_id, telegram_id, username, role))
    return found


def member_person_ids(session: Session, *, shop_id: int) -> list[int]:
    return list(session.scalars(select(Membership.person_id).where(Membership.shop_id == shop_id)))


def last_successes(session: Session, *, shop_ids: list[int]) -> dict[int, dict[str, datetime]]:
    """Per shop, per stream: when its last successful sync (not backfill) finished."""
    rows = session.execute(
        select(SyncRun.shop_id, SyncRun.stream, func.max(SyncRun.finished_at))
        .where(SyncRun.shop_id.in_(shop_ids), SyncRun.status == "success", SyncRun.kind == "sync")
        .group_by(SyncRun.shop_id, SyncRun.stream)
    )
    found: dict[int, dict[str, datetime]] = {shop_id: {} for shop_id in shop_ids}
    for shop_id, stream, finished in rows:
        if finished is not None:
            found[shop_id][stream] = finished
    return found


def list_shops(session: Session, *, status: ShopStatus | None = None, marketplace: str | None = None) -> list[Shop]:
    query = select(Shop).order_by(Shop.id)
    if status is not None:
        query = query.where(Shop.status == status.value)
    if marketplace is not None:
        query = query.where(Shop.marketplace == marketplace)
    return list(session.scalars(query))


def credentials_of(shop: Shop, *, box: SecretBox | None = None) -> dict[str, Any]:
    return unseal(shop, box=box)


def replace_credentials(
    session: Session,
    *,
    shop_id: int,
    credentials: dict[str, Any],
    token_expires_at: datetime | None = None,
    box: SecretBox | None = None,
) -> None:
    values: dict[str, Any] = {"credentials": seal(credentials, box=box)}
    if token_expires_at is not None:
        values["token_expires_at"] = token_expires_at
    session.execute(update(Shop).where(Shop.id == shop_id).values(**values))
