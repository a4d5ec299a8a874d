"""The benchmark's shops: every shop of the sandbox's `fleet` world, owned by one person."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def add_shops(world: Any) -> None:
    from sqlalchemy.orm import Session

    from storage.db import get_engine
    from storage.people import register_person
    from storage.shops import create_shop

    with Session(get_engine()) as session, session.begin():
        owner, _ = register_person(session, telegram_id=777_000, profile={})
        for name in world.shop_names():
            if world.marketplace_of(name) == "wb":
                creds = {"token": world.wb_token(name)}
                create_shop(session, marketplace="wb", name=name, credentials=creds, owner_id=owner.id)
            else:
                pair = world.allegro_pair(name)
                creds = {"access_token": pair.access_token, "refresh_token": pair.refresh_token}
                expires = datetime.fromtimestamp(pair.access_expires, UTC)
                create_shop(
                    session, marketplace="allegro", name=name, credentials=creds, owner_id=owner.id,
                    token_expires_at=expires,
                )  # fmt: skip
