"""The fast path's own connection (api.fastpath.LoopConnection) never waits for the request
pool: a worker that has just started (or lost its connection) answers its first poll while
every pooled connection is held by requests that wait. It used to take its connection from
that pool: behind 40 bots at once on a fresh worker, the first polls waited the pool timeout
(15 s) and were answered 503, the bots' requests meanwhile timing out (ReadTimeout)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import Engine, text

from api.app import API_APPLICATION_NAME, api_engine, loop_connect
from api.fastpath import LoopConnection
from sellerpulse.notify.drafts import Draft
from storage import apikeys, outbox
from storage.db import session_scope
from storage.people import register_person
from storage.settings_repo import update_settings
from storage.shops import add_member, create_shop
from tests.api.served import serve_api

POLLER, NEWCOMER = 71, 72  # the newcomer has no settings yet: their first read writes the defaults
DEADLINE = 30.0


def _fill(engine: Engine) -> tuple[str, int]:
    with session_scope(engine) as session:
        key = apikeys.create_key(session, name="bot").secret
        poller, _ = register_person(session, telegram_id=POLLER, profile={})
        update_settings(session, person_id=poller.id, values={"grouping_enabled": False})
        newcomer, _ = register_person(session, telegram_id=NEWCOMER, profile={})
        shop = create_shop(session, marketplace="wb", name="s", credentials={"token": "t"}, owner_id=poller.id)
        add_member(session, shop_id=shop.id, person_id=newcomer.id)
        outbox.add(session, shop_id=shop.id, drafts=[Draft("new_order", "loop:1", "1", {"srid": "1"})])
        session.execute(text("DELETE FROM notification_settings WHERE person_id = :p"), {"p": newcomer.id})
    return key, newcomer.id


def _api_waiting_on_a_lock(engine: Engine) -> bool:
    with engine.connect() as conn:
        query = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = :name AND wait_event_type = 'Lock'"
        )
        return bool(conn.execute(text(query), {"name": API_APPLICATION_NAME}).scalar())


def _wait_for(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)  # polling the database, not waiting for a result


def test_a_fresh_workers_first_poll_is_answered_while_the_pool_is_held(
    clean_engine: Engine, database_url: str, tmp_path: Path
) -> None:
    key, newcomer = _fill(clean_engine)
    headers = {"X-API-Key": key}
    # One pooled connection; a pool timeout and a statement timeout far past the client's, so a
    # poll that waits for the pool shows as a timeout, not as an answer once the held one is free.
    settings = {"API_POOL_SIZE": "1", "API_POOL_MAX_OVERFLOW": "0", "API_POOL_TIMEOUT_SECONDS": "60"}
    settings |= {"API_STATEMENT_TIMEOUT_MS": "60000"}
    with serve_api(database_url, tmp_path, workers=1, **settings) as base, clean_engine.connect() as blocker:
        # The newcomer's default settings, inserted and not committed: their first read of
        # the settings (the route inserts the defaults) waits for this transaction, holding
        # the pool's only connection.
        blocker.execute(text("INSERT INTO notification_settings (person_id) VALUES (:p)"), {"p": newcomer})
        waiting: list[httpx.Response] = []
        reader = threading.Thread(
            target=lambda: waiting.append(
                httpx.get(f"{base}/api/v1/settings", params={"telegram_id": NEWCOMER}, headers=headers, timeout=60)
            )
        )
        reader.start()
        try:
            _wait_for("the settings read to wait for the lock", lambda: _api_waiting_on_a_lock(clean_engine))
            poll = httpx.get(
                f"{base}/api/v1/notifications", params={"telegram_id": POLLER}, headers=headers, timeout=10
            )
            assert poll.status_code == 200, poll.text
            assert [i["kind"] for i in poll.json()["items"]] == ["new_order"]
            # Answered while the pool's connection was still held: the poll did not need it.
            assert _api_waiting_on_a_lock(clean_engine)
        finally:
            blocker.rollback()
            reader.join(timeout=DEADLINE)
    assert [r.status_code for r in waiting] == [200]


class _Connections:
    """What LoopConnection is given to connect with: connections to the test database, made
    one at a time only when the test lets them (`go`)."""

    def __init__(self, url: str) -> None:
        self.url, self.made, self.go = url, list[psycopg.Connection[Any]](), threading.Event()

    def __call__(self) -> psycopg.Connection[Any]:
        assert self.go.wait(DEADLINE)
        conn = psycopg.connect(self.url)
        self.made.append(conn)
        return conn


def test_polls_arriving_together_share_one_connect(database_url: str) -> None:
    connections = _Connections(database_url.replace("postgresql+psycopg://", "postgresql://"))
    loop_connection = LoopConnection(connections)

    async def polls() -> list[psycopg.Cursor[Any]]:
        waiting = [asyncio.create_task(loop_connection.cursor()) for _ in range(20)]
        await asyncio.sleep(0)  # every poll is waiting for the connection before it exists
        connections.go.set()
        return await asyncio.gather(*waiting)

    try:
        cursors = asyncio.run(polls())
        assert len(connections.made) == 1
        assert {id(c) for c in cursors} == {id(cursors[0])}
        cursors[0].execute("SELECT 1")
        assert cursors[0].fetchone() == (1,)
    finally:
        loop_connection.close()
    assert connections.made[0].closed


def test_the_apis_connections_never_jit_compile() -> None:
    """Both the request pool's and the fast path's: a poll JIT-compiled on every call cost
    PostgreSQL ~100-190 ms of CPU (api.app._connect_args)."""
    with api_engine().connect() as conn:
        assert conn.exec_driver_sql("SHOW jit").scalar() == "off"
    own = loop_connect()
    try:
        assert own.execute("SHOW jit").fetchone() == ("off",)
    finally:
        own.close()
