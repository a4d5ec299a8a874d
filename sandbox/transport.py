"""`SandboxTransport`: httpx's ASGITransport, plus what a socket would do.

In-process there is no socket, so a dropped connection surfaces as the app's
exception and client timeouts never fire. This transport turns the sandbox's
`ConnectionDropped` into `httpx.RemoteProtocolError` (what httpx raises when
uvicorn drops the connection) and honours the request's read timeout
(`httpx.ReadTimeout`), so connector code sees the same errors both ways."""

from __future__ import annotations

import asyncio

import httpx

from sandbox.middleware import ConnectionDropped


class SandboxTransport(httpx.ASGITransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = (request.extensions.get("timeout") or {}).get("read")
        try:
            if timeout is None:
                return await super().handle_async_request(request)
            return await asyncio.wait_for(super().handle_async_request(request), timeout)
        except ConnectionDropped:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a complete response", request=request
            ) from None
        except TimeoutError:
            raise httpx.ReadTimeout("sandbox: read timed out", request=request) from None
