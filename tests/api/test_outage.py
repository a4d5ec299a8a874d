"""The database goes away under a running API (a real embedded PostgreSQL, pgserver, killed
with SIGKILL, not the shared test server): every endpoint answers 503 in the error shape with
Retry-After, at once; when PostgreSQL is back, the API recovers by itself."""

from __future__ import annotations

import os
import signal
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from sqlalchemy import create_engine

from storage import apikeys, migrate
from storage.db import session_scope
from storage.people import register_person
from storage.shops import create_shop
from tests.api.served import serve_api

TID = 7
# Path parameters by name; bodies that are valid where a route takes one (a route added later
# gets `{}`: with the database down, its key check fails before its body is judged).
PATH_VALUES = {"telegram_id": str(TID), "shop_id": "1", "order_id": "1", "ticket_id": "t1", "run_id": "r-1"}
BODIES: dict[tuple[str, str], Any] = {
    ("put", "/api/v1/people/{telegram_id}"): {},
    ("put", "/api/v1/settings"): {"grouping_enabled": False},
    ("post", "/api/v1/shops/wb"): {"name": "w", "token": "t"},
    ("post", "/api/v1/shops/allegro/login"): {"name": "a"},
    ("patch", "/api/v1/shops/{shop_id}"): {"name": "n"},
    ("post", "/api/v1/shops/{shop_id}/members"): {"telegram_id": TID + 1},
    ("post", "/api/v1/shops/{shop_id}/sync/backfill"): {"since": "2026-01-01"},
    ("post", "/api/v1/notifications/ack"): {"cursor": 0},
    ("post", "/api/v1/notifications/poll"): {"telegram_ids": [TID]},
}
NO_DATABASE = {"/api/v1/health/live"}
# They also call a marketplace (not reachable from here: no sandbox behind this server), so
# they are only asked while the database is down (which they notice before calling anyone).
EXTERNAL = {("POST", "/api/v1/shops/wb"), ("POST", "/api/v1/shops/allegro/login")}


@pytest.fixture
def embedded() -> Iterator[Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    # A directory of its own, short (the socket path is limited), outside pytest's numbered
    # temporary directories (which concurrent pytest runs prune).
    with tempfile.TemporaryDirectory(prefix="sp-outage-") as tmp:
        server = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="delete")
        yield server
        server.cleanup()


def kill(server: Any) -> None:
    """As the OOM killer would: the postmaster and every backend, SIGKILL, no shutdown."""
    postmaster = psutil.Process(server.get_pid())
    for proc in [postmaster, *postmaster.children(recursive=True)]:
        os.kill(proc.pid, signal.SIGKILL)
    psutil.wait_procs([postmaster], timeout=10)
    deadline = time.monotonic() + 10
    while any(
        p.info["name"] == "postgres" and str(server.pgdata) in " ".join(p.info["cmdline"] or ())
        for p in psutil.process_iter(attrs=["name", "cmdline"])
    ):
        assert time.monotonic() < deadline, "postgres processes survived SIGKILL"
        time.sleep(0.05)


def calls(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """One request per documented operation (and the poll's fast path and full route both)."""
    out = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            url = path
            for name, value in PATH_VALUES.items():
                url = url.replace("{" + name + "}", value)
            kw: dict[str, Any] = {}
            if any(p["in"] == "query" and p["name"] == "telegram_id" for p in op.get("parameters", ())):
                kw["params"] = {"telegram_id": TID}
            if "requestBody" in op:
                kw["json"] = BODIES.get((method, path), {})
            out.append((method.upper(), url, kw))
    out.append(("GET", "/api/v1/notifications", {"params": {"telegram_id": TID, "last_check": "2026-01-01T00:00:00Z"}}))
    return out


def statuses(client: httpx.Client, todo: list[tuple[str, str, dict[str, Any]]]) -> dict[tuple[str, str], int]:
    return {(m, path): client.request(m, path, **kw).status_code for m, path, kw in todo if (m, path) not in EXTERNAL}


def failing(found: dict[tuple[str, str], int]) -> list[tuple[str, str]]:
    return [call for call, status in found.items() if status >= 500]


def test_every_endpoint_is_503_while_the_database_is_down_and_recovers(embedded: Any, tmp_path: Path) -> None:
    url = embedded.get_uri("postgres").replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url)
    migrate.upgrade(engine)
    with session_scope(engine) as session:
        key = apikeys.create_key(session, name="bot").secret
        person, _ = register_person(session, telegram_id=TID, profile={})
        create_shop(session, marketplace="wb", name="w", credentials={"token": "t"}, owner_id=person.id)
    engine.dispose()

    with (
        serve_api(url, tmp_path / "data", workers=2) as base,
        httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=10) as client,
    ):
        todo = calls(client.get("/openapi.json").json())
        assert len(todo) > 25
        for _ in range(4):  # both workers, their fast-path connection and pools warm
            assert client.get("/api/v1/notifications", params={"telegram_id": TID}).status_code == 200
        before = statuses(client, todo)
        assert not failing(before), before

        kill(embedded)
        for method, path, kw in todo * 2:  # twice: each worker may answer either
            if path in NO_DATABASE:
                continue
            t0 = time.monotonic()
            r = client.request(method, path, **kw)
            took = time.monotonic() - t0
            assert r.status_code == 503, (method, path, r.status_code, r.text)
            assert r.json()["error"]["code"] == "unavailable", (method, path, r.text)
            assert int(r.headers["Retry-After"]) >= 1, (method, path)
            assert took < 1.0, (method, path, took)
        assert client.get("/api/v1/health/live").status_code == 200  # the process itself is fine

        embedded.ensure_postgres_running()  # the same data directory and socket
        deadline = time.monotonic() + 30
        while True:
            after = statuses(client, todo)
            if not failing(after):
                break
            assert time.monotonic() < deadline, f"still failing after the database came back: {after}"
            time.sleep(0.2)
        polls = [client.get("/api/v1/notifications", params={"telegram_id": TID}) for _ in range(6)]
        assert all(r.status_code == 200 and "next_cursor" in r.json() for r in polls)
