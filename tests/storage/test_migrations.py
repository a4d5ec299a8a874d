from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from storage import migrate
from storage.models import Base
from tests.dbutil import fresh_database


@pytest.fixture
def scratch_engine(data_dir: Path):
    with fresh_database(data_dir, prefix="sp_mig") as url:
        engine = create_engine(url)
        yield engine
        engine.dispose()


def test_round_trip_head_base_head(scratch_engine) -> None:
    migrate.upgrade(scratch_engine)
    assert migrate.schema_status(scratch_engine).at_head
    migrate.downgrade(scratch_engine, "base")
    assert set(inspect(scratch_engine).get_table_names()) <= {"alembic_version"}
    assert migrate.schema_status(scratch_engine).current is None
    migrate.upgrade(scratch_engine)
    assert migrate.schema_status(scratch_engine).at_head


def test_migrations_match_the_models(engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_code_refuses_a_schema_not_at_head(scratch_engine) -> None:
    with pytest.raises(migrate.SchemaNotAtHead, match="sellerpulse db upgrade"):
        migrate.require_head(scratch_engine)
    migrate.upgrade(scratch_engine)
    migrate.require_head(scratch_engine)
