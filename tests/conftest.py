"""Shared fixtures: settings pointed at a temporary data dir and a real, migrated PostgreSQL."""

from __future__ import annotations

import os

# Before any task module is imported: failed streams retry at once in tests.
os.environ.setdefault("TASK_RETRY_DELAYS", "0,0,0")
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from tests.dbutil import fresh_database


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give each operation schemathesis generates a node id of its own.

    Its items share the test function's id (`...::test_api_conforms_to_its_schema`, 41 times):
    pytest-xdist schedules a file's tests by node id, so all but one operation were dropped
    without a word. The name (`test_...[GET /api/v1/shops]`) is unique; the id is made from it.
    """
    from _pytest.nodeid import NodeId  # pytest 9 derives `nodeid` from this structured id

    for item in items:
        if type(item).__name__ == "SchemathesisFunction" and not item.nodeid.endswith("]"):
            item._id = NodeId.parse(f"{item.parent.nodeid}::{item.name}")
    ids = [item.nodeid for item in items]
    if len(set(ids)) != len(ids):  # never again a test dropped in silence
        raise pytest.UsageError(f"duplicate test ids: {sorted({i for i in ids if ids.count(i) > 1})[:5]}")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sellerpulse-data")


@pytest.fixture(scope="session")
def database_url(data_dir: Path) -> Iterator[str]:
    with fresh_database(data_dir) as url:
        yield url


@pytest.fixture(scope="session", autouse=True)
def _settings_env(data_dir: Path, database_url: str) -> Iterator[None]:
    """Point the application's settings at the test database and data dir for the whole run."""
    from sellerpulse.settings import get_settings
    from storage import db

    saved = dict(os.environ)
    os.environ["SELLERPULSE_DATA_DIR"] = str(data_dir)
    os.environ["DATABASE_URL"] = database_url
    os.environ.pop("SELLERPULSE_ENV", None)
    for cached in (get_settings, db.get_target, db.get_engine, db.get_sessionmaker):
        cached.cache_clear()
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def engine(_settings_env: None) -> Iterator[Engine]:
    from storage import migrate
    from storage.db import get_engine

    engine = get_engine()
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work, commits included, is rolled back after the test."""
    with engine.connect() as conn:
        outer = conn.begin()
        with Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False) as s:
            yield s
        outer.rollback()


@pytest.fixture
def clean_engine(engine: Engine) -> Iterator[Engine]:
    """For tests that commit from several connections: every table is emptied afterwards."""
    yield engine
    from storage.models import Base

    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
