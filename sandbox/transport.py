"""`SandboxTransport`: httpx's ASGITransport, plus what a socket would do.

In-process there is no socket, so a dropped connection surfaces as the app's
exception and client timeouts never fire. This transport turns the sandbox's
`ConnectionDropped` into `httpx.RemoteProtocolError` (what httpx raises when
uvicorn drops the connection) and honours the request's read timeout
(`httpx.ReadTimeout`), and a host that is `down` times out connecting (`httpx.ConnectTimeout`),
so connector code sees the same errors both ways."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.middleware import IN_PROCESS, ConnectionDropped, HostUnreachable


class SandboxTransport(httpx.ASGITransport):
    def __init__(self, app: ASGIApp, **kw: Any) -> None:
        async def in_process(scope: Scope, receive: Receive, send: Send) -> None:
            await app({**scope, IN_PROCESS: True}, receive, send)

        super().__init__(app=in_process, **kw)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout") or {}
        timeout = timeouts.get("read")
        try:
            if timeout is None:
                return await super().handle_async_request(request)
            return await asyncio.wait_for(super().handle_async_request(request), timeout)
        except HostUnreachable:
            # What a socket does when nothing answers the SYN: wait out the connect timeout.
            await asyncio.sleep(timeouts.get("connect") or 0.0)
            raise httpx.ConnectTimeout("sandbox: connect timed out (host down)", request=request) from None
        except ConnectionDropped:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a complete response", request=request
            ) from None
        except TimeoutError:
            raise httpx.ReadTimeout("sandbox: read timed out", request=request) from None
