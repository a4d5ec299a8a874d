"""The bot's notification poll without FastAPI's per-request machinery.

`GET /api/v1/notifications` is most of the traffic (every bot polls every few seconds), so a
plain, valid request (`telegram_id`, optional `after` and `limit`, digits in range, nothing
else) is answered here: same key check, same delivery, same JSON as the documented route.
Anything else (a `last_check`, a bad or repeated value, an extra parameter) goes on to that
route, which validates it and answers in the usual shape, so the two can never disagree on
what is valid.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl

import psycopg
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api import fastroutes, throttle
from api.admission import LoopLocal
from api.errors import ApiError, database_unavailable, is_database_down, log
from api.limits import replay
from api.schemas import MAX_ID

POLL_PATH = "/api/v1/notifications"
KEY_HEADER = b"x-api-key"
DIGITS = re.compile(r"[0-9]{1,19}")
BOUNDS = {"telegram_id": (1, MAX_ID), "after": (0, MAX_ID), "limit": (1, 200)}


def plain_poll(query: bytes) -> dict[str, int] | None:
    """The parameters of a plain, valid poll; None for anything the full route should judge."""
    try:
        pairs = parse_qsl(query.decode("ascii"), strict_parsing=False)
    except UnicodeDecodeError:
        return None
    values: dict[str, int] = {}
    for name, raw in pairs:
        bounds = BOUNDS.get(name)
        if bounds is None or name in values or not DIGITS.fullmatch(raw):
            return None
        value = int(raw)
        if not bounds[0] <= value <= bounds[1]:
            return None
        values[name] = value
    return values if "telegram_id" in values else None


class PollFastPath:
    """The poll here, and the other frequent requests of a bot (api.fastroutes) when the app
    has its own loop connection (as served); everything else goes on to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["method"] == "GET" and scope["path"] == POLL_PATH:
            return await self._poll(scope, receive, send)
        found = fastroutes.route_of(scope)
        loop_connection: LoopConnection | None = getattr(scope["app"].state, "poll_connection", None)
        if found is None or loop_connection is None:
            return await self.app(scope, receive, send)
        route, match = found
        body = b""
        if route.has_body:
            if not fastroutes.is_json(scope):
                return await self.app(scope, receive, send)
            read = await _body(receive)
            if read is None:
                return  # the client went away
            body, receive = read, replay(read, receive)
        args = route.parse(match, scope["query_string"], body)
        if args is None:
            return await self.app(scope, receive, send)
        secret = _header(scope, KEY_HEADER)

        def work(cur: psycopg.Cursor[Any]) -> bytes | fastroutes.Steps:
            return route.answer(cur, secret, **args)

        try:
            answer = await _on_loop(scope, loop_connection, work)
        except fastroutes.FallThrough:
            return await self.app(scope, receive, send)
        await answer(scope, receive, send)

    async def _poll(self, scope: Scope, receive: Receive, send: Send) -> None:
        params = plain_poll(scope["query_string"])
        if params is None:
            return await self.app(scope, receive, send)
        secret = _header(scope, KEY_HEADER)
        from api.routes.notifications import _poll  # the route's own worker: one behaviour

        state = scope["app"].state
        args = (state, secret, params["telegram_id"], params.get("after"), None, params.get("limit", 50))
        loop_connection: LoopConnection | None = getattr(state, "poll_connection", None)
        if loop_connection is not None:

            def work(cur: psycopg.Cursor[Any]) -> bytes:
                return _poll(*args, cur=cur)

            return await (await _on_loop(scope, loop_connection, work))(scope, receive, send)
        try:
            try:
                async with state.db_slots():
                    body = await run_in_threadpool(_poll, *args)
            except ApiError as exc:
                if not throttle.is_auth_failure(exc):
                    raise
                raise await throttle.after_request(state, scope, exc) from None
        except ApiError as exc:
            return await exc.response()(scope, receive, send)
        except Exception as exc:
            return await _database_down(exc)(scope, receive, send)
        await Response(body, media_type="application/json")(scope, receive, send)


Work = Callable[[psycopg.Cursor[Any]], "bytes | fastroutes.Steps"]
# How much CPU the steps of an answer (fastroutes.Steps) may take on the event loop before the
# loop serves the worker's other requests (one person's page of a batch poll is ~0.1 ms). Not
# much less: each time it lets go, the batch waits behind every request the loop has ready
# (with 1 ms slices under the mixed load, a batch poll took 550 ms at the median and made all
# of the slowest 1%); 50 people's pages are about one slice. CPU, not wall time: on a busy
# machine the worker's own descheduling would count and the batch would yield for nothing.
SLICE_SECONDS = 0.005


