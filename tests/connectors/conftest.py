"""Connector tests need no database: replace the root's autouse database fixture here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def _settings_env() -> Iterator[None]:
    # Connectors import neither storage nor settings; starting PostgreSQL would only cost time.
    yield
