"""Retry and error policy of the HTTP core, against small fake hosts that behave like
the facts page (used where a fault must happen at an exact request)."""

from __future__ import annotations

import json
import logging
import random
import weakref
from collections.abc import Callable

import httpx
import pytest

from connectors import errors
from connectors.http import Call, HostClient, RetryBudget, RetryPolicy, using_retry_budget
from connectors.parsing import gc_paused
from connectors.ratelimit import Rate, TokenBucket

TOKEN = "eyJhbGciOiJFUzI1NiJ9.secret-wb-token.sig"


class VirtualTime:
    """A clock and a sleep that advance together, instantly."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def host(handler: Callable[[httpx.Request], httpx.Response], vt: VirtualTime, **kw: object) -> HostClient:
    return HostClient(
        "https://wb.test",
        name="wb-test",
        transport=httpx.MockTransport(handler),
        sleep=vt.sleep,
        clock=vt.clock,
        rng=random.Random(1),
        **kw,  # type: ignore[arg-type]
    )


def sequence(
    *steps: Callable[[httpx.Request], httpx.Response],
) -> tuple[Callable[[httpx.Request], httpx.Response], list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return steps[min(len(seen), len(steps)) - 1](request)

    return handler, seen


def ok(_: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=[{"srid": "a"}])


def truncated(_: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=json.dumps([{"srid": "a"}] * 10).encode()[:37])


def reset(request: httpx.Request) -> httpx.Response:
    raise httpx.RemoteProtocolError("peer closed connection without sending complete message body", request=request)


def unauthorized(_: httpx.Request) -> httpx.Response:
    return httpx.Response(401, json={"title": "unauthorized", "detail": "token expired", "status": 401})


def too_many(retry: str) -> Callable[[httpx.Request], httpx.Response]:
    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429,
            headers={"X-Ratelimit-Retry": retry, "X-Ratelimit-Limit": "1"},
            json={"title": "too many requests", "status": 429},
        )

    return handler


def call(**kw: object) -> Call:
    return Call("GET", "/api/v1/supplier/orders", headers={"Authorization": TOKEN}, **kw)  # type: ignore[arg-type]


async def test_truncated_json_and_resets_are_retried_to_success() -> None:
    vt = VirtualTime()
    handler, seen = sequence(truncated, reset, ok)
    async with host(handler, vt) as client:
        body, _ = await client.send(call())
    assert body == [{"srid": "a"}] and len(seen) == 3
    assert len(vt.slept) == 2 and all(0 <= s <= 30 for s in vt.slept)


async def test_retries_are_capped() -> None:
    vt = VirtualTime()
    handler, seen = sequence(lambda r: httpx.Response(503, json={"title": "unavailable"}))
    async with host(handler, vt, retry=RetryPolicy(attempts=4)) as client:
        with pytest.raises(errors.ServerError):
            await client.send(call())
    assert len(seen) == 4


async def test_wb_401_is_credentials_rejected_at_once() -> None:
    vt = VirtualTime()
    handler, seen = sequence(unauthorized)
    async with host(handler, vt) as client:
        with pytest.raises(errors.CredentialsRejected) as info:
            await client.send(call())
    assert len(seen) == 1 and vt.slept == []
    assert not isinstance(info.value, errors.TransientError)


async def test_other_4xx_is_not_retried() -> None:
    vt = VirtualTime()
    handler, seen = sequence(lambda r: httpx.Response(422, json={"errors": [{"code": "VALIDATION_ERROR"}]}))
    async with host(handler, vt) as client:
        with pytest.raises(errors.BadRequest) as info:
            await client.send(call())
    assert info.value.codes == ("VALIDATION_ERROR",) and len(seen) == 1


async def test_429_waits_the_x_ratelimit_retry_time_and_pauses_the_shared_bucket() -> None:
    vt = VirtualTime()
    bucket = TokenBucket(Rate(per_second=100.0, burst=10), clock=vt.clock)
    handler, seen = sequence(too_many("7"), ok)
    async with host(handler, vt) as client:
        await client.send(call(bucket=bucket))
    assert vt.slept == [7.0] and len(seen) == 2
    # Anyone else on the bucket right now also waits for the host's retry time.
    vt.now -= 1.0
    assert bucket.reserve() == pytest.approx(1.0, abs=0.02)


async def test_retry_after_used_when_wb_header_absent_else_backoff() -> None:
    vt = VirtualTime()
    handler, _ = sequence(
        lambda r: httpx.Response(429, headers={"Retry-After": "3"}), lambda r: httpx.Response(429), ok
    )
    async with host(handler, vt, retry=RetryPolicy(backoff_base=0.5, backoff_cap=4.0)) as client:
        await client.send(call())
    assert vt.slept[0] == 3.0 and 0.0 <= vt.slept[1] <= 4.0


async def test_a_retry_time_longer_than_the_cap_is_raised_not_slept() -> None:
    vt = VirtualTime()
    handler, _ = sequence(too_many("10800"))  # a Base token: 1 request per 3 hours
    async with host(handler, vt, retry=RetryPolicy(max_rate_limit_wait=600)) as client:
        with pytest.raises(errors.RateLimited) as info:
            await client.send(call())
    assert info.value.retry_after == 10800 and vt.slept == []


async def test_no_token_in_logs_or_exceptions(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    vt = VirtualTime()
    handler, _ = sequence(reset, truncated, lambda r: httpx.Response(503), unauthorized)
    async with host(handler, vt) as client:
        with pytest.raises(errors.CredentialsRejected) as info:
            await client.send(call())
    texts = [caplog.text, str(info.value), repr(info.value)]
    cause = info.value.__cause__ or info.value.__context__
    texts += [str(cause), repr(cause)]
    assert "retry" in caplog.text  # the retries were logged...
    assert not any("secret-wb-token" in t for t in texts)  # ...without the token


async def test_a_response_is_freed_when_dropped_even_with_the_gc_paused() -> None:
    """Streams pause the cyclic GC; a response (and its body, tens of MB for a WB page) must not
    wait for a GC pass to be freed, or a long sync holds every page it ever fetched."""
    vt = VirtualTime()
    async with host(ok, vt) as client:
        with gc_paused():
            body, response = await client.send(call())
            freed = weakref.ref(response)
            del response
            assert body == [{"srid": "a"}]
            assert freed() is None


def _unreachable(
    vt: VirtualTime, connect_timeout: float = 10.0
) -> tuple[Callable[[httpx.Request], httpx.Response], list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        vt.now += connect_timeout  # nothing answers: the connect timeout runs out
        raise httpx.ConnectTimeout("timed out", request=request)

    return handler, seen


async def test_a_host_that_is_down_spends_the_streams_budget_then_fails_with_the_url() -> None:
    vt = VirtualTime()
    handler, seen = _unreachable(vt)
    budget = RetryBudget(180.0, clock=vt.clock)
    client = HostClient(
        "https://user:pw@statistics-api.wildberries.ru",
        name="wb-statistics",
        transport=httpx.MockTransport(handler),
        sleep=vt.sleep,
        clock=vt.clock,
        rng=random.Random(1),
        retry=RetryPolicy(attempts=100),  # the budget, not the attempt cap, ends it
    )
    call = Call(
        "GET",
        "/api/v1/supplier/orders",
        params={"dateFrom": "2026-11-01", "key": "s3cret"},
        headers={"Authorization": TOKEN},
    )
    with using_retry_budget(budget), pytest.raises(errors.RetryBudgetSpent) as caught:
        await client.send(call)
    # Bounded: the budget plus at most the one attempt that found it spent.
    assert 180.0 <= vt.now <= 180.0 + 10.0 and len(seen) < 100
    message = str(caught.value)
    assert caught.value.url == "https://statistics-api.wildberries.ru/api/v1/supplier/orders"
    assert caught.value.url in message and "NetworkError" in message
    for secret in (TOKEN, "s3cret", "dateFrom", "user", "pw@"):
        assert secret not in message
    assert isinstance(caught.value, errors.TransientError)  # not the credentials' fault


async def test_the_budget_spans_the_streams_requests_and_its_task_retries() -> None:
    vt = VirtualTime()
    handler, seen = _unreachable(vt)
    budget = RetryBudget(60.0, clock=vt.clock)
    client = host(handler, vt, retry=RetryPolicy(attempts=3))
    with using_retry_budget(budget):
        with pytest.raises(errors.NetworkError) as first:
            await client.send(Call("GET", "/a"))
        assert not isinstance(first.value, errors.RetryBudgetSpent)  # attempts ran out first
        budget.pause()
        vt.now += 30.0  # the task's retry delay
        budget.resume()
        with pytest.raises(errors.RetryBudgetSpent):
            budget.check()
            await client.send(Call("GET", "/b"))
    assert vt.now <= 60.0 + 10.0 + 30.0


async def test_a_good_answer_refills_the_budget() -> None:
    vt = VirtualTime()
    calls = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        vt.now += 5.0
        if calls["n"] % 3:
            return httpx.Response(503)
        return httpx.Response(200, json={"ok": True})

    budget = RetryBudget(30.0, clock=vt.clock)
    client = host(flaky, vt)
    with using_retry_budget(budget):
        for _ in range(20):  # 40 failures, 200+ s of them in all: a stream making progress goes on
            body, _ = await client.send(Call("GET", "/page"))
            assert body == {"ok": True}
    assert budget.spent == 0.0 and vt.now > 200.0


async def test_waits_a_429_asked_for_are_not_failures() -> None:
    vt = VirtualTime()
    handler, _ = sequence(
        *[lambda r: httpx.Response(429, headers={"X-Ratelimit-Retry": "50"})] * 4,
        lambda r: httpx.Response(200, json=[]),
    )
    budget = RetryBudget(30.0, clock=vt.clock)
    with using_retry_budget(budget):
        body, _ = await host(handler, vt).send(Call("GET", "/api/v1/supplier/sales"))
    assert body == [] and vt.now == 200.0


class _CutAfter(httpx.AsyncByteStream):
    """A body that arrives in chunks and breaks off after `keep` bytes, as a dropped connection."""

    def __init__(self, body: bytes, keep: int | None = None) -> None:
        self.body, self.keep = body, keep

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        end = len(self.body) if self.keep is None else self.keep
        for start in range(0, end, 50):
            yield self.body[start : min(start + 50, end)]
        if self.keep is not None:
            raise httpx.ReadError("connection reset")


ROWS = [{"srid": f"s{i}", "lastChangeDate": "2026-11-20T10:00:00", "subject": "},{"} for i in range(60)]
ARRAY = json.dumps(ROWS, separators=(",", ":")).encode()


async def _parts(client: HostClient) -> list[list[dict]]:
    return [part async for part in client.stream_array(Call("GET", "/rows"), part_bytes=400)]


async def test_stream_array_retries_before_the_first_part_and_decodes_in_parts() -> None:
    vt = VirtualTime()
    handler, seen = sequence(
        lambda r: httpx.Response(503, json={"title": "busy"}),
        lambda r: httpx.Response(200, stream=_CutAfter(ARRAY, keep=200)),  # cut before a part was complete
        lambda r: httpx.Response(200, stream=_CutAfter(ARRAY)),
    )
    parts = await _parts(host(handler, vt))
    assert len(seen) == 3 and len(parts) > 3
    assert [row for part in parts for row in part] == ROWS


async def test_stream_array_raises_a_failure_after_rows_were_delivered_and_refuses_non_arrays() -> None:
    vt = VirtualTime()
    handler, seen = sequence(lambda r: httpx.Response(200, stream=_CutAfter(ARRAY, keep=len(ARRAY) - 30)))
    got: list[dict] = []
    with pytest.raises(errors.NetworkError):
        async for part in host(handler, vt).stream_array(Call("GET", "/rows"), part_bytes=400):
            got.extend(part)
    assert len(seen) == 1 and 0 < len(got) < len(ROWS) and got == ROWS[: len(got)]
    handler, _ = sequence(lambda r: httpx.Response(200, json={"error": "nope"}))
    with pytest.raises(errors.PayloadError):
        await _parts(host(handler, vt))
    handler, _ = sequence(lambda r: httpx.Response(401, json={"title": "unauthorized"}))
    with pytest.raises(errors.CredentialsRejected):
        await _parts(host(handler, vt))
