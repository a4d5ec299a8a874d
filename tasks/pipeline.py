"""Fetching overlapped with writing: the next batch is read while the current one is written.

    await overlapped(batches, write)

`batches` is an async iterator of batches (say `tasks.context.batched(pages, 2000)`) and
`write(batch)` stores one batch with what it covers (its resume point) in one transaction.
While `write` runs (in a worker thread: `SyncContext.in_transaction`), the next batch is
filled from the source in a task of its own, which stops once that batch is full: at most one
batch is being written and one being filled, so memory stays bounded whatever the sizes.

Batches are written one at a time, in the order they come. If a write fails, the read ahead is
cancelled and the failure raised: nothing after the failed batch is written. If reading fails,
the batch being written is finished first (its progress is stored), then the failure is
raised. Either way progress is only ever recorded for written batches, so a retry resumes at
the first batch not written and nothing is lost, repeated out of order, or skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")
_END: Any = object()


async def _next(source: AsyncIterator[T]) -> T:
    try:
        return await anext(source)
    except StopAsyncIteration:
        return _END


async def _stop(ahead: asyncio.Task[Any] | None, source: AsyncIterator[Any]) -> None:
    """Cancel the read ahead (its outcome no longer matters) and close the source."""
    if ahead is not None:
        ahead.cancel()
        with contextlib.suppress(BaseException):
            await ahead
    close = getattr(source, "aclose", None)
    if close is not None:
        await close()


async def overlapped(batches: AsyncIterator[T], write: Callable[[T], Awaitable[Any]]) -> int:
    """Write every batch of `batches`, reading the next one while each is written; returns how
    many were written."""
    source = aiter(batches)
    ahead: asyncio.Task[T] | None = asyncio.create_task(_next(source))
    written = 0
    try:
        while True:
            assert ahead is not None
            batch = await ahead  # a failed read raises here, after the previous write finished
            ahead = None
            if batch is _END:
                return written
            ahead = asyncio.create_task(_next(source))
            await write(batch)
            written += 1
            del batch  # the writer's copy is gone: only the batch being filled is held
    finally:
        await _stop(ahead, source)
