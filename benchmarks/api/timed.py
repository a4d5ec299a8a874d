"""The API as served, with every request timed inside its worker (for benchmarks.api.tail).

    uvicorn benchmarks.api.timed:create_app --factory     (SP_TIMING_DIR=where to write)

Per request: its kind, when it started and ended (wall clock, so runs can be cut out), how
long the fast path's work took (the statement and the Python around it; for a batch poll, its
statement and key check: its pages are made after, by api.fastpath._finished) and how much CPU
the thread that ran it spent in it, and whether the documented route answered
it (a fall-through). Per worker: every moment its event loop woke up more than 2 ms late (a
probe sleeping 1 ms at a time: the loop was busy with something else, or the process was not
running), and every garbage collection with its duration. Written as one JSON file per worker
when it shuts down. Costs the worker a few percent of CPU (the probe): a diagnosis, not a
measurement of throughput.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import api.app
import api.routes.notifications
from api import fastroutes

PROBE_SECONDS = 0.001
LATE_SECONDS = 0.002


def kind_of(method: str, path: str) -> str:
    if path == "/api/v1/notifications" and method == "GET":
        return "poll"
    if path == "/api/v1/notifications/ack":
        return "ack"
    if path == "/api/v1/notifications/poll":
        return "batch"
    if path.endswith("/dashboard"):
        return "dashboard"
    if path.endswith("/orders"):
        return "orders"
    return "other"


class Recorder:
    def __init__(self) -> None:
        self.requests: list[tuple[Any, ...]] = []  # kind, start, end, work wall, work cpu, route
        self.late: list[tuple[float, float]] = []  # (when, how late) of the loop probe
        self.gcs: list[tuple[float, int, float]] = []  # (when, generation, seconds)
        self._gc_start = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.gcs.append((time.time(), info["generation"], time.perf_counter() - self._gc_start))

    async def probe(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(PROBE_SECONDS)
            late = time.perf_counter() - t0 - PROBE_SECONDS
            if late > LATE_SECONDS:
                self.late.append((time.time(), late))

    def dump(self, directory: Path) -> None:
        doc = {"pid": os.getpid(), "requests": self.requests, "late": self.late, "gcs": self.gcs}
        (directory / f"worker-{os.getpid()}.json").write_bytes(orjson.dumps(doc))


RECORDER = Recorder()


class Timed:
    """The app, each request timed from the moment the worker's loop starts on it to its last
    body byte handed to the server."""

    def __init__(self, app: ASGIApp, directory: Path) -> None:
        self.app, self.directory, self._probe = app, directory, None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, self._on_lifespan(send))
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self._probe is None:
            self._probe = asyncio.get_running_loop().create_task(RECORDER.probe())
        mark: dict[str, Any] = {"route": False}
        scope["sp_timing"] = mark
        start, wall0 = time.perf_counter(), time.time()

        async def timed_send(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                end = time.perf_counter()
                work = mark.get("work") or (None, None)
                kind = kind_of(scope["method"], scope["path"])
                RECORDER.requests.append((kind, wall0, wall0 + end - start, work[0], work[1], mark["route"]))

        await self.app(scope, receive, timed_send)

    def _on_lifespan(self, send: Send) -> Send:
        async def on(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                RECORDER.dump(self.directory)
            await send(message)

        return on


def _route_marker(inner: ASGIApp) -> ASGIApp:
    async def marked(scope: Scope, receive: Receive, send: Send) -> None:
        if "sp_timing" in scope:
            scope["sp_timing"]["route"] = True
        await inner(scope, receive, send)

    return marked


def create_app() -> ASGIApp:
    directory = Path(os.environ["SP_TIMING_DIR"])
    app = api.app.create_app()
    # The documented routes: a request reaching them fell through the fast path.
    app.router.middleware_stack = _route_marker(app.router.middleware_stack)
    _instrument_work()
    return Timed(app, directory)


def _instrument_work() -> None:
    """Time the fast path's work functions. Each request's work is tagged through a scope the
    wrapper finds in the calling frame's arguments: api.fastpath calls route.answer(cur,
    secret, **args) and _poll(*args, cur=cur) from a closure made per request."""
    fastroutes.ROUTES = tuple(dataclasses.replace(r, answer=_with_scope(r.answer)) for r in fastroutes.ROUTES)
    api.routes.notifications._poll = _with_scope(api.routes.notifications._poll)


def _with_scope(answer: Callable[..., bytes]) -> Callable[..., bytes]:
    def timed(*args: Any, **kw: Any) -> bytes:
        mark = _find_mark(sys._getframe(1))
        w0, c0 = time.perf_counter(), time.thread_time()
        try:
            return answer(*args, **kw)
        finally:
            if mark is not None:
                mark["work"] = (time.perf_counter() - w0, time.thread_time() - c0)

    return timed


def _find_mark(frame: Any) -> dict[str, Any] | None:
    # The closure `work(cur)` of api.fastpath is called by _response(scope, cur, work).
    for _ in range(4):
        if frame is None:
            return None
        scope = frame.f_locals.get("scope")
        if isinstance(scope, dict) and "sp_timing" in scope:
            return scope["sp_timing"]
        frame = frame.f_back
    return None
