"""One error shape everywhere (FastAPI's own 404/405/422 too); no internals in a 500; health."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.api.conftest import Bot, build_app, person
from tests.connectors.sandbox_harness import Sandbox


def shape(r: Any) -> dict:
    body = r.json()
    assert list(body) == ["error"] and list(body["error"]) == ["code", "message", "details"], body
    return body["error"]


def test_framework_errors_have_the_shape(bot: Bot) -> None:
    assert shape(bot.get("/nowhere"))["code"] == "not_found"
    r = bot.request("PATCH", "/notifications")
    assert r.status_code == 405 and shape(r)["code"] == "method_not_allowed"
    r = bot.post("/notifications/ack", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and shape(r)["code"] == "invalid_request"
    bot.put("/people/1", json={})
    # Integer ids are part of the path: /shops/abc is no route (404), /shops/0 an invalid id (422).
    assert shape(bot.get("/shops/abc", params={"telegram_id": 1}))["code"] == "not_found"
    r = bot.get("/shops/0", params={"telegram_id": 1})
    err = shape(r)
    assert r.status_code == 422 and {"loc": ["path", "shop_id"]}.items() <= err["details"][0].items()


def test_validation_errors_do_not_echo_input(bot: Bot, db: Session) -> None:
    person(db, 5)
    r = bot.post("/shops/wb", params={"telegram_id": 5}, json={"name": "x", "token": ""})
    assert r.status_code == 422 and "input" not in str(shape(r)["details"])


class ExplodingDelivery:
    def poll_as(self, cur: Any, **kw: Any) -> Any:
        raise RuntimeError("password=hunter2 at db.internal:5432")

    poll_many = ack = poll_as


def test_unexpected_exception_is_a_bare_500(sandbox: Sandbox, engine: Engine, db: Session, key: str, conn) -> None:
    from tests.api.conftest import _bound

    person(db, 5)
    app = build_app(sandbox, engine, session_factory=lambda: _bound(conn), delivery=ExplodingDelivery())
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/api/v1/notifications", params={"telegram_id": 5}, headers={"X-API-Key": key})
    assert r.status_code == 500
    assert shape(r) == {"code": "internal_error", "message": "internal error", "details": None}
    assert "hunter2" not in r.text


def test_health(client: TestClient) -> None:
    assert client.get("/api/v1/health/live").json() == {
        "status": "ok",
        "database": None,
        "schema_revision": None,
        "schema_head": None,
    }
    ready = client.get("/api/v1/health/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
    assert ready.json()["schema_revision"] == ready.json()["schema_head"]


def test_openapi_documents_security_and_errors(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "created with `sellerpulse api-keys create --name NAME`",
    }
    poll = spec["paths"]["/api/v1/notifications"]["get"]
    assert poll["security"] == [{"ApiKey": []}]
    assert poll["responses"]["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    assert "security" not in spec["paths"]["/api/v1/health/live"]["get"]
    for path in ("/docs", "/redoc"):
        assert client.get(path).status_code == 200


class UnreachableDatabase(ExplodingDelivery):
    def poll_as(self, cur: Any, **kw: Any) -> Any:
        from psycopg.errors import QueryCanceled  # the driver's own error: the poll skips SQLAlchemy

        raise QueryCanceled("canceling statement due to statement timeout")

    def poll_many(self, session: Any, **kw: Any) -> Any:
        from sqlalchemy.exc import OperationalError

        raise OperationalError("SELECT ...", {}, TimeoutError("canceling statement due to statement timeout"))


def test_database_trouble_is_503_not_500(sandbox: Sandbox, engine: Engine, db: Session, key: str, conn) -> None:
    from tests.api.conftest import _bound

    person(db, 5)
    app = build_app(sandbox, engine, session_factory=lambda: _bound(conn), delivery=UnreachableDatabase())
    with TestClient(app, raise_server_exceptions=False) as c:
        fast = c.get("/api/v1/notifications", params={"telegram_id": 5}, headers={"X-API-Key": key})
        batch = c.post("/api/v1/notifications/poll", json={"telegram_ids": [5]}, headers={"X-API-Key": key})
    for r in (fast, batch):
        assert r.status_code == 503 and shape(r)["code"] == "unavailable", r.text
        assert "statement" not in r.text
