"""Property-based run of every operation in /openapi.json: no 5xx, every response as documented,
a 405 naming every allowed method; then a stateful run that follows the schema's links (a new
person's shops, a new shop's dashboard, a poll's cursor into an ack...), and says how many of
them it actually followed.

A bounded budget (few examples per operation, a few dozen short scenarios) keeps both well under
a minute; this is what CI runs. Requests commit for real; the tables are emptied afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    allow_header_conformance,
    content_type_conformance,
    ensure_resource_availability,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
    use_after_free,
)
from sqlalchemy import Engine, text

from storage import apikeys
from storage.db import session_scope
from storage.models import Base
from storage.people import register_person
from storage.shops import create_shop
from tests.connectors.sandbox_harness import make_sandbox

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    allow_header_conformance,
    unsupported_method,
]
STATEFUL_CHECKS = [*CHECKS, use_after_free, ensure_resource_availability]


def _app() -> Any:
    # Built at collection time; it reaches the database (the test one) only when requests come.
    from api.app import create_app
    from api.services import ConnectorWbVerifier, DeviceFlowLoginStarter
    from storage.db import get_engine
    from tests.api.conftest import RecordingLauncher

    sandbox = make_sandbox(scenario="tiny", auto_approve=True)

    async def advance(seconds: float) -> None:
        sandbox.world.advance(seconds)

    from sellerpulse.settings import load_settings

    return create_app(
        # Generated requests without a key are many: the throttle is tested elsewhere.
        settings=load_settings(api_auth_failures_per_minute=100_000),
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


# Followed links ("source -> link name"), over the stateful run.
FOLLOWED: set[str] = set()


def _links(spec: dict[str, Any]) -> set[str]:
    """Every link, named as schemathesis names a transition: "SOURCE -> [status] name -> TARGET"."""
    targets = {op["operationId"]: f"{m.upper()} {p}" for p, item in spec["paths"].items() for m, op in item.items()}
    return {
        f"{method.upper()} {path} -> [{status}] {name} -> {targets[link['operationId']]}"
        for path, item in spec["paths"].items()
        for method, op in item.items()
        for status, response in op.get("responses", {}).items()
        for name, link in response.get("links", {}).items()
    }


def test_stateful_links_are_followed(api_key: str) -> None:
    # The bot's delivery bookkeeping (/delivery/...) has no links and its own tests
    # (tests/api/test_delivery_api.py): leaving it out keeps the budget on a person's way through.
    base = schema.exclude(path_regex="^/api/v1/delivery/").as_state_machine()

    class Scenarios(base):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"headers": {"X-API-Key": api_key}}

        def step(self, input: Any) -> Any:
            if input.transition is not None and input.is_applied:
                FOLLOWED.add(input.transition.id)
            return super().step(input)

        def validate_response(self, response: Any, case: schemathesis.Case, **kw: Any) -> None:
            case.validate_response(response, checks=STATEFUL_CHECKS, headers={"X-API-Key": api_key})

    Scenarios.run(
        settings=settings(
            max_examples=200,
            stateful_step_count=6,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )
    names = _links(APP.openapi())
    assert len(names) >= 40
    followed = FOLLOWED & names
    print(f"stateful: followed {len(followed)} of {len(names)} links")  # for the record (pytest -s)
    # On this budget (~40 s): 5 of 52 (the people -> shops -> shop chains; 300 examples: 9, in ~55 s);
    # before the links, 1 of 200 inferred.
    assert len(followed) >= 5, sorted(names - followed)
