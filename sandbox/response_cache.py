"""An opt-in cache of listing bodies (`--cache-responses`, clock frozen): for benchmarks.

With the clock frozen (`--speed 0`) a listing's body is a pure function of the request and of
the world's state: the same WB statistics page or Allegro checkout-form page is generated
again, byte for byte, each time it is asked for. Generating it is the stand-in's cost, not
the product's (the real host's CPU is not on the client's machine), yet in a served
benchmark the sandbox runs on the same cores as the product. With this cache a first read
generates each body and keeps its bytes on disk; every later identical request is answered
with those bytes, so a benchmark can warm the cache with an untimed read and then time the
product against a host that costs it (almost) nothing but the latency it is set to.

What is cached: the bodies of 200 answers to WB statistics reads (`orders`, `sales`) and
Allegro checkout-form listings. The key holds the shop, the path, the query and the sandbox
time the body was generated for (WB statistics: their refresh time), plus the count of
operator merges, so a clock advance or a forced merge is never answered from an old body.
Everything else of a request runs as before: latency, auth, faults, rate limits, headers, the
request log. Nothing is cached unless asked for; `GET /_sandbox/response-cache` reports hits.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

CHUNK = 1 << 20  # bytes read per chunk of a cached body


class ResponseCache:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.hits = 0
        self.misses = 0
        self.stored_bytes = 0
        self._lock = threading.Lock()
        self._dir: Path | None = None
        if enabled:
            self._dir = Path(tempfile.mkdtemp(prefix="sandbox-responses-"))
            atexit.register(self.close)  # the bodies are this process's: none outlives it

    @staticmethod
    def key(*parts: Any) -> str:
        return hashlib.sha256(repr(parts).encode()).hexdigest()

    def _path(self, key: str) -> Path:
        assert self._dir is not None
        return self._dir / key

    def lookup(self, key: str) -> Path | None:
        """The file holding this body, counted as a hit; None (a miss) if not cached."""
        path = self._path(key)
        found = path.exists()
        with self._lock:
            if found:
                self.hits += 1
            else:
                self.misses += 1
        return path if found else None

    def chunks(self, key: str, generate: Iterable[bytes]) -> Iterator[bytes]:
        """A streamed body: the cached bytes, or `generate`'s, kept as they pass (published only
        once the whole body went out: a client gone mid-body leaves nothing behind)."""
        path = self.lookup(key)
        if path is not None:
            yield from _read(path)
            return
        tmp = self._path(f"{key}.{threading.get_ident()}.part")
        size = 0
        with open(tmp, "wb") as out:
            try:
                for chunk in generate:
                    out.write(chunk)
                    size += len(chunk)
                    yield chunk
            except BaseException:
                out.close()
                tmp.unlink(missing_ok=True)
                raise
        self._publish(tmp, key, size)

    def body(self, key: str, generate: Any) -> bytes:
        """A whole body: the cached bytes, or `generate()`'s, kept."""
        path = self.lookup(key)
        if path is not None:
            return path.read_bytes()
        data: bytes = generate()
        tmp = self._path(f"{key}.{threading.get_ident()}.part")
        tmp.write_bytes(data)
        self._publish(tmp, key, len(data))
        return data

    def _publish(self, tmp: Path, key: str, size: int) -> None:
        os.replace(tmp, self._path(key))  # atomic: a concurrent reader sees all of it or nothing
        with self._lock:
            self.stored_bytes += size

    def report(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "hits": self.hits, "misses": self.misses, "stored_bytes": self.stored_bytes}

    def close(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)


def _read(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk
