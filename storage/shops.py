"""Shops and who belongs to them. Keyword-only data-access functions; callers own the transaction."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sellerpulse.crypto import SecretBox
from storage.credentials import seal, unseal
from storage.models import Marketplace, Membership, Role, Shop, ShopStatus

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
    """A shop by id or by exact name (CLI convenience)."""
    if ref.isdigit():
        return session.get(Shop, int(ref))
    return session.scalars(select(Shop).where(Shop.name == ref).order_by(Shop.id)).first()


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
