"""Marketplace rate-limit buckets in PostgreSQL, shared by every worker on every machine.

Architecture invariant 9: Allegro's 9000 requests/min belong to the app's client id (every
shop of the install), WB's buckets to a seller token and API category. A bucket in one
process's memory lets two workers together exceed them, so here a bucket is one row of
`rate_buckets` and :class:`PgBucketBackend` is the :class:`connectors.ratelimit.BucketBackend`
the product's clients use (``tasks.clients``).

How a request gets its turn: one ``UPDATE ... RETURNING`` refills the row, takes a token
(going into debt if there is none) and answers how long to wait before starting. That is
the arithmetic of ``connectors.ratelimit.take`` with the row as the state, room for a late
sender included: callers of all processes queue in the order their updates reach the row,
nobody polls, and a promised start time is never given twice. Time is the database
server's clock (one clock for every machine; waits are relative, so the workers' clocks do
not matter), or an injected clock in tests; the round trip's uncertainty counts as
lateness (``PgBucket.reserve_slot``). `benchmarks/ratelimit` has what one check costs.

A 429's pause (``pause_for``) and WB's 10-request charge for a refused call (``charge``)
come from synchronous code on the request path: they are recorded at once, in memory, and
written by this process's next ``acquire`` on the bucket (the retry right after a 429) or
by a write-behind task, whichever comes first. From then on every worker waits.

Keys: `owner` is a keyed BLAKE2b of the credential under a key derived from the install's
secret key (``SELLERPULSE_SECRET_KEY``, which every worker of an install shares): the same
on every worker, not reversible without the key, and the credential is never stored.
After a key rotation buckets start afresh (a full burst once).

Errors: a database error while taking a token propagates (``psycopg.Error``): going on
without the shared bucket could get the client id blocked for every shop, so the request
is not sent and the task's retries take over.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import psycopg
from sqlalchemy import Engine, create_engine

from connectors.ratelimit import Clock, Rate, Sleep, Slot, start_in_slot

if TYPE_CHECKING:
    from sellerpulse.settings import Settings

log = logging.getLogger(__name__)

# `now`: the injected clock's epoch seconds, or NULL for the server's clock.
_NOW = "(SELECT coalesce(to_timestamp(%(now)s::float8), clock_timestamp()) AS now) AS c"
_WHERE = "b.owner = %(owner)s AND b.category = %(category)s"

# The start: now, or later if the row already moved past it (a pause's end, or a `now` read
# before this statement waited for the row's lock). The level then: refilled up to the burst
# (while a pause lasts the burst stays spent: after it, requests start at the steady rate).
_START = "greatest(c.now, b.updated_at, b.paused_until)"
_LEVEL = f"""least(%(burst)s::float8,
                   CASE WHEN c.now < b.paused_until THEN least(b.tokens, 0.0) ELSE b.tokens END
                   + %(rate)s::float8 * extract(epoch FROM {_START} - b.updated_at)::float8)"""

# connectors.ratelimit.take in SQL: the slot is when the level reaches `n`; the level it leaves
# is at most the ceiling (room for a late sender) less `n`. Answers the limiter's `now`, the
# wait after it, and how long the statement took on the server since `now` (the row's lock):
# the caller's clock places the slot with that (PgBucket.reserve_slot).
RESERVE = f"""
UPDATE rate_buckets AS b
SET tokens = least(greatest({_LEVEL}, %(n)s::float8), %(ceiling)s::float8)
             - %(n)s::float8 - greatest(0.0, %(n)s::float8 - {_LEVEL}),
    updated_at = {_START},
    per_second = %(rate)s, burst = %(burst)s
FROM {_NOW}
WHERE {_WHERE}
RETURNING extract(epoch FROM c.now)::float8,
          extract(epoch FROM b.updated_at - c.now)::float8
          + greatest(0.0, -(b.tokens + greatest(0.0, %(n)s::float8 - %(ceiling)s::float8))) / %(rate)s::float8,
          extract(epoch FROM coalesce(to_timestamp(%(now)s::float8), clock_timestamp()) - c.now)::float8
"""

CREATE = f"""
INSERT INTO rate_buckets (owner, category, tokens, per_second, burst, updated_at, paused_until)
SELECT %(owner)s, %(category)s, %(burst)s, %(rate)s, %(burst)s, c.now, c.now FROM {_NOW}
ON CONFLICT DO NOTHING
"""

PAUSE = f"""
UPDATE rate_buckets AS b
SET paused_until = greatest(b.paused_until, c.now + make_interval(secs => %(seconds)s)),
    tokens = least(b.tokens, 0.0),
    updated_at = greatest(b.updated_at, c.now)
