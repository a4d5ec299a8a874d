"""API test fixtures: the app on real PostgreSQL, the WB check and Allegro login against the
in-process sandbox, and a `Bot` client that sends an API key.

Most tests run the app on one connection whose outer transaction is rolled back afterwards
(`client`); tests whose background work commits from other connections use `committed_client`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from api.app import create_app
from api.errors import ApiError
from api.services import ConnectorWbVerifier, DeviceFlowLoginStarter, RunState
from storage import apikeys
from storage.db import session_scope
from storage.models import Marketplace
from storage.people import register_person
from storage.shops import create_shop
from tests.connectors.sandbox_harness import Sandbox, make_sandbox


class RecordingLauncher:
    """A SyncLauncher without Prefect: runs are remembered, never executed."""

    def __init__(self) -> None:
        self.runs: dict[str, RunState] = {}

    def _new(self, shop_id: int) -> str:
        run_id = f"00000000-0000-4000-8000-{len(self.runs) + 1:012d}"
        self.runs[run_id] = RunState(run_id, shop_id, "Scheduled", False)
        return run_id

    async def start_sync(self, shop_id: int) -> str:
        return self._new(shop_id)

    async def start_backfill(self, shop_id: int, streams: list[str] | None, since: date, until: date | None) -> str:
        return self._new(shop_id)

    async def status(self, run_id: str) -> RunState | None:
        return self.runs.get(run_id)


class UnavailableLauncher(RecordingLauncher):
    async def start_sync(self, shop_id: int) -> str:
        raise ApiError(503, "unavailable", "no Prefect server configured (set PREFECT_API_URL)")


class Bot:
    """An API client holding a key; `tid` is the default person it acts for."""

    def __init__(self, client: TestClient, key: str) -> None:
        self.client, self.key = client, key

    def request(self, method: str, path: str, **kw: Any) -> Any:
        headers = {"X-API-Key": self.key, **kw.pop("headers", {})}
        return self.client.request(method, "/api/v1" + path, headers=headers, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Any:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> Any:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return make_sandbox(scenario="tiny", auto_approve=True)


def build_app(sandbox: Sandbox, engine: Engine, **kw: Any) -> FastAPI:
    async def advance(seconds: float) -> None:
        sandbox.world.advance(seconds)  # the device-flow poll waits on sandbox time, not ours

    def auth() -> Any:
        return sandbox.auth(sleep=advance)

    kw.setdefault("wb_verifier", ConnectorWbVerifier(client_factory=lambda: sandbox.wb()))
    kw.setdefault("allegro_login", DeviceFlowLoginStarter(engine=lambda: engine, auth_factory=auth))
    kw.setdefault("sync_launcher", RecordingLauncher())
    return create_app(engine=engine, **kw)


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        outer = connection.begin()
        yield connection
        outer.rollback()


def _bound(conn: Connection) -> Session:
    return Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)


@pytest.fixture
def db(conn: Connection) -> Iterator[Session]:
    """The test's own session on the app's connection (sees what the app wrote, and vice versa)."""
    with _bound(conn) as session:
        yield session


@pytest.fixture
def app(sandbox: Sandbox, engine: Engine, conn: Connection) -> FastAPI:
    return build_app(sandbox, engine, session_factory=lambda: _bound(conn))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def key(db: Session) -> str:
    new = apikeys.create_key(db, name="bot")
    db.commit()
    return new.secret


@pytest.fixture
def bot(client: TestClient, key: str) -> Bot:
    return Bot(client, key)


@pytest.fixture
def committed(sandbox: Sandbox, clean_engine: Engine) -> Iterator[tuple[Bot, FastAPI]]:
    """An app whose requests commit for real (tables emptied afterwards)."""
    app = build_app(sandbox, clean_engine)
    with session_scope(clean_engine) as session:
        secret = apikeys.create_key(session, name="bot").secret
    with TestClient(app, raise_server_exceptions=False) as c:
        yield Bot(c, secret), app


def person(db: Session, telegram_id: int, **profile: Any) -> int:
    found, _ = register_person(db, telegram_id=telegram_id, profile=profile)
    db.commit()
    return found.id


def shop(db: Session, *, owner: int, marketplace: str = "wb", name: str = "shop", token: str = "s3cret") -> int:
    creds = {"token": token} if marketplace == "wb" else {"access_token": token, "refresh_token": token + "-r"}
    made = create_shop(db, marketplace=Marketplace(marketplace).value, name=name, credentials=creds, owner_id=owner)
    db.commit()
    return made.id
