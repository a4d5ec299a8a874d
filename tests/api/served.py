"""The API as `sellerpulse api --workers N` serves it (api.serving), for tests of what only a
real server shows (several workers, a database that goes away, concurrency)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from api.serving import served_api


@contextmanager
def serve_api(database_url: str, data_dir: Path, *, workers: int = 2, **settings: str) -> Iterator[str]:
    """Yields the server's base URL once it answers; `settings`: extra environment (API_POOL_SIZE=...)."""
    with served_api(database_url, data_dir, workers=workers, env=settings) as served:
        yield served.url
