"""Shop credentials at rest: always encrypted, decrypted only in memory when a connector needs them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from sellerpulse.crypto import SecretBox
from sellerpulse.settings import Settings, get_settings
from storage.models import Shop


def secret_box(settings: Settings | None = None) -> SecretBox:
    return SecretBox((settings or get_settings()).secret_keys())


def seal(credentials: dict[str, Any], *, box: SecretBox | None = None) -> bytes:
    return (box or secret_box()).encrypt_json(credentials)


def unseal(shop: Shop, *, box: SecretBox | None = None) -> dict[str, Any]:
    if shop.credentials is None:
        return {}
    return (box or secret_box()).decrypt_json(shop.credentials)


def rotate_all_credentials(engine: Engine, settings: Settings) -> int:
    """Re-encrypt every shop's credentials with the current key (after putting a new key first)."""
    box = secret_box(settings)
    count = 0
    with Session(engine) as session, session.begin():
        rows = session.execute(select(Shop.id, Shop.credentials).where(Shop.credentials.is_not(None)).with_for_update())
        for shop_id, sealed in rows:
            session.execute(update(Shop).where(Shop.id == shop_id).values(credentials=box.rotate(sealed)))
            count += 1
    return count
