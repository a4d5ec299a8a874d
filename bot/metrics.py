"""Delivery metrics, logged as one line every so often: sent, retried (429s), failed, skipped,
redelivered items recognised, and the lag from a notification's creation to its send."""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field

log = logging.getLogger("sellerpulse.bot.delivery")

LAG_SAMPLES = 20_000


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


@dataclass
class DeliveryMetrics:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    recognised: int = 0  # items redelivered by the API and found in the records: not sent twice
    blocked: int = 0
    lags: deque[float] = field(default_factory=lambda: deque(maxlen=LAG_SAMPLES))
    started: float = field(default_factory=time.monotonic)

    def count_retry(self) -> None:
        self.retried += 1

    def lag(self, seconds: float) -> None:
        self.lags.append(max(0.0, seconds))

    def line(self) -> str:
        lags = list(self.lags)
        return (
            f"delivery: sent={self.sent} retried={self.retried} failed={self.failed} skipped={self.skipped} "
            f"recognised={self.recognised} blocked={self.blocked} "
            f"lag_s p50={percentile(lags, 50):.2f} p95={percentile(lags, 95):.2f} max={max(lags, default=0):.2f}"
        )

    def log(self) -> None:
        log.info("%s", self.line())
