"""Failed authentication is throttled per client address: after `API_AUTH_FAILURES_PER_MINUTE`
failures (a missing, malformed, unknown or revoked key) in one minute, further failures from
that address are answered 429 with Retry-After instead of 401, until its minute is over.

The counter lives in PostgreSQL (storage.apikeys.record_failure), so it is one for every
worker of the install. A request with a valid key never reaches it: a bot sharing an address
with whoever is guessing keeps working. The address is the one uvicorn reports (behind a
reverse proxy, start uvicorn with the proxy's address in `--forwarded-allow-ips`).
"""

from __future__ import annotations

import math
from typing import Any

import psycopg
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from api.errors import ApiError
from storage import apikeys
from storage.apikeys import Failures
from storage.db import driver_cursor


def client_of(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def is_auth_failure(exc: ApiError) -> bool:
    return exc.status == 401


def judged(exc: ApiError, failures: Failures, limit: int) -> ApiError:
    """The 401 as it is, or a 429 once the address is past its limit."""
    if failures.count <= limit:
        return exc
    wait = max(1, math.ceil(failures.seconds_left))
    return ApiError(
        429,
        "rate_limited",
        f"too many failed authentications from this address; retry in {wait} s",
        headers={"Retry-After": str(wait)},
    )


def on_cursor(cur: psycopg.Cursor[Any], scope: Scope, exc: ApiError, limit: int) -> ApiError:
    """For the poll's fast path, on its own (autocommit) connection."""
    return judged(exc, apikeys.record_failure(cur, client=client_of(scope)), limit)


async def after_request(state: Any, scope: Scope, exc: ApiError) -> ApiError:
    """For every other route: the request's own transaction is gone (rolled back), so the
    failure is counted in a transaction of its own, in a slot like any database work."""

    def record() -> Failures:
        with state.sessionmaker() as session, session.begin():
            return apikeys.record_failure(driver_cursor(session), client=client_of(scope))

    async with state.db_slots():
        failures = await run_in_threadpool(record)
    return judged(exc, failures, state.settings.api_auth_failures_per_minute)
