"""The pool pings a connection only after it idled a while (storage.db): a dead one is replaced,
not handed to the caller; one used a moment ago goes out without a round trip."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine, text

from storage import db


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(admin: Engine, pid: int) -> None:
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    deadline = time.monotonic() + 10
    with admin.connect() as conn:
        while conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": pid}).scalar():
            assert time.monotonic() < deadline, "the backend did not end"
            time.sleep(0.05)


def test_a_dead_idle_connection_is_replaced_before_use(
    engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = db.make_engine(database_url, pool_size=1)
    try:
        first = _backend_pid(pool)
        _terminate(engine, first)
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # it has idled long enough
        assert _backend_pid(pool) != first  # a new connection, and no error to the caller
    finally:
        pool.dispose()


def test_a_connection_used_a_moment_ago_is_not_pinged(engine: Engine, database_url: str) -> None:
    pool = db.make_engine(database_url, pool_size=1)
    pings: list[object] = []
    original = pool.dialect.do_ping
    pool.dialect.do_ping = lambda c: pings.append(c) or original(c)  # type: ignore[method-assign]
    try:
        for _ in range(5):
            _backend_pid(pool)
        assert pings == []
    finally:
        pool.dispose()
