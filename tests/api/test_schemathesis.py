"""Property-based run of every operation in /openapi.json: no 5xx, every response as documented.

A bounded budget (few examples per operation, no shrinking beyond the defaults' deadline) keeps
it well under a minute. Requests commit for real; the tables are emptied afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine, text

from storage import apikeys
from storage.db import session_scope
from storage.models import Base
from storage.people import register_person
from storage.shops import create_shop
from tests.connectors.sandbox_harness import make_sandbox

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _app() -> Any:
    # Built at collection time; it reaches the database (the test one) only when requests come.
    from api.app import create_app
    from api.services import ConnectorWbVerifier, DeviceFlowLoginStarter
    from storage.db import get_engine
    from tests.api.conftest import RecordingLauncher

    sandbox = make_sandbox(scenario="tiny", auto_approve=True)

    async def advance(seconds: float) -> None:
        sandbox.world.advance(seconds)

    return create_app(
        wb_verifier=ConnectorWbVerifier(client_factory=lambda: sandbox.wb()),
        allegro_login=DeviceFlowLoginStarter(engine=get_engine, auth_factory=lambda: sandbox.auth(sleep=advance)),
        sync_launcher=RecordingLauncher(),
    )


APP = _app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module")
def api_key(engine: Engine) -> Iterator[str]:
    """Committed data: person 1 owns shop 1 (ids the generator hits often), and a key."""
    with session_scope(engine) as session:
        secret = apikeys.create_key(session, name="schemathesis").secret
        person, _ = register_person(session, telegram_id=1, profile={})
        create_shop(session, marketplace="wb", name="w", credentials={"token": "t"}, owner_id=person.id)
    yield secret
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@schema.parametrize()
@settings(max_examples=12, deadline=2000, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_schema(case: schemathesis.Case, api_key: str) -> None:
    case.call_and_validate(headers={"X-API-Key": api_key}, checks=CHECKS)
