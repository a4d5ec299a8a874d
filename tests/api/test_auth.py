"""API keys: required, hashed at rest, revocable, listable; the CLI shows a key once."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from sellerpulse.cli import main
from storage import apikeys
from storage.db import session_scope
from storage.models import ApiKey
from tests.api.conftest import Bot, person


def _error(r) -> dict:
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_missing_and_unknown_keys_are_401(client: TestClient, db: Session) -> None:
    person(db, 1)
    r = client.get("/api/v1/shops", params={"telegram_id": 1})
    assert r.status_code == 401 and _error(r)["code"] == "unauthorized"
    r = client.get("/api/v1/shops", params={"telegram_id": 1}, headers={"X-API-Key": "sp_" + "x" * 43})
    assert r.status_code == 401 and _error(r)["code"] == "unauthorized"


def test_key_stored_as_hash_and_touched(bot: Bot, db: Session) -> None:
    person(db, 1)
    assert bot.get("/shops", params={"telegram_id": 1}).status_code == 200
    row = db.scalars(select(ApiKey)).one()
    assert row.key_hash == apikeys.hash_key(bot.key) and bot.key not in (row.key_hash, row.prefix)
    assert bot.key.startswith(row.prefix)
    db.refresh(row)
    assert row.last_used_at is not None


def test_revoked_key_stops_working_at_once(bot: Bot, db: Session) -> None:
    person(db, 1)
    assert bot.get("/shops", params={"telegram_id": 1}).status_code == 200
    key_id = db.scalars(select(ApiKey.id)).one()
    assert apikeys.revoke_key(db, key_id=key_id)
    db.commit()
    r = bot.get("/shops", params={"telegram_id": 1})
    assert r.status_code == 401 and _error(r)["message"] == "unknown or revoked API key"
    assert not apikeys.revoke_key(db, key_id=key_id)  # revoking twice reports nothing to do


def test_cli_create_list_revoke(clean_engine: Engine, capsys) -> None:
    assert main(["api-keys", "create", "--name", "bot"]) == 0
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    assert secret.startswith("sp_")
    with clean_engine.connect() as conn:
        stored = conn.execute(text("SELECT key_hash FROM api_keys")).scalar_one()
    assert stored == apikeys.hash_key(secret) and secret not in stored

    assert main(["api-keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert "bot" in listing and secret not in listing

    with session_scope(clean_engine) as session:
        assert apikeys.authenticate(session, secret=secret) is not None
        key_id = apikeys.list_keys(session)[0].id
    assert main(["api-keys", "revoke", str(key_id)]) == 0
    assert main(["api-keys", "revoke", str(key_id)]) == 1
    with session_scope(clean_engine) as session:
        assert apikeys.authenticate(session, secret=secret) is None
