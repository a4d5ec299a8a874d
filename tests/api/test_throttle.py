"""Failed authentication is throttled per client address and minute, in PostgreSQL (shared by
every worker): 401 up to the limit, then 429 with Retry-After; a valid key is never refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from sellerpulse.settings import load_settings
from storage import apikeys
from storage.db import session_scope
from storage.people import register_person
from tests.api.conftest import build_app
from tests.connectors.sandbox_harness import Sandbox

LIMIT = 5
A = 41


@pytest.fixture
def workers(sandbox: Sandbox, clean_engine: Engine) -> Iterator[tuple[TestClient, TestClient, str]]:
    """Two apps (as two uvicorn workers would be) on one database, and a valid key."""
    with session_scope(clean_engine) as session:
        secret = apikeys.create_key(session, name="bot").secret
        register_person(session, telegram_id=A, profile={})
    settings = load_settings(api_auth_failures_per_minute=LIMIT)
    one = build_app(sandbox, clean_engine, settings=settings)
    two = build_app(sandbox, clean_engine, settings=settings)
    with TestClient(one, raise_server_exceptions=False) as c1, TestClient(two, raise_server_exceptions=False) as c2:
        yield c1, c2, secret


def test_failures_past_the_limit_are_429_across_workers(workers: tuple[TestClient, TestClient, str]) -> None:
    one, two, secret = workers
    wrong = {"X-API-Key": "sp_" + "x" * 43}
    seen = []
    for i in range(LIMIT + 2):
        client = one if i % 2 else two  # the counter is the database's, not a worker's
        path = "/api/v1/shops" if i % 3 else "/api/v1/notifications"  # the poll's fast path counts too
        seen.append(client.get(path, params={"telegram_id": A}, headers=wrong if i % 4 else {}))
    assert [r.status_code for r in seen] == [401] * LIMIT + [429, 429]
    limited = seen[-1]
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # The valid key, from the same address, meanwhile:
    for client in (one, two):
        for path in ("/api/v1/shops", "/api/v1/notifications", "/api/v1/settings"):
            assert client.get(path, params={"telegram_id": A}, headers={"X-API-Key": secret}).status_code == 200


def test_another_address_and_the_next_minute_start_afresh(
    workers: tuple[TestClient, TestClient, str], clean_engine: Engine
) -> None:
    one, _, _ = workers
    for _ in range(LIMIT + 1):
        last = one.get("/api/v1/shops", params={"telegram_id": A})
    assert last.status_code == 429
    other = TestClient(one.app, client=("203.0.113.9", 4000), raise_server_exceptions=False)
    assert other.get("/api/v1/shops", params={"telegram_id": A}).status_code == 401
    with clean_engine.begin() as conn:  # the minute is over
        conn.execute(text("UPDATE api_auth_failures SET window_start = window_start - interval '61 seconds'"))
    assert one.get("/api/v1/shops", params={"telegram_id": A}).status_code == 401
    with clean_engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT client, failures FROM api_auth_failures")).all())
    assert rows == {"testclient": 1, "203.0.113.9": 1}
