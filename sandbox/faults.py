"""Fault injection, switchable per host, deterministic under the seed.

Spec syntax (CLI `--faults`, config `faults`, `PUT /_sandbox/faults`)::

    HOST:KIND=VALUE[,KIND=VALUE...][;HOST:...]

HOST is a prefix name (`wb-statistics`, `allegro-api`, ...) or `*` (every
marketplace host; a host's own entry overrides `*` per kind). VALUE is a
probability in [0, 1] per request, except `gap` (seconds). Kinds:

=========  ===============================================================
429        answered 429 in the host's own shape (WB headers / Allegro body)
5xx        503 (WB problem body / Allegro error body)
slow       response delayed by `slow_seconds` (real time) then served
timeout    response delayed by `timeout_seconds` (real time), then 504
reset      connection dropped after the status line (no body)
down       the host is unreachable: in-process (`SandboxTransport`) a connect timeout after the
           request's connect timeout; over a socket no answer for `timeout_seconds`, then dropped
truncate   the JSON body is cut in half
revoke     allegro-api: the presented token (and its refresh) is revoked
reuse      allegro-auth: a successful refresh rotates, then the response is
           lost (reset), so the client retries with the old refresh token
dup        allegro-api: an event in an /order/events page is repeated
gap        allegro-api: event journal retention in seconds (events older
           than this expire before they are read); not a probability
=========  ===============================================================

Decisions use a per-host request counter hashed with the seed, so the same
request sequence sees the same faults.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from sandbox.hashing import u01

HOSTS = (
    "allegro-auth",
    "allegro-api",
    "wb-statistics",
    "wb-analytics",
    "wb-feedbacks",
    "wb-content",
    "wb-marketplace",
)
KINDS = ("429", "5xx", "slow", "timeout", "reset", "truncate", "revoke", "reuse", "dup", "gap", "down")
_PER_HOST_KINDS = {"revoke": {"allegro-api"}, "dup": {"allegro-api"}, "gap": {"allegro-api"}, "reuse": {"allegro-auth"}}


class FaultSpecError(ValueError):
    pass


@dataclass(frozen=True)
class FaultPlan:
    """Parsed spec: host -> kind -> value."""

    rules: dict[str, dict[str, float]] = field(default_factory=dict)

    def value(self, host: str, kind: str) -> float:
        own = self.rules.get(host, {})
        if kind in own:
            return own[kind]
        return self.rules.get("*", {}).get(kind, 0.0)

    def to_spec(self) -> str:
        parts = []
        for host, kinds in self.rules.items():
            body = ",".join(f"{k}={v:g}" for k, v in kinds.items())
            parts.append(f"{host}:{body}")
        return ";".join(parts)


def parse_faults(spec: str | None) -> FaultPlan:
    rules: dict[str, dict[str, float]] = {}
    for chunk in (spec or "").split(";"):
        chunk = chunk.strip()
        if not chunk:
            continue
        host, sep, body = chunk.partition(":")
        host = host.strip()
        if not sep or (host != "*" and host not in HOSTS):
            raise FaultSpecError(f"unknown host in fault spec: {host!r}")
        kinds = rules.setdefault(host, {})
        for item in body.split(","):
            kind, eq, raw = item.strip().partition("=")
            kinds[_check_kind(host, kind.strip())] = _check_value(kind.strip(), raw if eq else "")
    return FaultPlan(rules)


def _check_kind(host: str, kind: str) -> str:
    if kind not in KINDS:
        raise FaultSpecError(f"unknown fault kind: {kind!r}")
    allowed = _PER_HOST_KINDS.get(kind)
    if allowed is not None and host != "*" and host not in allowed:
        raise FaultSpecError(f"fault {kind!r} only applies to {sorted(allowed)}")
    return kind


def _check_value(kind: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise FaultSpecError(f"fault {kind!r} needs a number, got {raw!r}") from None
    if kind == "gap":
        if value <= 0:
            raise FaultSpecError("gap is a retention in seconds, > 0")
    elif not 0.0 <= value <= 1.0:
        raise FaultSpecError(f"fault {kind!r} probability must be in [0, 1]")
    return value


class FaultInjector:
    """Holds the current plan (switchable at run time) and rolls the dice."""

    def __init__(self, seed: int, spec: str | None = None) -> None:
        self.seed = seed
        self.plan = parse_faults(spec)
        self._counters: dict[str, int] = {}
        self._lock = threading.Lock()

    def set_spec(self, spec: str | None) -> FaultPlan:
        self.plan = parse_faults(spec)
        return self.plan

    def next_request(self, host: str) -> int:
        with self._lock:
            n = self._counters.get(host, 0)
            self._counters[host] = n + 1
            return n

    def roll(self, host: str, kind: str, request_no: int, sub: int = 0) -> bool:
        p = self.plan.value(host, kind)
        if p <= 0.0 or kind == "gap":
            return False
        salt = KINDS.index(kind) * 7919 + sub
        return u01(self.seed, _host_stream(host), request_no, salt) < p

    def event_retention(self) -> float | None:
        value = self.plan.value("allegro-api", "gap")
        return value or None


def _host_stream(host: str) -> int:
    return 0xFA000 + (HOSTS.index(host) if host in HOSTS else 99)
