from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from sellerpulse.settings import get_settings
from storage.credentials import rotate_all_credentials, secret_box, unseal
from storage.models import Shop
from storage.shops import replace_credentials

SECRETS = {"access_token": "eyJ-plaintext-access-7d1f", "refresh_token": "plaintext-refresh-93ac"}


def _all_rows_as_text(session: Session) -> str:
    tables = session.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars()
    chunks = []
    for table in tables:
        rows = session.execute(
            text(f"SELECT t::text, encode(convert_to(t::text, 'UTF8'), 'escape') FROM \"{table}\" t")
        )
        chunks.extend(r[0] + r[1] for r in rows)
    return "\n".join(chunks)


def test_stored_credentials_are_not_plaintext_anywhere(session: Session) -> None:
    shop = Shop(marketplace="allegro", name="my shop")
    session.add(shop)
    session.flush()
    replace_credentials(session, shop_id=shop.id, credentials=SECRETS)
    session.flush()

    dump = _all_rows_as_text(session)
    assert "my shop" in dump  # the dump really covers the shops table
    for value in SECRETS.values():
        assert value not in dump
    raw = session.execute(select(Shop.credentials).where(Shop.id == shop.id)).scalar_one()
    for value in SECRETS.values():
        assert value.encode() not in raw

    session.expire_all()
    assert unseal(session.get(Shop, shop.id)) == SECRETS


def test_rotate_all_credentials_re_encrypts_with_the_current_key(clean_engine, monkeypatch) -> None:
    from sellerpulse.crypto import SecretBox
    from sellerpulse.settings import generate_secret_key

    settings = get_settings()
    old_key = settings.secret_keys()[0]
    with Session(clean_engine) as s, s.begin():
        shop = Shop(marketplace="wb", name="wb shop")
        s.add(shop)
        s.flush()
        replace_credentials(s, shop_id=shop.id, credentials={"token": "wb-token-plain"}, box=secret_box(settings))
        shop_id = shop.id

    new_key = generate_secret_key()
    rotated = settings.model_copy(
        update={"sellerpulse_secret_key": _secret(new_key), "sellerpulse_old_secret_keys": _secret(old_key)}
    )
    assert rotate_all_credentials(clean_engine, rotated) == 1
    with Session(clean_engine) as s:
        shop = s.get(Shop, shop_id)
        assert unseal(shop, box=SecretBox([new_key])) == {"token": "wb-token-plain"}


def _secret(value: str):
    from pydantic import SecretStr

    return SecretStr(value)
