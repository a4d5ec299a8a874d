"""ASGI middleware for marketplace hosts: request log and fault injection.

Runs outside the routes so faults can do what handlers cannot: drop the
connection after the status line (reset), cut a body (truncate), hold a
response (slow/timeout). The handler leaves `token_id`/`shop` (never the
token) and an optional `reset` request in `scope["sandbox_ctx"]`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.faults import HOSTS
from sandbox.requestlog import redact_query
from sandbox.responses import allegro_error, wb_problem
from sandbox.world import World


class ConnectionDropped(ConnectionResetError):
    """Raised inside the app to drop the connection mid-response."""


class HostUnreachable(ConnectionDropped):
    """The `down` fault in-process: no connection could be made (SandboxTransport: ConnectTimeout)."""


IN_PROCESS = "sandbox.in_process"  # scope key SandboxTransport sets: no socket in between


def host_of(path: str) -> tuple[str | None, str]:
    parts = path.split("/", 2)
    if len(parts) >= 2 and parts[1] in HOSTS:
        return parts[1], "/" + (parts[2] if len(parts) > 2 else "")
    return None, path


class MarketplaceMiddleware:
    def __init__(self, app: ASGIApp, world: World) -> None:
        self.app = app
        self.world = world

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host, sub_path = host_of(scope["path"])
        if host is None:
            await self.app(scope, receive, send)
            return
        # Arrival time: what rate-limit proofs need (a streamed page ends later).
        ctx: dict[str, Any] = {"token_id": None, "shop": None, "fault": None, "reset": False, "status": 0}
        ctx["at"] = self.world.now()
        scope["sandbox_ctx"] = ctx
        try:
            await self._serve(host, scope, receive, send, ctx)
        finally:
            self._log(host, sub_path, scope, ctx)

    async def _serve(self, host: str, scope: Scope, receive: Receive, send: Send, ctx: dict[str, Any]) -> None:
        faults, world = self.world.faults, self.world
        n = faults.next_request(host)
        if faults.roll(host, "down", n):
            ctx["fault"] = "down"
            if scope.get(IN_PROCESS):
                raise HostUnreachable(f"sandbox fault: {host} is down")
            await asyncio.sleep(world.config.timeout_seconds)  # over a socket: nothing answers
            await _drop(send, ctx)
        if faults.roll(host, "reset", n):
            ctx["fault"] = "reset"
            await _drop(send, ctx)
        if faults.roll(host, "timeout", n):
            ctx["fault"] = "timeout"
            await asyncio.sleep(world.config.timeout_seconds)
            await _send_response(fault_response(host, 504, world.now()), scope, receive, send, ctx)
            return
        if faults.roll(host, "slow", n):
            ctx["fault"] = "slow"
            await asyncio.sleep(world.config.slow_seconds)
        for kind, status in (("429", 429), ("5xx", 503)):
            if faults.roll(host, kind, n):
                ctx["fault"] = kind
                await _send_response(fault_response(host, status, world.now()), scope, receive, send, ctx)
                return
        await world.latency.wait(host)  # asyncio.sleep: other requests go on meanwhile
        ctx["request_no"] = n
        truncate = faults.roll(host, "truncate", n)
        if truncate:
            ctx["fault"] = "truncate"
        await self.app(scope, receive, _wrap_send(send, ctx, truncate))

    def _log(self, host: str, sub_path: str, scope: Scope, ctx: dict[str, Any]) -> None:
        pairs: list[tuple[str, str]] = []
        if host != "allegro-auth":  # its query strings are refused anyway; never log them
            from urllib.parse import parse_qsl

            pairs = parse_qsl(scope.get("query_string", b"").decode(), keep_blank_values=True)
        self.world.log.add(
            at=ctx["at"],
            host=host,
            method=scope["method"],
            path=sub_path,
            query=redact_query(pairs),
            token_id=ctx["token_id"],
            shop=ctx["shop"],
            status=ctx["status"],
            fault=ctx["fault"],
        )


def fault_response(host: str, status: int, now: float) -> Response:
    if host.startswith("wb-"):
        if status == 429:
            headers = {"X-Ratelimit-Retry": "1", "X-Ratelimit-Limit": "1", "X-Ratelimit-Reset": "1"}
            return wb_problem(429, "too many requests", "Limited by sandbox fault", now, host, headers)
        return wb_problem(status, "service unavailable", "sandbox fault", now, host)
    if status == 429:
        return allegro_error(429, "TooManyRequestsException", "Too many requests")
    return allegro_error(status, "ServiceUnavailable", "Service temporarily unavailable")


async def _send_response(response: Response, scope: Scope, receive: Receive, send: Send, ctx: dict[str, Any]) -> None:
    await response(scope, receive, _wrap_send(send, ctx, False))


async def _drop(send: Send, ctx: dict[str, Any]) -> None:
    ctx["status"] = 0
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
        }
    )
    raise ConnectionDropped("sandbox fault: connection reset")


def _wrap_send(send: Send, ctx: dict[str, Any], truncate: bool) -> Send:
    held: dict[str, Message] = {}
    state = {"done": False}

    async def wrapped(message: Message) -> None:
        if state["done"]:
            return
        if message["type"] == "http.response.start":
            ctx["status"] = message["status"]
            if ctx.get("reset"):
                ctx["fault"] = ctx["fault"] or "reuse"
                ctx["status"] = 0
                await _drop(send, ctx)
            if truncate:
                held["start"] = message
                return
            await send(message)
            return
        if message["type"] == "http.response.body" and truncate and "start" in held:
            await _send_truncated(send, held.pop("start"), message)
            state["done"] = True
            return
        await send(message)

    return wrapped


async def _send_truncated(send: Send, start: Message, body_msg: Message) -> None:
    body = body_msg.get("body", b"")
    cut = body[: max(1, len(body) // 2)]
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    if not body_msg.get("more_body", False):
        headers.append((b"content-length", str(len(cut)).encode()))
    await send({**start, "headers": headers})
    await send({"type": "http.response.body", "body": cut, "more_body": False})
