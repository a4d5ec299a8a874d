"""Buckets in PostgreSQL: the token-bucket arithmetic on one row, shared by separate engines.

Each backend has its own engine (its own connections): as two workers would. They share an
injected clock, so every figure is exact; tests/storage/test_ratelimit_workers.py runs real
processes on the server's clock.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text

from connectors.errors import RateLimited
from connectors.http import RetryPolicy
from connectors.ratelimit import Rate, RateLimits, TokenBucket
from storage.ratelimit import PgBucketBackend, limiter_engine, owner_key
from tests.connectors.sandbox_harness import LateWaker, make_sandbox

SECRET = secrets.token_hex(16)  # the install's key for bucket names: a fresh one per run


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


Backends = Callable[..., PgBucketBackend]


@pytest.fixture
def backends(engine: Engine, database_url: str) -> Iterator[Backends]:
    made: list[PgBucketBackend] = []

    def make(secret: str = SECRET, clock: FakeClock | None = None) -> PgBucketBackend:
        backend = PgBucketBackend(limiter_engine(database_url), secret, clock=clock)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.dispose()


@pytest.fixture
def token() -> str:
    return f"tok-{uuid.uuid4().hex}"  # each test its own buckets


def test_burst_then_steady_rate_across_workers(backends: Backends, token: str) -> None:
    clock = FakeClock()
    first, second = backends(clock=clock), backends(clock=clock)
    rate = Rate(per_second=2.0, burst=3)
    a, b = first.bucket(token, "wb_feedbacks", rate), second.bucket(token, "wb_feedbacks", rate)
    waits = [bucket.reserve().wait for bucket in (a, b, a, b, a)]
    assert waits == [0.0, 0.0, 0.0, 0.5, 1.0]  # one queue: the 4th and 5th wait their turn


def test_refill_is_capped_at_burst(backends: Backends, token: str) -> None:
    clock = FakeClock()
    bucket = backends(clock=clock).bucket(token, "wb_content", Rate(per_second=1.0, burst=2))
    bucket.reserve()
    clock.now += 100.0
    assert [bucket.reserve().wait for _ in range(3)] == [0.0, 0.0, 1.0]


def test_a_pause_on_one_worker_holds_every_worker_then_the_steady_rate(backends: Backends, token: str) -> None:
    clock = FakeClock()
    rate = Rate(per_second=1.0, burst=5)
    paused = backends(clock=clock).bucket(token, "wb_statistics", rate)
    other = backends(clock=clock).bucket(token, "wb_statistics", rate)
    paused.reserve()
    paused.pause_for(7.0)  # no event loop here: written at once
    assert [other.reserve().wait for _ in range(2)] == [7.0, 8.0]


def test_charge_on_one_worker_spends_tokens_for_all(backends: Backends, token: str) -> None:
    clock = FakeClock()
    rate = Rate(per_second=5.0, burst=20)
    charged = backends(clock=clock).bucket(token, "wb_marketplace", rate)
    other = backends(clock=clock).bucket(token, "wb_marketplace", rate)
    charged.reserve()
    charged.charge(9)  # a WB marketplace 4xx costs 10
    assert [other.reserve().wait for _ in range(10)][-1] == 0.0
    assert other.reserve().wait == pytest.approx(0.2)


def test_buckets_are_per_credential_and_category(backends: Backends, token: str) -> None:
    clock = FakeClock()
    backend = backends(clock=clock)
    rate = Rate(per_second=1.0, burst=1)
    backend.bucket(token, "wb_statistics:/orders", rate).reserve()
    assert backend.bucket(token, "wb_statistics:/orders", rate).reserve().wait == 1.0
    assert backend.bucket(token, "wb_statistics:/sales", rate).reserve().wait == 0.0
    assert backend.bucket(token + "-other", "wb_statistics:/orders", rate).reserve().wait == 0.0


def test_owner_is_stable_per_install_and_never_the_credential(backends: Backends, engine: Engine, token: str) -> None:
    clock = FakeClock()
    rate = Rate(per_second=1.0, burst=1)
    backends(clock=clock).bucket(token, "wb_feedbacks", rate).reserve()
    # Another worker of the install finds the same row; another install (key) does not.
    assert backends(clock=clock).bucket(token, "wb_feedbacks", rate).reserve().wait == 1.0
    assert backends("another-install", clock=clock).bucket(token, "wb_feedbacks", rate).reserve().wait == 0.0
    with engine.connect() as conn:
        dump = "\n".join(r[0] for r in conn.execute(text("SELECT t::text FROM rate_buckets t")))
    assert owner_key(SECRET)(token) in dump
    assert token not in dump and token[4:] not in dump
    assert len(owner_key(SECRET)(token)) == 32 and owner_key(SECRET)(token) != owner_key("another-install")(token)


def test_a_deleted_row_is_created_again(backends: Backends, engine: Engine, token: str) -> None:
    clock = FakeClock()
    bucket = backends(clock=clock).bucket(token, "wb_analytics", Rate(per_second=1.0, burst=1))
    bucket.reserve()
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM rate_buckets WHERE owner = :o"), {"o": bucket.owner})
    assert bucket.reserve().wait == 0.0  # an operator's reset: a fresh, full bucket
    assert bucket.reserve().wait == 1.0


@pytest.mark.parametrize(
    "rate", [Rate(0.5, 1).with_tolerance(0.5), Rate(2.0, 4).with_tolerance(0.5)], ids=["one-token", "burst"]
)
def test_room_for_a_late_sender_is_the_same_arithmetic_in_the_row_as_in_process(
    backends: Backends, token: str, rate: Rate
) -> None:
    clock = FakeClock()
    row = backends(clock=clock).bucket(token, "wb_content", rate)
    memory = TokenBucket(rate, clock=clock)
    waits = []
    for step, pause in [(0, 0), (0, 0), (0, 0), (0.3, 0), (0, 3.0), (0, 0), (2.5, 0), (10, 0), (0, 0), (0, 0)]:
        clock.now += step
        if pause:
            row.pause_for(pause)  # no event loop: written at once
            memory.pause_for(pause)
        waits.append((row.reserve().wait, memory.reserve()))
    assert [w for w, _ in waits] == pytest.approx([m for _, m in waits], abs=1e-9)
    if rate.burst == 1:
        # An idle bucket's slot is at once, the next one interval plus the tolerance later.
        assert [w for w, _ in waits[:2]] == pytest.approx([0.0, 2.0 + 0.5])
    else:
        # A burst of 4 less 2.0/s x 0.5 s of room: 3 at once; the 4th, asked 0.3 s later, when its
        # token has refilled (0.5 s after the third).
        assert [w for w, _ in waits[:4]] == pytest.approx([0.0, 0.0, 0.0, 0.2])


async def test_a_late_sender_on_one_worker_never_brings_the_others_request_too_close(backends: Backends) -> None:
    # Two workers (each its own engine) on the server's clock share the sales bucket: 1/min,
    # burst 1, scaled x240 (one per 0.25 s) at the sandbox and in our limits. One worker's loop
    # wakes it late every other time, past the tolerance: it must take a new slot.
    sb = make_sandbox(scenario="tiny", speed=1.0, rate_limit_scale=240.0)
    limits, token, waker = RateLimits().scaled(240.0), sb.wb_token(), LateWaker(0.2)
    install = secrets.token_hex(16)  # buckets of their own: the sandbox's token is every test's
    sb.registry = backends(install)
    late = sb.wb(limits=limits, sleep=waker)
    sb.registry = backends(install)
    async with late, sb.wb(limits=limits) as on_time:

        async def caller(client) -> int:  # type: ignore[no-untyped-def]
            since = datetime(2026, 11, 1, tzinfo=UTC)
            return sum([len([p async for p in client.iter_sales(token, since)]) for _ in range(4)])

        pages = await asyncio.gather(caller(late), caller(on_time))
    assert pages[0] == pages[1] > 0 and waker.late_wakeups > 0
    log = sb.requests("wb-statistics")
    assert len(log) >= 8 and [r.status for r in log] == [200] * len(log)


def test_times_are_the_servers_without_a_clock(backends: Backends, token: str) -> None:
    grant = backends().bucket(token, "allegro_api", Rate.per_minute(9000, 150)).reserve()
    assert grant.wait == 0.0
    assert abs(grant.now - datetime.now(UTC).timestamp()) < 300  # the DB server's clock, not a fake one


async def test_a_429_on_one_worker_pauses_the_shared_bucket_for_the_others(backends: Backends) -> None:
    # Sandbox clock frozen: sales allow 1 request, then answer 429 with X-Ratelimit-Retry: 60.
    sb = make_sandbox(scenario="tiny", speed=0.0)
    clock = FakeClock()
    worker, other = backends(clock=clock), backends(clock=clock)
    limits = RateLimits(wb_statistics=Rate(1000.0, 1000))  # ours lets the second request through

    async def no_sleep(seconds: float) -> None:
        return None

    sb.registry = worker
    async with sb.wb(limits=limits, retry=RetryPolicy(attempts=2), sleep=no_sleep) as wb:
        with pytest.raises(RateLimited):  # the second page: 429, paused, retried once: 429
            [p async for p in wb.iter_sales(sb.wb_token(), datetime(2026, 11, 1, tzinfo=UTC))]
    assert [r.status for r in sb.requests("wb-statistics")] == [200, 429, 429]
    bucket = other.bucket(sb.wb_token(), "wb_statistics:/api/v1/supplier/sales", limits.wb_statistics)
    # The pause (60 s) was written with the retry's reservation: the other worker waits it out.
    assert bucket.reserve().wait == pytest.approx(60.0 + 1 / 1000.0)


def test_a_connection_the_server_dropped_is_replaced(backends: Backends, engine: Engine, token: str) -> None:
    bucket = backends(clock=FakeClock()).bucket(token, "wb_content", Rate(per_second=1.0, burst=5))
    bucket.reserve()
    with engine.connect() as conn:  # a server restart, as the pool sees it
        ended = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
                "WHERE application_name = 'sellerpulse-ratelimit' AND datname = current_database()"
            )
        ).scalar_one()
    assert ended >= 1
    assert bucket.reserve().wait == 0.0  # the second of five: the row kept its state


async def test_the_products_clients_keep_their_buckets_in_the_database(engine: Engine) -> None:
    from sellerpulse.settings import get_settings
    from tasks.clients import Clients

    sb = make_sandbox(scenario="tiny", speed=0.0)
    urls = {k: v for k, v in vars(sb.settings).items() if k.endswith("_url")}
    settings = get_settings().model_copy(update=urls)
    async with Clients.from_settings(settings, transport=sb.transport, limits=RateLimits()) as clients:
        await clients.wb.orders_for_day(sb.wb_token(), datetime(2026, 11, 20, tzinfo=UTC).date())
    owner = owner_key(settings.secret_keys()[0])(sb.wb_token())
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT category, tokens FROM rate_buckets WHERE owner = :o"), {"o": owner}).all()
    assert [(category, tokens < 1.0) for category, tokens in rows] == [("wb_statistics:/api/v1/supplier/orders", True)]
