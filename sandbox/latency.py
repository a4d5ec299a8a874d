"""Per-request latency, per host: a real marketplace answers a listing page in ~150 ms.

Spec syntax (CLI `--latency`, config `latency`, `PUT /_sandbox/latency`)::

    HOST=MS[,HOST=MS...]        e.g. "allegro-api=150,wb-statistics=400"; "*=150": every host

Default off. A request waits its latency with `asyncio.sleep` before it is served, so a held
request never holds up another: parallel windows and fetches that overlap writes count as
they would against the real hosts. The sandbox counts the requests waiting at once (its
peak says how many a client really had in flight).
"""

from __future__ import annotations

import asyncio
import threading

from sandbox.faults import HOSTS

ANY = "*"
MAX_MS = 60_000.0


class LatencySpecError(ValueError):
    pass


def parse_latency(spec: str | None) -> dict[str, float]:
    """{host or "*": milliseconds}; an empty spec is no latency."""
    rules: dict[str, float] = {}
    for part in (spec or "").replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        host, sep, raw = part.partition("=")
        host = host.strip()
        if not sep or (host != ANY and host not in HOSTS):
            raise LatencySpecError(f"latency: expected HOST=MS with HOST one of *, {', '.join(HOSTS)}; got {part!r}")
        try:
            ms = float(raw)
        except ValueError:
            raise LatencySpecError(f"latency of {host}: not a number of milliseconds: {raw.strip()!r}") from None
        if not 0 <= ms <= MAX_MS:
            raise LatencySpecError(f"latency of {host}: {ms:g} ms is outside 0..{MAX_MS:g}")
        rules[host] = ms
    return rules


def to_spec(rules: dict[str, float]) -> str:
    return ",".join(f"{host}={ms:g}" for host, ms in rules.items())


class Latency:
    """The latency plan in force, and how many requests it holds at once (now and at most)."""

    def __init__(self, spec: str | None = None) -> None:
        self.rules = parse_latency(spec)
        self.held = 0
        self.peak_held = 0
        self._lock = threading.Lock()

    def set_spec(self, spec: str | None) -> dict[str, float]:
        self.rules = parse_latency(spec)
        with self._lock:
            self.peak_held = self.held
        return self.rules

    def seconds(self, host: str) -> float:
        return self.rules.get(host, self.rules.get(ANY, 0.0)) / 1000.0

    async def wait(self, host: str) -> None:
        delay = self.seconds(host)
        if delay <= 0:
            return
        with self._lock:
            self.held += 1
            self.peak_held = max(self.peak_held, self.held)
        try:
            await asyncio.sleep(delay)
        finally:
            with self._lock:
                self.held -= 1

    def report(self) -> dict[str, object]:
        return {"spec": to_spec(self.rules), "ms": dict(self.rules), "held": self.held, "peak_held": self.peak_held}
