"""Token buckets on the sandbox clock, keyed by (shop or client id, bucket).

WB (facts page + `x-wb-rate-limits` in the 2026-08-19 English specs): one
token refills every `interval` seconds up to `burst`. Allegro: 9000 requests
per minute per client id; exceeding blocks the client for a minute.
`scale` multiplies refill speed (tests/benchmarks); headers report sandbox
seconds after scaling.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    interval: float  # seconds per token
    burst: int
    penalty_4xx: int = 1  # WB marketplace: each 4xx counts as 10 requests


# Bucket name -> rate. Names are what the request log and tests refer to.
WB_RATES: dict[str, Rate] = {
    "statistics.orders": Rate(60.0, 10),  # Personal/Service token: 1/min, burst 10
    "statistics.sales": Rate(60.0, 1),  # 1/min, burst 1
    "analytics.stocks": Rate(20.0, 1),  # 3/min
    "analytics.order_feed": Rate(60.0, 1),  # 1/min
    "feedbacks": Rate(1 / 3, 6),  # 3/s, burst 6, category-wide
    "content": Rate(0.6, 5),  # 100/min, burst 5
    "marketplace": Rate(0.2, 20, penalty_4xx=10),  # 300/min, burst 20
}
# A Base token (facts page: "a plain Base token gets 1 per 3 hours on orders, 1 per 2 hours on
# sales", the feed "Base token: 1 per 3 hours", feedbacks "a Base token: 5 per hour"; bursts
# are not given: 1, and 5 for feedbacks, one hour's allowance). Other buckets as any token's.
WB_BASE_RATES: dict[str, Rate] = {
    "statistics.orders": Rate(3 * 3600.0, 1),
    "statistics.sales": Rate(2 * 3600.0, 1),
    "analytics.order_feed": Rate(3 * 3600.0, 1),
    "feedbacks": Rate(720.0, 5),
}


def wb_rate(bucket: str, kind: str = "personal") -> Rate:
    """The rate of a WB bucket for a token of that kind (sandbox.wb.tokens.TOKEN_KINDS)."""
    return WB_BASE_RATES.get(bucket, WB_RATES[bucket]) if kind == "base" else WB_RATES[bucket]


def wb_owner(shop: str, kind: str = "personal") -> str:
    """Buckets are per seller account and token type: a Base token has buckets of its own."""
    return shop if kind == "personal" else f"{shop}/{kind}"


ALLEGRO_RATE = Rate(60.0 / 9000.0, 9000)
ALLEGRO_BLOCK_SECONDS = 60.0


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after: float  # seconds until one token is available (0 if allowed)
    reset_after: float  # seconds until the bucket is full again
    limit: int


class _Bucket:
    __slots__ = ("tokens", "updated", "blocked_until")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens = tokens
        self.updated = now
        self.blocked_until = 0.0


class RateLimiter:
    def __init__(self, enabled: bool = True, scale: float = 1.0) -> None:
        self.enabled = enabled
        self.scale = scale
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        # Requests each bucket refused: limit violations by the client (injected 429s are not).
        self._refused: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def _interval(self, rate: Rate) -> float:
        return rate.interval / self.scale

    def _refill(self, key: tuple[str, str], rate: Rate, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(rate.burst), now)
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(float(rate.burst), bucket.tokens + elapsed / self._interval(rate))
        bucket.updated = now
        return bucket

    def take(self, owner: str, name: str, rate: Rate, now: float, block_on_empty: float = 0.0) -> Decision:
        """Take one token. `block_on_empty` (Allegro) blocks the owner that long."""
        if not self.enabled:
            return Decision(True, rate.burst, 0.0, 0.0, rate.burst)
        with self._lock:
            bucket = self._refill((owner, name), rate, now)
            if now < bucket.blocked_until:
                self._refused[(owner, name)] = self._refused.get((owner, name), 0) + 1
                return self._refusal(bucket, rate, bucket.blocked_until - now)
            if bucket.tokens >= 1.0 - 1e-6:  # float epoch seconds lose ~1e-7 s
                bucket.tokens = max(0.0, bucket.tokens - 1.0)
                return Decision(True, int(bucket.tokens), 0.0, self._reset(bucket, rate), rate.burst)
            self._refused[(owner, name)] = self._refused.get((owner, name), 0) + 1
            if block_on_empty:
                bucket.blocked_until = now + block_on_empty / self.scale
                return self._refusal(bucket, rate, block_on_empty / self.scale)
            wait = (1.0 - bucket.tokens) * self._interval(rate)
            return self._refusal(bucket, rate, wait)

    def charge(self, owner: str, name: str, rate: Rate, now: float, extra: int) -> None:
        """Extra cost after the fact (a WB marketplace 4xx counts as 10)."""
        if not self.enabled or extra <= 0:
            return
        with self._lock:
            bucket = self._refill((owner, name), rate, now)
            bucket.tokens = max(bucket.tokens - extra, -float(rate.burst))

    def _refusal(self, bucket: _Bucket, rate: Rate, wait: float) -> Decision:
        return Decision(False, 0, wait, max(wait, self._reset(bucket, rate)), rate.burst)

    def _reset(self, bucket: _Bucket, rate: Rate) -> float:
        return max(0.0, (rate.burst - bucket.tokens) * self._interval(rate))

    def refused(self) -> dict[tuple[str, str], int]:
        """(owner, bucket) -> requests refused since the start or the last `reset_all`."""
        with self._lock:
            return dict(self._refused)

    def reset_all(self) -> None:
        with self._lock:
            self._buckets.clear()
            self._refused.clear()


def seconds_header(value: float) -> str:
    """Whole seconds when they are whole-ish (real APIs send integers), else
    three decimals (only with a `scale` that makes waits sub-second). Rounded
    UP so a client waiting exactly this long is allowed."""
    if value <= 0:
        return "0"
    whole = math.ceil(value - 1e-9)
    if value >= 1.0 and abs(value - round(value)) < 1e-6:
        return str(round(value))
    if value >= 1.0:
        return str(whole)
    return f"{math.ceil(value * 1000) / 1000:.3f}"
