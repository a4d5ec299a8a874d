"""connectors.pool: the host clients' transport keeps connections alive, and still notices a
connection the server closed while it sat idle (the check its streams answer themselves)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from connectors.http import Call, HostClient
from connectors.pool import _Pool, _Stream, speed_up


class Server:
    """A bare HTTP/1.1 server on a local port: keep-alive answers, counting its connections;
    `/bye` answers, then closes the connection without saying so (no `Connection: close`)."""

    def __init__(self, hold: int = 0) -> None:
        self.connections = 0
        self.closed = asyncio.Event()
        # `/hold` answers once `hold` of them are waiting: that many connections at once.
        self.hold, self.waiting, self.all_here = hold, 0, asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                path = head.split(b" ", 2)[1]
                if path == b"/hold":
                    self.waiting += 1
                    if self.waiting >= self.hold:
                        self.all_here.set()
                    await self.all_here.wait()
                body = b'{"ok": true}'
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
                writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
                if path == b"/bye":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()
        await writer.wait_closed()
        self.closed.set()


@asynccontextmanager
async def serving(hold: int = 0) -> AsyncIterator[tuple[Server, str]]:
    """In the test's own event loop (a fixture's may be another)."""
    state = Server(hold)
    srv = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    async with srv:
        yield state, f"http://127.0.0.1:{port}"


def host_transport(limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    transport = httpx.AsyncHTTPTransport(limits=limits)
    speed_up(transport)
    return transport


async def test_connections_are_kept_and_a_server_close_is_noticed() -> None:
    # Kept alive for a minute: only the socket check can tell the connection is gone sooner.
    transport = host_transport(httpx.Limits(max_connections=4, keepalive_expiry=60))
    async with serving() as (state, url), httpx.AsyncClient(base_url=url, transport=transport) as client:
        for _ in range(3):
            assert (await client.get("/a")).json() == {"ok": True}
        assert state.connections == 1  # kept alive, reused

        await client.get("/bye")  # the server closes the connection once it has answered
        await asyncio.wait_for(state.closed.wait(), 10)
        pool = transport._pool
        assert all(isinstance(c._connection._network_stream, _Stream) for c in pool.connections)
        # The close reaches the client's socket: the idle connection is seen as expired (its
        # socket readable) and replaced, instead of a request sent on a dead connection.
        deadline = time.monotonic() + 10
        while not all(c.has_expired() for c in pool.connections):
            assert time.monotonic() < deadline, "the server's close was never noticed"
            await asyncio.sleep(0.01)
        assert (await client.get("/a")).json() == {"ok": True}
        assert state.connections == 2


async def test_host_clients_use_it() -> None:
    async with serving() as (state, url), HostClient(url, name="test") as host:
        for _ in range(2):
            body, _ = await host.send(Call("GET", "/a"))
            assert body == {"ok": True}
        assert state.connections == 1
        assert isinstance(host._client._transport._pool, _Pool)  # made by httpx, sped up in place


async def _pool_trace(transport: httpx.AsyncHTTPTransport) -> list[tuple[int, int]]:
    """(connections the server saw, connections in the pool) after each step of a burst."""
    trace = []
    async with serving(hold=3) as (state, url), httpx.AsyncClient(base_url=url, transport=transport) as client:
        await asyncio.gather(*(client.get("/hold") for _ in range(3)))  # three connections at once
        trace.append((state.connections, len(transport._pool.connections)))
        for _ in range(3):
            await client.get("/a")
            trace.append((state.connections, len(transport._pool.connections)))
    return trace


async def test_the_pool_keeps_and_evicts_connections_as_httpcores_does() -> None:
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=1, keepalive_expiry=60)
    ours = host_transport(limits)
    assert isinstance(ours._pool, _Pool)
    assert await _pool_trace(ours) == await _pool_trace(httpx.AsyncHTTPTransport(limits=limits))


async def test_an_operator_behind_a_proxy_reaches_the_marketplace_through_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # HTTP(S)_PROXY from the environment, as httpx honours it for a client of its own making.
    lines: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lines.append(await reader.readline())
        while await reader.readline() not in (b"\r\n", b""):
            pass
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{port}")
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    async with server, HostClient("http://marketplace.invalid", name="marketplace") as client:
        body, _ = await client.send(Call("GET", "/api/v1/supplier/sales"))
    assert body == {}
    assert lines == [b"GET http://marketplace.invalid/api/v1/supplier/sales HTTP/1.1\r\n"]