FROM {_NOW}
WHERE {_WHERE}
"""

CHARGE = f"UPDATE rate_buckets AS b SET tokens = b.tokens - %(tokens)s WHERE {_WHERE}"


@dataclass(frozen=True)
class Grant:
    """One reservation: `now` on the limiter's clock, start after `wait` seconds."""

    now: float
    wait: float

    @property
    def start(self) -> float:
        return self.now + self.wait


def owner_key(secret_key: str) -> Callable[[str], str]:
    """The owner id function of an install: keyed BLAKE2b of a credential, 32 hex chars."""
    key = hashlib.blake2b(secret_key.encode(), digest_size=32, person=b"sp-rate-buckets").digest()

    def owner(credential: str) -> str:
        return hashlib.blake2b(credential.encode(), key=key, digest_size=16).hexdigest()

    return owner


def limiter_engine(url: str, *, pool_size: int = 4) -> Engine:
    """An engine of its own for bucket updates: autocommit (one round trip per check) and
    asynchronous commit (a limiter row lost in a server crash costs at most one burst)."""
    return create_engine(
        url,
        isolation_level="AUTOCOMMIT",
        pool_size=pool_size,
        max_overflow=pool_size,
        connect_args={
            "connect_timeout": 10,
            "application_name": "sellerpulse-ratelimit",
            "options": "-c synchronous_commit=off",
        },
    )


class PgBucketBackend:
    """Buckets as rows of `rate_buckets`; one instance per process serves every client.

    `engine` (or a factory, called on first use so that clients with limits off never
    connect) should come from :func:`limiter_engine`; `clock` replaces the server's clock
    (tests: every backend given the same clock shares one timeline).
    """

    def __init__(self, engine: Engine | Callable[[], Engine], secret_key: str, *, clock: Clock | None = None) -> None:
        self._engine_arg = engine
        self._engine: Engine | None = engine if isinstance(engine, Engine) else None
        self._owner = owner_key(secret_key)
        self.clock = clock
        # What slots are placed on: the injected clock (it is the limiter's too), else ours.
        self.local_clock: Clock = clock or time.monotonic
        self._buckets: dict[tuple[str, str], PgBucket] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_url(cls, url: str, secret_key: str, **kwargs: Any) -> PgBucketBackend:
        return cls(lambda: limiter_engine(url), secret_key, **kwargs)

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                factory = self._engine_arg
                assert callable(factory)
                self._engine = factory()
            return self._engine

    def bucket(self, credential: str, category: str, rate: Rate) -> PgBucket:
        key = (self._owner(credential), category)
        with self._lock:
            found = self._buckets.get(key)
            if found is None:
                found = self._buckets[key] = PgBucket(self, key[0], category, rate)
            found.rate = rate  # the caller's configuration wins (the row keeps its state)
            return found

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def execute(self, statements: list[tuple[str, dict[str, Any]]]) -> tuple[Any, ...] | None:
        """Run statements on one pooled connection (autocommit); the last one's row, or None.

        The driver's cursor, not SQLAlchemy's statement machinery: this runs once per request.
        A connection the server dropped (a restart) is replaced, with its pooled siblings, and
        the statements sent once more: if the first try did commit, a token is spent twice
        (or a charge counted twice), never one too few.
        """
        for attempt in (1, 2):
            with self.engine.connect() as conn:
                driver = conn.connection.driver_connection
                try:
                    cursor = driver.cursor()
                    for sql, params in statements:
                        cursor.execute(sql, params)
                    return cursor.fetchone() if cursor.description else None
                except psycopg.OperationalError:
                    if attempt == 2 or not driver.broken:
                        raise
                    conn.invalidate()
                    self.engine.dispose()
        raise AssertionError("unreachable")


