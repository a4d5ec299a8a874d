"""The one place that sends HTTP: a long-lived ``httpx.AsyncClient`` per host with
explicit timeouts, proactive buckets, reactive retries and error translation.

Marketplace clients build a :class:`HostClient` per host and call :meth:`HostClient.send`
with a ready :class:`Call`. Policy per failure:

* 429: wait ``X-Ratelimit-Retry`` (WB), else ``Retry-After``, else exponential backoff
  with jitter; the wait also pauses the shared bucket. Retried up to the cap. A retry time
  longer than ``RetryPolicy.max_rate_limit_wait`` raises :class:`RetryLater` at once (the
  caller remembers it: tasks.context, storage.stream_limits).
* 5xx, timeouts, connection errors, truncated/undecodable JSON: backoff with jitter, capped.
* 401: :class:`CredentialsRejected` at once (never retried: it is not going to change).
* other 4xx: :class:`BadRequest` / :class:`NotFound`, not retried.

Inside a :class:`RetryBudget` (a sync stream sets one, `using_retry_budget`), failures also
spend the stream's budget: once it has gone that long without a single good answer (failed
attempts, back-off, and the delays between its task's retries), the request raises
:class:`RetryBudgetSpent` naming the URL it tried, instead of trying again.

Secrets only ever travel in headers or form bodies, never in URLs, and error messages
are built from the status, the path and the marketplace's error codes only.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import httpx

from connectors import errors
from connectors.parsing import ArrayParts, decode_json, gc_paused
from connectors.pool import speed_up_client
from connectors.ratelimit import Bucket, Clock, Sleep
from sellerpulse import __version__

log = logging.getLogger("connectors.http")

USER_AGENT = f"sellerpulse/{__version__}"
SENSITIVE_HEADERS = frozenset({"authorization", "cookie", "set-cookie"})


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    read: float = 60.0  # an 80,000-row statistics page takes a while to stream
    write: float = 30.0
    pool: float = 30.0

    def to_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # total tries per call, the first included
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    max_rate_limit_wait: float = 600.0  # a 429 asking for longer than this is raised, not slept

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        return rng.uniform(0.0, min(self.backoff_cap, self.backoff_base * (2**attempt)))


DEFAULT_TIMEOUTS = Timeouts()
DEFAULT_RETRY = RetryPolicy()


@dataclass
class RetryBudget:
    """How long one stream may go on failing: failed attempts, the back-off after them and the
    delays between its task's retries, all its requests together, since its last good answer.

    A stream that gets answers keeps going (a long backfill with the odd 5xx is making
    progress); one that gets none for `seconds` (a host that is down) is failed, and the next
    sync tries again. Waits a 429 asked for are the marketplace pacing us, not failures: not
    counted (`RetryPolicy.max_rate_limit_wait` bounds them).
    """

    seconds: float
    clock: Clock = time.monotonic
    spent: float = 0.0
    last_failure: str | None = None  # what failed last and where (no secrets, no query)
    last_url: str | None = None
    _paused_at: float | None = None

    def succeeded(self) -> None:
        self.spent, self.last_failure, self.last_url = 0.0, None, None

    def failed(self, seconds: float, what: str, url: str) -> None:
        self.spent += max(0.0, seconds)
        self.last_failure, self.last_url = what, url

    def affords(self, delay: float) -> bool:
        return self.spent + delay <= self.seconds

    def pause(self) -> None:
        """The stream failed and may be retried later: the wait until then counts too."""
        self._paused_at = self.clock()

    def resume(self) -> None:
        if self._paused_at is not None:
            self.spent += max(0.0, self.clock() - self._paused_at)
            self._paused_at = None

    def check(self) -> None:
        """Raise if the budget is spent (at the start of a retried stream)."""
        if self.last_failure is not None and not self.affords(0.0):
            raise self.spent_error()

    def spent_error(self) -> errors.RetryBudgetSpent:
        return errors.RetryBudgetSpent(
            f"gave up after {self.spent:.0f} s of failures and retries without an answer "
            f"(limit {self.seconds:.0f} s); last: {self.last_failure} at {self.last_url}",
            url=self.last_url,
        )


_budget: ContextVar[RetryBudget | None] = ContextVar("sellerpulse_retry_budget", default=None)


@contextmanager
def using_retry_budget(budget: RetryBudget | None) -> Iterator[RetryBudget | None]:
    """Requests sent inside (tasks they start included) spend `budget`."""
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


@dataclass
class Call:
    """One logical request; `headers` may carry secrets and are never logged."""

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json_body: Any = None
    form: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    auth: httpx.Auth | tuple[str, str] | None = None
    bucket: Bucket | None = None
    # Map a 4xx/401 response to an error of the caller's choice (OAuth bodies differ).
    classify: Callable[[httpx.Response], errors.ConnectorError | None] | None = None


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: ("[redacted]" if k.lower() in SENSITIVE_HEADERS else v) for k, v in headers.items()}


def parse_retry_after(response: httpx.Response) -> float | None:
    """WB's `X-Ratelimit-Retry`, else `Retry-After` (seconds form), else None."""
    for name in ("x-ratelimit-retry", "retry-after"):
        raw = response.headers.get(name)
        if raw is None:
            continue
        try:
            return max(0.0, float(raw))
        except ValueError:
            continue  # an HTTP-date Retry-After: fall back to backoff
    return None


