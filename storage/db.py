"""Where the database is and how to reach it.

`DATABASE_URL` set: that server. Unset: an embedded PostgreSQL (pgserver) living in
`<data dir>/postgres`, started on first use, shared by every sellerpulse process on the same
data dir (pgserver keeps a per-data-dir list of client processes) and stopped when the last
of them exits.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from sellerpulse.errors import Failure
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


class EmbeddedServerError(Failure):
    """The embedded PostgreSQL in the data dir would not start (permissions, disk, a stale lock)."""

    def __init__(self, pgdata: Path, reason: str) -> None:
        super().__init__(f"cannot start the embedded PostgreSQL in {pgdata}: {reason}")


class _Captured(logging.Handler):
    """pgserver logs a failed pg_ctl/initdb with the command's whole output at ERROR: kept here,
    so that the user sees the one line that says why instead of twenty."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines += [line.strip() for line in record.getMessage().splitlines() if line.strip()]


# The words of a line that says why (initdb's and pg_ctl's "could not access directory ...").
_WHY = ("could not", "Permission denied", "No space left", "FATAL:", ": error:")


def _start_embedded(pgdata: Path) -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); pgserver copes.
        warnings.simplefilter("ignore")
        import pgserver  # imported lazily: it is only needed without DATABASE_URL

    captured = _Captured()
    pg_log = logging.getLogger("pgserver")
    pg_log.setLevel(logging.WARNING)  # it logs every pg_ctl command line at INFO
    pg_log.addHandler(captured)
    pg_log.propagate = False
    try:
        return pgserver.get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:  # initdb's, pg_ctl's or pgserver's own: all mean "did not start"
        lines = captured.lines + [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = next((line for line in lines if any(w in line for w in _WHY)), lines[-1] if lines else repr(exc))
        raise EmbeddedServerError(pgdata, reason) from exc
    finally:
        pg_log.removeHandler(captured)
        pg_log.propagate = True


def _embedded_url(settings: Settings) -> str:
    pgdata = settings.sellerpulse_data_dir / "postgres"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = _start_embedded(pgdata)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DB_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {EMBEDDED_DB_NAME};")
    return server.get_uri(EMBEDDED_DB_NAME).replace("postgresql://", "postgresql+psycopg://", 1)


def resolve_target(settings: Settings) -> DatabaseTarget:
    url = settings.sqlalchemy_url
    if url is not None:
        return DatabaseTarget(url=url, embedded=False)
    return DatabaseTarget(url=_embedded_url(settings), embedded=True)


# A connection back in the pool for less than this is not pinged when it is checked out again.
PING_AFTER_IDLE_SECONDS = 2.0


def _mark_checkin(_dbapi_conn: Any, record: Any) -> None:
    record.info["checked_in"] = time.monotonic()


def _ping_if_idle(engine: Engine) -> Any:
    """Pre-ping, but only a connection that sat in the pool a while (PING_AFTER_IDLE_SECONDS):
    a sync checks out a connection for each of its ~30 transactions, a few milliseconds apart,
    and a ping on every checkout was a round trip each (our CPU and the server's) for nothing. A
    connection the server dropped while it idled longer is found here and replaced (the pool
    tries a new one); one dropped in the last seconds fails its first statement, which
    invalidates the whole pool (SQLAlchemy's disconnect handling) and is retried as any
    transient failure is (tasks.retry)."""

    def check(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("checked_in")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return  # a new connection, or one used a moment ago
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # noqa: BLE001 - any failure: this connection is gone
            raise DisconnectionError(f"the pooled connection did not answer: {type(exc).__name__}") from exc

    return check


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        connect_args={"connect_timeout": 10, "application_name": "sellerpulse"},
    )
    event.listen(engine.pool, "checkin", _mark_checkin)
    event.listen(engine.pool, "checkout", _ping_if_idle(engine))
    return engine


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
