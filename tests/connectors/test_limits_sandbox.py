"""Rate limits on the wire, in real time against a sandbox with fast (scaled) limits.

The sandbox refuses any request that comes before its bucket allows it, and logs
every request, so its log is the proof.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx
import pytest

from connectors.http import RetryPolicy
from connectors.ratelimit import BucketRegistry, Rate, RateLimits, Slot, TokenBucket
from sandbox.transport import SandboxTransport
from tests.connectors.sandbox_harness import LateWaker, Sandbox, make_sandbox

SINCE = datetime(2026, 11, 1, tzinfo=UTC)
SALES = "/api/v1/supplier/sales"


class TimingTransport(SandboxTransport):
    """Pass-through that notes when each request left and what came back."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.sent: list[float] = []
        self.answers: list[tuple[float, int, str | None]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(time.monotonic())
        response = await super().handle_async_request(request)
        self.answers.append((time.monotonic(), response.status_code, response.headers.get("x-ratelimit-retry")))
        return response


def timed_sandbox(scale: float) -> tuple[Sandbox, TimingTransport]:
    sb = make_sandbox(scenario="tiny", speed=1.0, rate_limit_scale=scale)
    sb.transport = TimingTransport(app=sb.app)
    return sb, sb.transport


@pytest.mark.parametrize(
    "limits", [RateLimits.unlimited(), RateLimits(wb_statistics=Rate(1000.0, 1000))], ids=["no-bucket", "bucket-paused"]
)
async def test_wb_429_is_answered_by_waiting_exactly_x_ratelimit_retry(limits: RateLimits) -> None:
    # Sales: 1/min with burst 1, scaled x150 -> one request per 0.4 s.
    sb, transport = timed_sandbox(150.0)
    async with sb.wb(limits=limits, retry=RetryPolicy(attempts=5)) as wb:
        for _ in range(3):
            [p async for p in wb.iter_sales(sb.wb_token(), SINCE)]
    refusals = [i for i, (_, status, _) in enumerate(transport.answers) if status == 429]
    assert refusals, "the test must provoke WB's own 429"
    for i in refusals:
        answered_at, _, retry = transport.answers[i]
        gap = transport.sent[i + 1] - answered_at
        assert retry is not None and float(retry) <= gap < float(retry) + 0.25
    log = sb.requests("wb-statistics", SALES)
    assert len(log) == len(transport.sent)
    # No request came before it was allowed: every retry after a 429 was accepted.
    assert all(log[i + 1].status == 200 for i in refusals)


class GrantLog(BucketRegistry):
    """In-process buckets that note the start time of each slot they granted.

    The slot is the bucket's own reading of the clock plus the wait: reading the clock again
    outside the bucket would be wrong by however long this thread was descheduled between
    the two readings (CI once saw 92 us, which reads as 0.0015 of a request early).
    """

    def __init__(self) -> None:
        super().__init__()
        self.granted: list[float] = []

    def bucket(self, credential: str, category: str, rate: Rate) -> TokenBucket:
        found = super().bucket(credential, category, rate)
        if getattr(found, "noted", False):
            return found
        reserve_slot, granted = found.reserve_slot, self.granted

        def noted() -> Slot:
            slot = reserve_slot()
            granted.append(slot.at)
            return slot

        found.reserve_slot, found.noted = noted, True  # type: ignore[method-assign, attr-defined]
        return found


async def test_two_concurrent_callers_sharing_one_bucket_never_exceed_the_rate() -> None:
    # Sandbox: sales 1/min scaled x1200 = 20/s, burst 1. Our bucket: 16/s, burst 1, shared by two
    # clients. What the bucket promises is checked on the start times it granted (its own
    # arithmetic, not the machine's scheduling; a sender woken late is the next test's); the
    # sandbox's log shows that every request was served and that both clients really went
    # through the one bucket.
    sb, _ = timed_sandbox(1200.0)
    sb.registry = log = GrantLog()
    limits = RateLimits(wb_statistics=Rate(16.0, 1))
    token = sb.wb_token()
    async with sb.wb(limits=limits) as first, sb.wb(limits=limits) as second:

        async def caller(client) -> int:  # type: ignore[no-untyped-def]
            return sum([len([p async for p in client.iter_sales(token, SINCE)]) for _ in range(4)])

        pages = await asyncio.gather(caller(first), caller(second))
    served = [r for r in sb.requests("wb-statistics", SALES) if r.status == 200]
    assert pages[0] == pages[1] > 0 and len(served) >= 8
    assert len(log.granted) >= len(served)  # one bucket saw every request of both clients
    # In requests; the grants are exact but for float seconds, so the bound is tight.
    assert limits.wb_statistics.excess(log.granted) <= 1e-6


@pytest.mark.parametrize("late", [0.08, 0.2], ids=["late-within-tolerance", "late-past-tolerance"])
async def test_a_sender_woken_late_never_brings_the_next_request_of_its_bucket_too_close(late: float) -> None:
    # Sandbox sales: 1/min with burst 1, scaled x240: one request per 0.25 s. Our limits: the
    # documented ones, scaled alike. Two clients share the bucket; one's loop wakes it late every
    # other time. A grant spaced exactly one interval after a late send lets the on-time client's
    # request reach WB less than an interval after it: a 429 that nothing but lateness caused.
    sb, transport = timed_sandbox(240.0)
    limits = RateLimits().scaled(240.0)
    token, waker = sb.wb_token(), LateWaker(late)
    async with sb.wb(limits=limits, sleep=waker) as late_client, sb.wb(limits=limits) as on_time:

        async def caller(client) -> int:  # type: ignore[no-untyped-def]
            return sum([len([p async for p in client.iter_sales(token, SINCE)]) for _ in range(4)])

        pages = await asyncio.gather(caller(late_client), caller(on_time))
    assert pages[0] == pages[1] > 0
    assert waker.late_wakeups > 0, "the test must wake a sender late"
    log = sb.requests("wb-statistics", SALES)
    assert [r.status for r in log] == [200] * len(log)  # never refused: no request came too close
    assert len(log) == len(transport.sent) >= 8
