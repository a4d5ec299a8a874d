"""The sandbox clock: sandbox time = start + offset + real elapsed × speed.

`speed=0` freezes it (the tests' default: time moves only by `advance`), so
tests never sleep; `advance(seconds)` also drives rate-limit refills, token
expiry, device-code expiry and the scenario's live orders."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

from sandbox.timefmt import to_dt, to_epoch


class SandboxClock:
    def __init__(
        self,
        start: datetime,
        speed: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._start = to_epoch(start)
        self._speed = speed
        self._monotonic = monotonic
        self._real0 = monotonic()
        self._offset = 0.0
        self._lock = threading.Lock()

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def start_epoch(self) -> float:
        return self._start

    def epoch(self) -> float:
        """Sandbox time as float UTC epoch seconds."""
        with self._lock:
            return self._start + self._offset + (self._monotonic() - self._real0) * self._speed

    def now(self) -> datetime:
        return to_dt(self.epoch())

    def advance(self, seconds: float) -> float:
        """Move sandbox time forward (never back: the world only grows)."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._offset += seconds
        return self.epoch()