async def _on_loop(scope: Scope, loop_connection: LoopConnection, work: Work) -> Response:
    """`work` on the event loop itself: one short statement (bounded by the API engine's
    statement timeout) costs less than handing it to a thread and back, which on a 2-core
    machine measured ~40% more polls per second."""

    async def run() -> Response:
        cur = await loop_connection.cursor()
        with loop_connection.using(cur):
            done = _response(scope, cur, work)
        return await _finished(done)

    return await _answered(run())


async def _finished(done: Response | fastroutes.Steps) -> Response:
    """The response, once the steps of an answer that has them have run on the event loop, a
    slice of about SLICE_SECONDS of CPU at a time, the loop serving the worker's other requests
    in between (in a thread, the same Python held the GIL against the loop: fastroutes.Steps)."""
    if isinstance(done, Response):
        return done
    until = time.thread_time() + SLICE_SECONDS
    for step in done:
        if step is not None:
            return Response(step, media_type="application/json")
        if time.thread_time() >= until:
            await asyncio.sleep(0)
            until = time.thread_time() + SLICE_SECONDS
    raise RuntimeError("an answer's steps ended without its body")


async def _answered(answer: Awaitable[Response]) -> Response:
    """The answer, an ApiError's response, or a 503 for a database that is down; FallThrough
    goes on (the route answers)."""
    try:
        return await answer
    except ApiError as exc:
        return exc.response()
    except fastroutes.FallThrough:
        raise
    except Exception as exc:
        return _database_down(exc)


def _response(scope: Scope, cur: psycopg.Cursor[Any], work: Work) -> Response | fastroutes.Steps:
    """The answer of `work` (or its steps, to run on the loop: _finished), or the error's: a
    failed authentication counted on the same cursor (api.throttle), before the 401 (or 429)
    goes out."""
    try:
        done = work(cur)
        return Response(done, media_type="application/json") if isinstance(done, bytes) else done
    except ApiError as exc:
        if not throttle.is_auth_failure(exc):
            raise
        limit = scope["app"].state.settings.api_auth_failures_per_minute
        raise throttle.on_cursor(cur, scope, exc, limit) from None


def _database_down(exc: Exception) -> Response:
    # Middleware sits outside the app's typed handlers: answer as api.errors would. The driver's
    # own errors come here too (psycopg's, from the connection: SQLAlchemy never sees this
    # one), not only SQLAlchemy's.
    if not is_database_down(exc):
        raise exc
    log.warning("database unavailable on the fast path: %s", type(exc).__name__)
    return database_unavailable().response()


async def _body(receive: Receive) -> bytes | None:
    """The whole request body (api.limits has bounded it already); None if the client left."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return bytes(body)


class LoopConnection:
    """The fast path's own connection and cursor: one per worker process, in autocommit.

    Polls on the event loop run one at a time, so one connection serves them all, without a
    pool checkout or the reset (and autocommit switching) a pooled connection needs around
    every use, and one cursor (it keeps its loaders: ~17 µs a poll). `connect` makes it with
    the API engine's options (statement timeout, application name) but outside its pool
    (api.app.loop_connect): the pool is sized for the requests holding a slot, and a first
    poll that waited for one of theirs stalled every fast request of the worker behind it
    until the pool timed out (a fresh worker under 40 bots: 503s, 20 s timeouts).

    Polls that find no connection wait together for one attempt, made in a thread (a database
    that does not answer must not stall the event loop), not one connection each. A broken one is
    dropped; the next poll connects again, and for a moment after a failed attempt polls are
    answered 503 at once rather than each trying again.
    """

    RETRY_AFTER_FAILURE = 0.25  # seconds

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]]) -> None:
        self._connect = connect
        self._held: psycopg.Cursor[Any] | None = None
        self._failed_at = -1e9
        self._connecting = LoopLocal(asyncio.Lock)

    async def cursor(self) -> psycopg.Cursor[Any]:
        if self._held is None:
            async with self._connecting.get():
                if self._held is None:  # else: another poll connected while this one waited
                    self._held = await self._open()
        return self._held

    async def _open(self) -> psycopg.Cursor[Any]:
        if time.monotonic() - self._failed_at < self.RETRY_AFTER_FAILURE:
            raise psycopg.OperationalError("the database was unreachable a moment ago")
        try:
            conn = await run_in_threadpool(self._connect)
        except Exception:
            self._failed_at = time.monotonic()
            raise
        conn.autocommit = True
        return conn.cursor()

    @contextmanager
    def using(self, cur: psycopg.Cursor[Any]) -> Iterator[None]:
        try:
            yield
        finally:
            if cur.connection.broken or cur.connection.closed:
                self.close()

    def close(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.connection.close()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            try:
                return value.decode("ascii")
            except UnicodeDecodeError:
                return "\x00"  # never a valid key: answered 401 like any other wrong one
    return None