def error_codes(body: Any) -> tuple[str, ...]:
    """Marketplace error codes from Allegro, OAuth or WB error bodies (never values we sent)."""
    if not isinstance(body, dict):
        return ()
    codes: list[str] = []
    for item in body.get("errors") or []:
        if isinstance(item, dict) and item.get("code"):
            codes.append(str(item["code"]))
    for key in ("error", "title"):
        if isinstance(body.get(key), str):
            codes.append(body[key])
    return tuple(codes)


def _safe_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def default_classify(response: httpx.Response) -> errors.ConnectorError:
    """4xx -> error, without echoing the body beyond its codes."""
    status, path = response.status_code, response.request.url.path
    codes = error_codes(_safe_json(response))
    text = ", ".join(codes) or response.reason_phrase
    if status == 401:
        return errors.CredentialsRejected(f"credentials rejected: {text}", status=status, path=path)
    if status == 404:
        return errors.NotFound(f"not found: {text}", status=status, path=path, codes=codes)
    return errors.BadRequest(f"request refused: {text}", status=status, path=path, codes=codes)


class HostClient:
    """A long-lived client for one host. Use as an async context manager or call `aclose`."""

    def __init__(
        self,
        base_url: str,
        *,
        name: str,
        default_headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        retry: RetryPolicy = DEFAULT_RETRY,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
        # Open lazily, kept per host: a batch run's shops share one client (flows.shop_sync.sync_many).
        max_connections: int = 100,
    ) -> None:
        self.name = name
        self.retry = retry
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        headers = {"User-Agent": USER_AGENT, **(default_headers or {})}
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=timeouts.to_httpx(),
            transport=transport,
            limits=httpx.Limits(max_connections=max_connections),
            follow_redirects=False,  # a redirect would carry the Authorization header elsewhere
        )
        if transport is None:
            # httpx's own transport (and proxies from the environment), its pool's per-request
            # scan cheaper (connectors.pool).
            speed_up_client(self._client)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> HostClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def send(self, call: Call) -> tuple[Any, httpx.Response]:
        """Send with retries; return (decoded JSON body or None, final response)."""
        attempt = 0
        budget = _budget.get()
        while True:
            if call.bucket is not None:
                await call.bucket.acquire(self._sleep)  # pacing, not failure: before the clock starts
            started = self._clock()
            try:
                result = await self._attempt(call)
            except errors.TransientError as exc:
                attempt += 1
                await self._failed(call, exc, attempt, budget, started)
                continue
            if budget is not None:
                budget.succeeded()
            return result

    async def stream_array(self, call: Call, *, part_bytes: int = 4 << 20) -> AsyncIterator[list[Any]]:
        """Send with retries and decode a JSON array body as it arrives, in parts of rows
        (`ArrayParts`): the body is never held whole. Retried like `send` until the first part
        is delivered; a failure after that raises (the caller has rows it cannot take back:
        it re-reads from what it stored). A body that is not an array is a PayloadError."""
        attempt = 0
        budget = _budget.get()
        while True:
            if call.bucket is not None:
                await call.bucket.acquire(self._sleep)
            started, delivered = self._clock(), False
            try:
                async for part in self._streamed(call, part_bytes):
                    delivered = True
                    yield part
            except errors.TransientError as exc:
                if delivered:
                    raise
                attempt += 1
                await self._failed(call, exc, attempt, budget, started)
                continue
            if budget is not None:
                budget.succeeded()
            return

    async def _streamed(self, call: Call, part_bytes: int) -> AsyncIterator[list[Any]]:
        decoder = ArrayParts(part_bytes)
        try:
            async with self._client.stream(
                call.method, call.path, params=call.params, json=call.json_body, data=call.form,
                headers=call.headers, auth=call.auth,  # type: ignore[arg-type]
            ) as response:  # fmt: skip
                if response.status_code >= 300 or response.status_code < 200:
                    await response.aread()
                    self._interpret(call, response)  # raises what `send` would
                async for chunk in response.aiter_bytes():
                    with gc_paused():
                        parts = decoder.feed(chunk)
                    for part in parts:
                        yield part
                    del parts
            with gc_paused():
                last = decoder.close()
        except httpx.TimeoutException as exc:
            raise errors.NetworkError(f"{self.name}: timeout ({type(exc).__name__})", path=call.path) from exc
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise errors.NetworkError(f"{self.name}: transport error ({type(exc).__name__})", path=call.path) from exc
        except ValueError as exc:
            raise errors.NetworkError(f"{self.name}: truncated or malformed JSON body", path=call.path) from exc
        if last is None and decoder.value is not None:
            raise errors.PayloadError(f"{self.name}: the response is not a JSON array", path=call.path)
        if last:
            yield last

    async def _failed(
        self, call: Call, exc: errors.TransientError, attempt: int, budget: RetryBudget | None, started: float
    ) -> None:
        """A failed attempt: charge the budget, then raise if out of tries, else wait for the next."""
        if budget is not None:
            budget.failed(self._clock() - started, f"{type(exc).__name__}: {exc}", self.url_of(call.path))
        if attempt >= self.retry.attempts:
            raise exc
        await self._wait_before_retry(call, exc, attempt, budget)

    def url_of(self, path: str) -> str:
        """Scheme, host, port and path of a request: what an error may show (never a query,
        never user info: secrets travel in headers and bodies only)."""
        base = self._client.base_url
        return f"{base.scheme}://{base.netloc.decode('ascii')}{base.path.rstrip('/')}{path}"

    async def _wait_before_retry(
        self, call: Call, exc: errors.TransientError, attempt: int, budget: RetryBudget | None
    ) -> None:
        if isinstance(exc, errors.RateLimited) and exc.retry_after is not None:
            if exc.retry_after > self.retry.max_rate_limit_wait:
                raise errors.RetryLater(
                    f"{self.name}: rate limited for {exc.retry_after:.0f} s",
                    retry_after=exc.retry_after,
                    status=exc.status,
                    path=exc.path,
                ) from exc
            if budget is not None and not budget.affords(0.0):
                raise budget.spent_error() from exc
            delay = exc.retry_after  # the host's pacing: not charged to the budget
            if call.bucket is not None:
                # Pause everyone on this bucket; acquire() then waits exactly until then.
                call.bucket.pause_for(delay)
                delay = 0.0
        else:
            delay = self.retry.backoff(attempt, self._rng)
            if budget is not None:
                if not budget.affords(delay):
                    raise budget.spent_error() from exc
                budget.spent += delay
        log.warning(
            "%s %s %s: %s; retry %d/%d",
            self.name,
            call.method,
            call.path,
            type(exc).__name__,
            attempt,
            self.retry.attempts - 1,
        )
        if delay > 0:
            await self._sleep(delay)

    async def _attempt(self, call: Call) -> tuple[Any, httpx.Response]:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s %s headers=%s", self.name, call.method, call.path, redact_headers(call.headers))
        response = await self._transport_send(call)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s %s -> %d trace-id=%s remaining=%s",
                self.name,
                call.method,
                call.path,
                response.status_code,
                response.headers.get("trace-id"),
                response.headers.get("x-ratelimit-remaining"),
            )
        return self._interpret(call, response), response

    async def _transport_send(self, call: Call) -> httpx.Response:
        response = await self._request(call)
        # httpx binds the (already read) body stream back to its response: a reference cycle,
        # which kept every response and its body (57 MB for a WB statistics page) alive until a
        # GC pass, and streams pause the GC on purpose (tasks.context.run_stream). Cut, the
        # response is freed by reference counting as soon as we drop it.
        response.stream = httpx.ByteStream(b"")
        return response

    async def _request(self, call: Call) -> httpx.Response:
        try:
            return await self._client.request(
                call.method,
                call.path,
                params=call.params,
                json=call.json_body,
                data=call.form,
                headers=call.headers,
                auth=call.auth,  # type: ignore[arg-type]
            )
        except httpx.TimeoutException as exc:
            raise errors.NetworkError(f"{self.name}: timeout ({type(exc).__name__})", path=call.path) from exc
        except (httpx.TransportError, httpx.DecodingError) as exc:
            # Connection refused/reset, protocol errors, bodies cut short mid-stream.
            raise errors.NetworkError(f"{self.name}: transport error ({type(exc).__name__})", path=call.path) from exc

    def _interpret(self, call: Call, response: httpx.Response) -> Any:
        status, path = response.status_code, call.path
        if status == 429:
            raise errors.RateLimited(
                f"{self.name}: rate limited", retry_after=parse_retry_after(response), status=status, path=path
            )
        if status >= 500:
            raise errors.ServerError(f"{self.name}: server error", status=status, path=path)
        if status >= 400:
            custom = call.classify(response) if call.classify else None
            raise custom or default_classify(response)
        return self._decode(response, path)

    def _decode(self, response: httpx.Response, path: str) -> Any:
        if not response.content:
            return None
        try:
            with gc_paused():
                return decode_json(response.content)
        except ValueError as exc:
            # A 2xx body that does not parse is a body cut short: worth another try.
            raise errors.NetworkError(
                f"{self.name}: truncated or malformed JSON body", status=response.status_code, path=path
            ) from exc


async def gather_bounded(limit: int, factories: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Run coroutine factories with at most `limit` in flight; results in input order."""
    semaphore = asyncio.Semaphore(limit)

    async def run(factory: Callable[[], Awaitable[Any]]) -> Any:
        async with semaphore:
            return await factory()

    tasks = [asyncio.ensure_future(run(f)) for f in factories]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        # One failure ends the call: do not leave siblings running against the host.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
