"""Telegram's flood limits as token buckets, and operator-made 429 storms.

Documented limits (Bot FAQ): about one message per second in one chat (short bursts pass),
no more than 30 messages per second overall, at most 20 messages per minute in one group.
Only sends (sendMessage, sendPhoto) count here. A refused request is not accepted at all;
`retry_after` is whole seconds, as Telegram sends it.

`scale` runs the stand-in's clock faster (benchmarks): every rate is multiplied by it, and
retry_after stays in Telegram seconds (a bot talking to a scaled stand-in divides by it).
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FloodLimits:
    per_chat_rate: float = 1.0  # messages per second in a private chat
    per_chat_burst: float = 3.0
    global_rate: float = 30.0
    global_burst: float = 30.0
    group_rate: float = 20.0 / 60.0
    group_burst: float = 20.0


@dataclass
class _Bucket:
    rate: float
    capacity: float
    tokens: float
    at: float

    def wait(self, now: float) -> float:
        """Seconds until one token is there (0: now)."""
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


@dataclass
class Storm:
    """The next `requests` sends (or every send until `until`) answer 429, with `probability`."""

    requests: int = 0
    until: float = 0.0
    retry_after: int = 1
    probability: float = 1.0


@dataclass
class FloodControl:
    limits: FloodLimits = field(default_factory=FloodLimits)
    scale: float = 1.0
    enabled: bool = True
    seed: int = 1
    clock: object = time.monotonic

    def __post_init__(self) -> None:
        self._buckets: dict[object, _Bucket] = {}
        self._storm = Storm()
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self.refused = 0

    def storm(self, *, requests: int = 0, seconds: float = 0.0, retry_after: int = 1, probability: float = 1.0) -> None:
        now = self.clock()  # type: ignore[operator]
        until = now + seconds / self.scale if seconds else 0.0
        self._storm = Storm(requests=requests, until=until, retry_after=max(1, retry_after), probability=probability)

    def calm(self) -> None:
        self._storm = Storm()

    def _bucket(self, key: object, rate: float, burst: float, now: float) -> _Bucket:
        found = self._buckets.get(key)
        if found is None:
            found = self._buckets[key] = _Bucket(rate * self.scale, burst, burst, now)
        return found

    def check(self, chat_id: int) -> int | None:
        """None: accepted (its tokens taken); else the retry_after to answer with."""
        with self._lock:
            now = self.clock()  # type: ignore[operator]
            storm = self._storm
            if (storm.requests > 0 or storm.until > now) and self._rng.random() < storm.probability:
                if storm.requests > 0:
                    storm.requests -= 1
                self.refused += 1
                return storm.retry_after
            if not self.enabled:
                return None
            lim = self.limits
            group = chat_id < 0
            buckets = [
                self._bucket("global", lim.global_rate, lim.global_burst, now),
                self._bucket(
                    ("chat", chat_id),
                    lim.group_rate if group else lim.per_chat_rate,
                    lim.group_burst if group else lim.per_chat_burst,
                    now,
                ),
            ]
            wait = max(b.wait(now) for b in buckets)
            if wait > 0:
                self.refused += 1
                # In Telegram seconds (the scaled clock), whole and at least one.
                return max(1, math.ceil(wait * self.scale))
            for b in buckets:
                b.tokens -= 1
            return None