class PgBucket:
    """A :class:`connectors.ratelimit.Bucket` whose state is one row of `rate_buckets`."""

    def __init__(self, backend: PgBucketBackend, owner: str, category: str, rate: Rate) -> None:
        self.rate = rate
        self.owner, self.category = owner, category
        self._backend = backend
        self._lock = threading.Lock()
        # One write at a time per bucket and process: a retry's reservation must not overtake
        # the write-behind of the pause that came before it (the row serializes them anyway).
        self._writing = threading.Lock()
        self._pause = 0.0  # seconds of pause not yet written
        self._charge = 0.0  # tokens of charge not yet written
        self._created = False
        self._writes: set[asyncio.Task[None]] = set()  # write-behind tasks, kept from the GC

    async def acquire(self, sleep: Sleep = asyncio.sleep) -> None:
        async def reserve() -> Slot:
            return await asyncio.to_thread(self.reserve_slot)

        await start_in_slot(reserve, self.rate, clock=self._backend.local_clock, sleep=sleep)

    def reserve(self, tokens: float = 1.0) -> Grant:
        """Take `tokens` now (blocking I/O: call from a thread); when the request may start."""
        return self._reserve(tokens)[0]

    def reserve_slot(self, tokens: float = 1.0) -> Slot:
        """Take `tokens` now (blocking I/O); the slot on this process's clock.

        The server's `now` fell between this call's start and its answer, less the time the
        statement took on the server: never sleep less than its latest place (a request never
        leaves early), count lateness from its earliest (never taken for less late than it is).
        """
        clock = self._backend.local_clock
        sent = clock()
        grant, on_server = self._reserve(tokens)
        answered = clock()
        return Slot(at=answered - on_server + grant.wait, due=sent + grant.wait)

    def _reserve(self, tokens: float) -> tuple[Grant, float]:
        row = self._write(tokens)
        assert row is not None
        return Grant(now=row[0], wait=max(0.0, row[1])), max(0.0, row[2])

    def pause_for(self, seconds: float) -> None:
        with self._lock:
            self._pause = max(self._pause, seconds)
        self._write_behind()

    def charge(self, tokens: float) -> None:
        with self._lock:
            self._charge += tokens
        self._write_behind()

    def flush(self) -> None:
        """Write a recorded pause or charge now (blocking I/O)."""
        with self._lock:
            pending = self._pause > 0 or self._charge > 0
        if pending:
            self._write(None)

    def _params(self, **extra: Any) -> dict[str, Any]:
        clock = self._backend.clock
        return {
            "owner": self.owner,
            "category": self.category,
            "rate": self.rate.per_second,
            "burst": self.rate.burst,
            "ceiling": self.rate.ceiling,
            "now": clock() if clock is not None else None,
            **extra,
        }

    def _write(self, take: float | None) -> tuple[Any, ...] | None:
        """Pending pause and charge, then a reservation of `take` tokens (None: none)."""
        with self._writing:
            return self._write_pending(take)

    def _write_pending(self, take: float | None) -> tuple[Any, ...] | None:
        with self._lock:
            pause, charge = self._pause, self._charge
            self._pause = self._charge = 0.0
        statements = [] if self._created else [(CREATE, self._params())]
        if pause > 0:
            statements.append((PAUSE, self._params(seconds=pause)))
        if charge > 0:
            statements.append((CHARGE, self._params(tokens=charge)))
        if take is not None:
            statements.append((RESERVE, self._params(n=take)))
        try:
            row = self._backend.execute(statements)
            if take is not None and row is None:  # the row was deleted (an operator's reset)
                row = self._backend.execute([(CREATE, self._params()), statements[-1]])
        except BaseException:
            with self._lock:  # not written: the next write tries again
                self._pause, self._charge = max(self._pause, pause), self._charge + charge
            raise
        self._created = True
        return row

    def _write_behind(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()  # no event loop: blocking here blocks nobody else
            return
        task = loop.create_task(self._flush_async())
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _flush_async(self) -> None:
        try:
            await asyncio.to_thread(self.flush)
        except Exception as exc:  # kept pending: the next acquire writes it
            log.warning("rate bucket %s: pause/charge not written yet: %s", self.category, type(exc).__name__)


def shared_buckets(settings: Settings) -> PgBucketBackend:
    """The product's buckets: the install's database (DATABASE_URL, else the embedded one),
    keyed under its secret key. One backend per process; it connects on first use."""
    return _backend_for(settings.sqlalchemy_url, settings.secret_keys()[0])


@lru_cache(maxsize=4)
def _backend_for(url: str | None, secret_key: str) -> PgBucketBackend:
    def engine() -> Engine:
        from storage.db import get_target  # the embedded server starts only if a bucket is used

        return limiter_engine(url or get_target().url)

    return PgBucketBackend(engine, secret_key)
