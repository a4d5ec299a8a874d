"""Test databases: one fresh PostgreSQL database per test session, migrated by Alembic.

TEST_DATABASE_URL (or DATABASE_URL) names a server to use, e.g. the local one in CI;
without either, an embedded pgserver in a temporary directory is started.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from storage import scratch


@contextmanager
def fresh_database(tmp_dir: Path, prefix: str = "sp_test") -> Iterator[str]:
    with scratch.fresh_database(scratch.server_url(tmp_dir, "TEST_DATABASE_URL", "DATABASE_URL"), prefix) as url:
        yield url
