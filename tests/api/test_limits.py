"""Request bodies over API_MAX_BODY_BYTES are refused (413) before anything reads them: before
FastAPI parses them and before the key is checked."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api.limits import BodyLimit
from sellerpulse.settings import load_settings
from tests.api.conftest import Bot, _bound, build_app, person
from tests.connectors.sandbox_harness import Sandbox

LIMIT = 1_048_576


def _error(r: Any) -> dict[str, Any]:
    assert r.headers["content-type"] == "application/json"
    return r.json()["error"]


def test_a_declared_length_over_the_limit_is_413_without_a_key(client: TestClient) -> None:
    big = b'{"telegram_ids": [' + b"1," * (LIMIT // 2) + b"1]}"
    r = client.post("/api/v1/notifications/poll", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text  # not 401: the body was never read, the key never checked
    assert _error(r)["code"] == "payload_too_large" and "1,048,576" in _error(r)["message"]


def test_a_chunked_body_is_cut_off_at_the_limit(bot: Bot) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"telegram_ids": ['
        for _ in range(200):
            yield b"1," * 4096
        yield b"1]}"

    r = bot.post("/notifications/poll", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and _error(r)["code"] == "payload_too_large"
    small = bot.post(
        "/notifications/poll", content=iter([b'{"telegram_ids": [1]}']), headers={"content-type": "application/json"}
    )
    assert small.status_code == 200, small.text  # a chunked body under the limit is handed on whole


def test_the_batch_polls_documented_maximum_fits(bot: Bot, db: Session) -> None:
    person(db, 1)
    biggest = [2**63 - 1 - i for i in range(200)]  # 200 ids of 19 digits: the schema's largest
    r = bot.post("/notifications/poll", json={"telegram_ids": biggest, "limit": 200})
    assert r.status_code == 200 and len(r.json()["unknown"]) == 200


def test_the_limit_is_a_setting(sandbox: Sandbox, engine: Engine, conn: Any, key: str) -> None:
    app = build_app(
        sandbox, engine, session_factory=lambda: _bound(conn), settings=load_settings(api_max_body_bytes=16_384)
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        body = {"telegram_ids": [1] * 200}
        assert c.post("/api/v1/notifications/poll", json=body, headers={"X-API-Key": key}).status_code == 200
        r = c.put("/api/v1/people/1", json={"username": "x" * 20_000}, headers={"X-API-Key": key})
        assert r.status_code == 413


def test_the_body_is_not_read_at_all_when_its_length_is_over() -> None:
    reads = 0
    app_called = False

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal app_called
        app_called = True

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"x" * 65536, "more_body": True}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/people/1",
        "headers": [(b"content-length", b"104857600")],
    }
    asyncio.run(BodyLimit(app, max_bytes=LIMIT)(scope, receive, send))
    assert reads == 0 and not app_called  # 100 MB declared: not one byte read, nothing else ran
    assert sent[0]["status"] == 413 and (b"connection", b"close") in sent[0]["headers"]
