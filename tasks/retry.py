"""Which failures a Prefect task retries: transient ones only.

Network trouble, 5xx, 429 and a lost database connection are worth another try (until the
stream's retry budget is spent: connectors.http.RetryBudget); rejected
credentials, a refresh token that is spent, or a request the marketplace calls wrong are
not (retrying those only hammers the marketplace and delays the person being told).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from prefect import Task, task
from prefect.cache_policies import NONE
from sqlalchemy.exc import DBAPIError, OperationalError

from connectors.errors import RetryBudgetSpent, RetryLater, TransientError
from sellerpulse.settings import get_settings

T = TypeVar("T")

# Read once, when the task decorators are evaluated.
RETRY_DELAYS = get_settings().retry_delays


def is_transient(exc: BaseException | None) -> bool:
    if isinstance(exc, RetryBudgetSpent):
        return False  # transient, but the stream has already been retried for as long as it may
    if isinstance(exc, RetryLater):
        return False  # the marketplace said when: asking again sooner only burns its limit
    if isinstance(exc, TransientError | OperationalError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    # A failed task's state carries the exception itself as its data.
    return isinstance(state.data, BaseException) and is_transient(state.data)


def stream_task(name: str) -> Callable[[Callable[..., Any]], Task[..., Any]]:
    """A sync stream as a Prefect task: retried on transient failures only, never cached
    (a sync with the same inputs must run again)."""
    return task(
        name=name,
        retries=len(RETRY_DELAYS),
        retry_delay_seconds=RETRY_DELAYS,
        retry_condition_fn=retry_transient,
        cache_policy=NONE,
    )


async def call_retried(
    fn: Callable[..., Awaitable[T]],
    *args: Any,
    delays: Sequence[float] = RETRY_DELAYS,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """`fn(*args)` retried as a stream task is (`delays` between tries, transient failures
    only): for streams run inside one task run of their shop (flows.streams.shop_streams)."""
    for delay in [*delays, None]:
        try:
            return await fn(*args)
        except Exception as exc:
            if delay is None or not is_transient(exc):
                raise
        await sleep(delay)
    raise AssertionError("unreachable: the last try returns or raises")
