"""How many requests of a worker use the database at once, and the session they use.

A request's session keeps its connection from its first statement to its commit, across the
thread-pool hops of its dependencies and handler. Let more requests hold connections than
there are threads, and the threads end up waiting for connections held by requests that are
waiting for a thread: every one stalls until the pool times out (issue 12: 94 HTTP 500 and
requests over 30 s under 40 bots). So a request takes a slot on the event loop, holding
neither a thread nor a connection, before its session exists: at most `API_POOL_SIZE`
requests hold connections, the pool always has one for them, and the thread limiter
(`threads_for`) always has a thread. A request that waits longer than the pool timeout for
a slot is answered 503 with Retry-After, never a 500.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

from fastapi import Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError

# Threads beyond the slots: background work (Allegro logins completing) and the odd request
# that runs a blocking step without the database.
SPARE_THREADS = 4


def threads_for(pool_size: int) -> int:
    return pool_size + SPARE_THREADS


def api_busy() -> ApiError:
    return ApiError(503, "unavailable", "the API is busy; try again", headers={"Retry-After": "1"})


T = TypeVar("T")


class LoopLocal(Generic[T]):
    """An asyncio primitive of the running event loop, made by `make` for each new loop: a
    served worker has one loop, but a test client (or a second app run) may bring its own, and
    a semaphore or lock belongs to the loop it was first used on."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._loop: asyncio.AbstractEventLoop | None = None
        self._value: T | None = None

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._value is None:
            self._loop, self._value = loop, self._make()
        return self._value


class DbSlots:
    """At most `size` holders at once; the rest wait up to `timeout` seconds, then 503."""

    def __init__(self, size: int, timeout: float) -> None:
        self.timeout = timeout
        self._semaphore = LoopLocal(lambda: asyncio.Semaphore(size))

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[None]:
        semaphore = self._semaphore.get()
        if semaphore.locked():
            try:
                await asyncio.wait_for(semaphore.acquire(), self.timeout)
            except TimeoutError:
                raise api_busy() from None
        else:
            await semaphore.acquire()  # free: no timer, no task
        try:
            yield
        finally:
            semaphore.release()


async def request_session(request: Request) -> AsyncIterator[Session]:
    """One transaction per request, in a slot: committed when the handler returns, rolled back
    if it raises. Opening is free (the connection comes with the first statement, in a thread);
    the commit and the connection's return to the pool run in a thread too."""
    state = request.app.state
    async with state.db_slots():
        session: Session = state.sessionmaker()
        try:
            yield session
        except BaseException:
            await run_in_threadpool(session.close)  # rolls back
            raise
        try:
            await run_in_threadpool(session.commit)
        finally:
            await run_in_threadpool(session.close)
