"""Test databases: one fresh PostgreSQL database per test session, migrated by Alembic.

TEST_DATABASE_URL (or DATABASE_URL) names a server to use, e.g. the local one in CI;
without either, an embedded pgserver in a temporary directory is started.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def _server_url(tmp_dir: Path) -> str:
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                url = "postgresql+psycopg://" + url[len(prefix) :]
        return url
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    server = pgserver.get_server(tmp_dir / "pg", cleanup_mode="delete")
    return server.get_uri("postgres").replace("postgresql://", "postgresql+psycopg://", 1)


@contextmanager
def fresh_database(tmp_dir: Path, prefix: str = "sp_test") -> Iterator[str]:
    """Create a uniquely named database on the test server; drop it afterwards."""
    server = make_url(_server_url(tmp_dir))
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
