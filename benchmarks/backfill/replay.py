"""Record the sandbox's responses once, replay them byte for byte.

The pipeline's requests are deterministic (a fixed sandbox clock, cursors from the data), so
a second run asks exactly what the first one asked and the marketplace's cost is left out.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx

DONE = "COMPLETE"


def _key(request: httpx.Request) -> str:
    query = "&".join(sorted(str(request.url.query, "ascii").split("&")))
    digest = hashlib.sha256(f"{request.method} {request.url.path}?{query}".encode())
    digest.update(request.content or b"")
    return digest.hexdigest()


def complete(cache: Path) -> bool:
    return (cache / DONE).exists()


class RecordingTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, cache: Path) -> None:
        self.inner, self.cache = inner, cache
        cache.mkdir(parents=True, exist_ok=True)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        key = _key(request)
        (self.cache / f"{key}.body").write_bytes(body)
        meta = {"status": response.status_code, "headers": dict(response.headers)}
        (self.cache / f"{key}.meta").write_text(json.dumps(meta))
        return httpx.Response(response.status_code, headers=response.headers, content=body, request=request)

    def finish(self) -> None:
        (self.cache / DONE).write_text("ok")


class _FileChunks(httpx.AsyncByteStream):
    """A recorded body read from disk in network-sized chunks, as a socket delivers it (the
    client decodes large bodies as they arrive: a body handed over whole would not show it)."""

    def __init__(self, path: Path, size: int = 1 << 16) -> None:
        self.path, self.size = path, size

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        with self.path.open("rb") as body:
            while chunk := body.read(self.size):
                yield chunk


class ReplayTransport(httpx.AsyncBaseTransport):
    def __init__(self, cache: Path) -> None:
        self.cache = cache

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = _key(request)
        meta_path = self.cache / f"{key}.meta"
        if not meta_path.exists():
            raise RuntimeError(f"not recorded: {request.method} {request.url.path}?{request.url.query.decode()}")
        meta = json.loads(meta_path.read_text())
        headers = {k: v for k, v in meta["headers"].items() if k.lower() not in {"content-length", "content-encoding"}}
        return httpx.Response(
            meta["status"], headers=headers, stream=_FileChunks(self.cache / f"{key}.body"), request=request
        )
