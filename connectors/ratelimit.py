"""Proactive rate limiting: one token bucket per (credential, API category).

Clients ask a :class:`BucketBackend` for the bucket of a credential and category and
hold the result as a :class:`Bucket`. Where the buckets live is the backend's business:

* :class:`BucketRegistry` (the connectors' default): in this process's memory, keyed by
  a keyed hash of the credential, so every client and caller in the process that uses
  the same token shares one bucket. Right for connectors used on their own.
* ``storage.ratelimit.PgBucketBackend`` (the product's default, wired in
  ``tasks.clients``): one row per bucket in PostgreSQL, so every worker on every machine
  shares it (architecture invariant 9: Allegro's 9000/min belong to the app's client id).

A backend never holds the credential itself. A 429 that names a retry time pauses the
whole bucket (``pause_for``), so other callers wait too instead of burning requests that
WB counts against us.

The in-process bucket reserves a slot under a thread lock and sleeps outside it, so
callers queue in arrival order and it works across event loops (Prefect may run tasks in
several threads).

A slot is a start time, but a request leaves when its event loop gets to it: a busy loop
or a descheduled process wakes a sleeper late, and a request sent late reaches the
marketplace closer than one interval to the next caller's, sent on time: a 429 although
every slot kept the limit. So every slot is planned with room for `Rate.tolerance` of
lateness (:func:`take`), and a caller that finds itself later than that takes a new slot
instead of sending (:func:`start_in_slot`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields, replace
from typing import Protocol

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

_FINGERPRINT_KEY = os.urandom(16)  # per process: fingerprints cannot be looked up offline


def fingerprint(secret: str) -> str:
    """Short, non-reversible id of a credential, safe to use as a key or in logs."""
    return hashlib.blake2b(secret.encode(), key=_FINGERPRINT_KEY, digest_size=8).hexdigest()


@dataclass(frozen=True)
class Rate:
    """`per_second` steady rate with a `burst` of back-to-back requests.

    `tolerance`: seconds a request may start after its slot and still keep the limit. Slots
    are planned with room for it (the burst is `per_second * tolerance` smaller; a one-token
    bucket spaces its slots that much further apart), and a caller later than that takes a
    new slot. 0: exact slots, and lateness is not checked (fake clocks in tests).
    """

    per_second: float
    burst: int = 1
    tolerance: float = 0.0

    @classmethod
    def per_minute(cls, n: float, burst: int = 1) -> Rate:
        return cls(n / 60.0, burst)

    def with_tolerance(self, seconds: float) -> Rate:
        """This rate with room for `seconds` of lateness, at most what half the burst lasts (the
        rest of the burst is kept: a tolerance as long as the burst would leave none)."""
        return replace(self, tolerance=max(0.0, min(seconds, self.burst / (2 * self.per_second))))

    @property
    def ceiling(self) -> float:
        """The most tokens a slot may leave for the ones after it (see :func:`take`)."""
        return self.burst - self.per_second * self.tolerance

    def excess(self, starts: list[float]) -> float:
        """How far a log of request start times broke this limit: the most requests in any
        interval beyond `burst + per_second * its length` (<= 0: the limit held throughout)."""
        times = sorted(starts)
        if not times:
            return float("-inf")
        base = times[0]  # small numbers: epoch seconds times a rate lose precision
        worst = best = float("-inf")
        for j, t in enumerate(times):
            # Window [t_i, t_j]: (j - i + 1) - burst - rate * (t_j - t_i); best = max over i <= j.
            best = max(best, self.per_second * (t - base) - j)
            worst = max(worst, (j + 1) - self.per_second * (t - base) + best - self.burst)
        return worst


@dataclass(frozen=True)
class RateLimits:
    """Documented limits per API category (see marketplace-facts.md); override for tests."""

    wb_statistics: Rate = Rate.per_minute(1, 1)
    wb_analytics: Rate = Rate.per_minute(3, 1)
    # The order feed is limited apart from the rest of analytics: 1 request/min per account.
    wb_order_feed: Rate = Rate.per_minute(1, 1)
    wb_feedbacks: Rate = Rate(3.0, 6)
    wb_content: Rate = Rate.per_minute(100, 5)
    wb_marketplace: Rate = Rate.per_minute(300, 20)
    allegro_api: Rate = Rate.per_minute(9000, 150)
    allegro_auth: Rate = Rate.per_minute(60, 10)
    # How late a request may leave after its slot (a busy event loop, a descheduled worker, a
    # round trip to the shared bucket, a wait in the host's queue) and still keep every limit:
    # `send_tolerance` real seconds (not scaled: lateness is the machine's), or that share of
    # the category's interval if longer (a one-per-minute bucket: 3 s, its slots 63 s apart),
    # at most half its burst's length (Rate.with_tolerance).
    send_tolerance: float = 0.5
    send_tolerance_share: float = 0.05
    # True: no proactive waiting at all (benchmarks against a sandbox with limits off).
    disabled: bool = False

    def for_category(self, category: str) -> Rate:
        """The category's rate with room for lateness (a rate given with a tolerance keeps it)."""
        rate: Rate = getattr(self, category)
        if rate.tolerance:
            return rate
        return rate.with_tolerance(max(self.send_tolerance, self.send_tolerance_share / rate.per_second))

    @classmethod
    def unlimited(cls) -> RateLimits:
        return cls(disabled=True)

    def scaled(self, factor: float) -> RateLimits:
        """Every rate `factor` times faster, bursts as they are: against a sandbox whose buckets
        refill as much faster (`--rate-limit-scale`), the ratio of every limit is kept."""
        rates = {f.name: getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), Rate)}
        return replace(self, **{k: replace(r, per_second=r.per_second * factor) for k, r in rates.items()})


