"""Where the database is and how to reach it.

`DATABASE_URL` set: that server. Unset: an embedded PostgreSQL (pgserver) living in
`<data dir>/postgres`, started on first use, shared by every sellerpulse process on the same
data dir (pgserver keeps a per-data-dir list of client processes) and stopped when the last
of them exits.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from sellerpulse.settings import Settings, get_settings

log = logging.getLogger(__name__)

EMBEDDED_DB_NAME = "sellerpulse"


@dataclass(frozen=True)
class DatabaseTarget:
    url: str
    embedded: bool

    def describe(self) -> str:
        """Where the database is, without the password."""
        shown = make_url(self.url).render_as_string(hide_password=True)
        return f"{shown} ({'embedded' if self.embedded else 'external'})"


def _embedded_url(settings: Settings) -> str:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); pgserver copes.
        warnings.simplefilter("ignore")
        import pgserver  # imported lazily: it is only needed without DATABASE_URL

    # pgserver logs every pg_ctl command line at INFO; keep the user's log readable.
    logging.getLogger("pgserver").setLevel(logging.WARNING)

    pgdata = settings.sellerpulse_data_dir / "postgres"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DB_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {EMBEDDED_DB_NAME};")
    return server.get_uri(EMBEDDED_DB_NAME).replace("postgresql://", "postgresql+psycopg://", 1)


def resolve_target(settings: Settings) -> DatabaseTarget:
    url = settings.sqlalchemy_url
    if url is not None:
        return DatabaseTarget(url=url, embedded=False)
    return DatabaseTarget(url=_embedded_url(settings), embedded=True)


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 10, "application_name": "sellerpulse"},
    )


@lru_cache(maxsize=1)
def get_target() -> DatabaseTarget:
    return resolve_target(get_settings())


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    return make_engine(get_target().url, pool_size=get_settings().db_pool_size)


@lru_cache(maxsize=1)
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(get_engine(), expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    factory = sessionmaker(engine, expire_on_commit=False) if engine else get_sessionmaker()
    with factory() as session, session.begin():
        yield session


def driver_cursor(session: Session) -> Any:
    """A psycopg cursor on the session's own connection (same transaction): for COPY, and for
    hot paths where SQLAlchemy's per-statement work would cost more than the statement."""
    return session.connection().connection.driver_connection.cursor()


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
