"""Throw-away databases for tests and benchmarks: a fresh, uniquely named database on a server.

`server_url()` is the first of the given environment variables that is set, or an embedded
pgserver in `tmp_dir` (deleted when the process exits).
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def _psycopg(url: str) -> str:
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL of `_psycopg` (or any) back in the form psycopg.connect takes."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def server_url(tmp_dir: Path, *env_vars: str) -> str:
    for name in env_vars:
        if os.environ.get(name):
            return _psycopg(os.environ[name])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    server = pgserver.get_server(tmp_dir / "pg", cleanup_mode="delete")
    return _psycopg(server.get_uri("postgres"))


@contextmanager
def fresh_database(server: str, prefix: str) -> Iterator[str]:
    """Create a uniquely named database on `server`; drop it afterwards. Yields its URL."""
    base = make_url(server)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
