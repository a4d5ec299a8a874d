"""The API as `sellerpulse api --workers N` serves it (api.serving), for tests of what only a
real server shows (several workers, a database that goes away, concurrency)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text

from api.app import API_APPLICATION_NAME
from api.serving import served_api


@contextmanager
def serve_api(database_url: str, data_dir: Path, *, workers: int = 2, **settings: str) -> Iterator[str]:
    """Yields the server's base URL once it answers; `settings`: extra environment (API_POOL_SIZE=...)."""
    with served_api(database_url, data_dir, workers=workers, env=settings) as served:
        yield served.url


def end_api_connections(engine: Engine) -> list[bool]:
    """Terminate every connection of the API (they name themselves, see api.app), as a
    database restart would; one result per connection ended."""
    with engine.connect() as conn:
        ended = conn.execute(
            text(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = :name AND pid <> pg_backend_pid()"
            ),
            {"name": API_APPLICATION_NAME},
        ).all()
    return [ok for (ok,) in ended]
