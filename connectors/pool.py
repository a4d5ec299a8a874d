"""httpx's transport for a long-lived host client, with httpcore's per-request pool scan cheaper.

httpcore (1.0.9) walks every pooled connection of a host on each request and on each
response's close, and asks each idle one whether the server has closed it: is its socket
readable? The question goes through anyio's typed attributes, which build a dict of the
socket's attributes on every call, with a `getpeername()` system call, before the one `poll()`
that answers it. A batch run keeps 35-50 connections per host (50 shops at once), so that was
8-9% of its CPU (benchmarks/scale/shop_cpu, py-spy). The streams here keep the raw socket from
the connect and answer with the same `poll()` on it: the same answer, the same check, cheaper.

Only that one question is answered differently; everything else goes to httpcore's own
streams and backend (the network backend is httpcore's documented extension point). And the
pool's assignment pass counts its connections once instead of once per idle connection (`_Pool`).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx
from httpcore._utils import is_socket_readable

SocketOption = Any  # httpcore's socket options: tuples for setsockopt
# The httpcore whose assignment pass `_Pool` copies (another version keeps its own).
_POOL_COPIED_FROM = "1.0.9"


class _Stream(httpcore.AsyncNetworkStream):
    """httpcore's stream, with "is_readable" answered from the socket it was connected on."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        # TLS runs over the same socket: httpcore asks the raw socket too.
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._socket is not None:
            return is_socket_readable(self._socket)
        return self._inner.get_extra_info(info)


class _Backend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, its TCP streams wrapped in `_Stream`."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _Stream(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[SocketOption] | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _Pool(httpcore.AsyncConnectionPool):
    """httpcore 1.0.9's pool, its assignment pass linear instead of quadratic.

    The pass (on every request and every response's close) asked, for each idle connection,
    whether the pool held more than `max_keepalive_connections` by building a list over all
    connections (`len([c.is_idle() for c in connections])`, httpcore's own code, which counts
    every connection, not the idle ones): 7% of a batch run's CPU at 35-50 connections a host.
    Here that count is `len(self._connections)`, the same number, so the pool behaves exactly
    as httpcore's (its eviction quirk included; encode/httpcore#1035 would change both).
    Used only on the httpcore version it was copied from."""

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        closing_connections = []
        for connection in list(self._connections):
            if connection.is_closed():
                self._connections.remove(connection)
            elif connection.has_expired() or (
                connection.is_idle() and len(self._connections) > self._max_keepalive_connections
            ):  # expired, or an idle one over the keep-alive count (httpcore's two branches)
                self._connections.remove(connection)
                closing_connections.append(connection)

        # Unchanged from httpcore: assign queued requests to connections.
        queued_requests = [request for request in self._requests if request.is_queued()]
        for pool_request in queued_requests:
            origin = pool_request.request.url.origin
            available_connections = [
                connection
                for connection in self._connections
                if connection.can_handle_request(origin) and connection.is_available()
            ]
            idle_connections = [connection for connection in self._connections if connection.is_idle()]
            if available_connections:
                pool_request.assign_to_connection(available_connections[0])
            elif len(self._connections) < self._max_connections:
                connection = self.create_connection(origin)
                self._connections.append(connection)
                pool_request.assign_to_connection(connection)
            elif idle_connections:
                connection = idle_connections[0]
                self._connections.remove(connection)
                closing_connections.append(connection)
                connection = self.create_connection(origin)
                self._connections.append(connection)
                pool_request.assign_to_connection(connection)
        return closing_connections


def speed_up_client(client: httpx.AsyncClient) -> None:
    """A client httpx made (its transport, and its proxies' from HTTP(S)_PROXY, as httpx reads
    them for a client given no transport): its direct transport on the cheaper streams. The
    proxies' transports are left as they are (their pools are httpcore's proxy pools)."""
    transport = client._transport  # noqa: SLF001 - httpx takes no network backend for its own transport
    if isinstance(transport, httpx.AsyncHTTPTransport):
        speed_up(transport)


def speed_up(transport: httpx.AsyncHTTPTransport) -> None:
    """Its pool on the cheaper streams, in place. httpx takes no network backend, so the pool's
    is swapped: checked here, so an httpx or httpcore that changed fails loudly."""
    pool = transport._pool  # noqa: SLF001 - httpx exposes no network_backend argument
    if type(pool) is not httpcore.AsyncConnectionPool or not hasattr(pool, "_network_backend"):
        raise RuntimeError("httpx's transport no longer holds an httpcore connection pool as expected")
    pool._network_backend = _Backend(pool._network_backend)  # noqa: SLF001
    if httpcore.__version__ == _POOL_COPIED_FROM:
        pool.__class__ = _Pool  # the same pool, only its assignment pass replaced