def take(level: float, n: float, rate: Rate) -> tuple[float, float]:
    """One slot's arithmetic: (tokens left, seconds after now until the slot), where `level`
    is the bucket's tokens now (refilled up to the burst; below 0 while others' slots are
    ahead) and `n` the tokens the request costs. storage.ratelimit does the same in SQL.

    The slot is when the level reaches `n`. A request in it may leave up to `rate.tolerance`
    late, and the marketplace refills while it has not: as if the slot were that much later
    for the next one. So the level after a slot is at most `rate.ceiling` less its cost; the
    next slot is then `tolerance` further off when the bucket was full, and no later when
    callers queue (their slots are an interval apart anyway). Any window of sends then holds
    at most `burst + per_second * its length` requests, sent up to `tolerance` late.
    """
    wait = max(0.0, n - level) / rate.per_second
    left = min(max(level, n), rate.ceiling) - n - max(0.0, n - level)
    return left, wait


@dataclass(frozen=True)
class Slot:
    """When a request may start, on the caller's clock: sleep until `at`; it is late from
    `due` on (`due <= at`: a shared bucket's round trip leaves the server's time uncertain
    by as much, and a late start must never be taken for an early one)."""

    at: float
    due: float


# A caller found late takes a new slot, at most this many times in a row: a loop that is late
# every time sends anyway (and meets the reactive path if it was too close).
MAX_SLOTS = 3


async def start_in_slot(reserve: Callable[[], Awaitable[Slot]], rate: Rate, *, clock: Clock, sleep: Sleep) -> int:
    """Take a slot, wait for it, and return once the request may leave (how many slots it took).

    Woken later than `rate.tolerance` after its slot, the caller takes a new one: sent now, it
    could reach the marketplace less than an interval before the next caller's, sent on time.
    """
    for taken in range(1, MAX_SLOTS + 1):
        slot = await reserve()
        delay = slot.at - clock()
        if delay > 0:
            await sleep(delay)
        late = clock() - slot.due
        if rate.tolerance <= 0 or late <= rate.tolerance:
            return taken
        log.debug("rate bucket: woken %.3f s after the slot; taking a new one", late)
    # The marketplace may refuse it (and the reactive path wait): the machine is overloaded.
    log.warning("rate bucket: %d slots in a row missed by over %.3f s; sending late", MAX_SLOTS, rate.tolerance)
    return MAX_SLOTS


class Bucket(Protocol):
    """One token bucket as a client uses it, wherever its state lives.

    `pause_for` and `charge` are called from synchronous code on the request path: they
    must not block on I/O (a shared backend records them and writes them behind).
    """

    rate: Rate

    async def acquire(self, sleep: Sleep = ...) -> None:
        """Return when one request may start (waiting with `sleep` if it must)."""

    def pause_for(self, seconds: float) -> None:
        """Nobody may start a request for `seconds` (a 429 said so); the burst is spent."""

    def charge(self, tokens: float) -> None:
        """Spend extra tokens after the fact (WB marketplace counts each 4xx as 10 requests)."""


class BucketBackend(Protocol):
    """Where buckets live; the same (credential, category) always gives the same bucket."""

    def bucket(self, credential: str, category: str, rate: Rate) -> Bucket: ...


class TokenBucket:
    """Token bucket with FIFO reservations: `acquire` takes a token or waits its turn."""

    def __init__(self, rate: Rate, *, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = float(rate.burst)
        self._updated = clock()
        self._paused_until = 0.0

    def reserve(self) -> float:
        """Take one token now (possibly going into debt); return seconds to wait before using it."""
        now, start = self._take()
        return start - now

    def reserve_slot(self) -> Slot:
        """Take one token now; its slot on this bucket's clock."""
        _, start = self._take()
        return Slot(at=start, due=start)

    def _take(self) -> tuple[float, float]:
        """(now, the slot's start), both from one reading of the clock under the lock."""
        with self._lock:
            now = self._clock()
            if now < self._paused_until:
                # The host told us when the next request is allowed: queue behind that point.
                self._tokens = min(self._tokens, 0.0)
                start = self._paused_until
            else:
                start = now
            elapsed = max(0.0, start - self._updated)
            level = min(float(self.rate.burst), self._tokens + elapsed * self.rate.per_second)
            self._tokens, wait = take(level, 1.0, self.rate)
            self._updated = start
            return now, start + wait

    async def acquire(self, sleep: Sleep = asyncio.sleep) -> None:
        async def reserve() -> Slot:
            return self.reserve_slot()

        await start_in_slot(reserve, self.rate, clock=self._clock, sleep=sleep)

    def charge(self, tokens: float) -> None:
        """Spend extra tokens after the fact (WB marketplace counts each 4xx as 10 requests)."""
        with self._lock:
            self._tokens -= tokens

    def pause_for(self, seconds: float) -> None:
        """Nobody may start a request for `seconds` (a 429 said so); the burst is spent."""
        with self._lock:
            now = self._clock()
            self._paused_until = max(self._paused_until, now + seconds)
            self._tokens = min(self._tokens, 0.0)
            self._updated = max(self._updated, now)


@dataclass
class BucketRegistry:
    """Process-wide buckets keyed by (credential fingerprint, category): a :class:`BucketBackend`."""

    clock: Clock = time.monotonic
    _buckets: dict[tuple[str, str], TokenBucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def bucket(self, credential: str, category: str, rate: Rate) -> TokenBucket:
        key = (fingerprint(credential), category)
        with self._lock:
            found = self._buckets.get(key)
            if found is None or found.rate != rate:
                # A different configured rate means a different config (tests): start fresh.
                found = self._buckets[key] = TokenBucket(rate, clock=self.clock)
            return found


DEFAULT_REGISTRY = BucketRegistry()
DEFAULT_LIMITS = RateLimits()
