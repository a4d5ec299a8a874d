"""`sellerpulse api` refuses to serve a database whose schema is not at head."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sellerpulse.cli import main
from sellerpulse.settings import get_settings
from storage import db
from tests.dbutil import fresh_database

CACHED = (get_settings, db.get_target, db.get_engine, db.get_sessionmaker)


@pytest.fixture
def empty_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: object) -> Iterator[None]:
    with fresh_database(tmp_path, prefix="sp_empty") as url:
        monkeypatch.setenv("DATABASE_URL", url)
        for cached in CACHED:
            cached.cache_clear()
        try:
            yield
        finally:
            db.get_engine().dispose()
            monkeypatch.undo()
            for cached in CACHED:
                cached.cache_clear()


def test_api_refuses_a_schema_not_at_head(empty_database: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["api", "--port", "1"]) == 2
    assert "sellerpulse db upgrade" in capsys.readouterr().err
    assert main(["api-keys", "list"]) == 2
