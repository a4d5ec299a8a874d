"""The one place that sends HTTP: a long-lived ``httpx.AsyncClient`` per host with
explicit timeouts, proactive buckets, reactive retries and error translation.

Marketplace clients build a :class:`HostClient` per host and call :meth:`HostClient.send`
with a ready :class:`Call`. Policy per failure:

* 429: wait ``X-Ratelimit-Retry`` (WB), else ``Retry-After``, else exponential backoff
  with jitter; the wait also pauses the shared bucket. Retried up to the cap.
* 5xx, timeouts, connection errors, truncated/undecodable JSON: backoff with jitter, capped.
* 401: :class:`CredentialsRejected` at once (never retried: it is not going to change).
* other 4xx: :class:`BadRequest` / :class:`NotFound`, not retried.

Secrets only ever travel in headers or form bodies, never in URLs, and error messages
are built from the status, the path and the marketplace's error codes only.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from connectors import errors
from connectors.parsing import decode_json, gc_paused
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
        max_connections: int = 20,
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

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> HostClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def send(self, call: Call) -> tuple[Any, httpx.Response]:
        """Send with retries; return (decoded JSON body or None, final response)."""
        attempt = 0
        while True:
            try:
                return await self._attempt(call)
            except errors.TransientError as exc:
                attempt += 1
                if attempt >= self.retry.attempts:
                    raise
                await self._wait_before_retry(call, exc, attempt)

    async def _wait_before_retry(self, call: Call, exc: errors.TransientError, attempt: int) -> None:
        if isinstance(exc, errors.RateLimited) and exc.retry_after is not None:
            if exc.retry_after > self.retry.max_rate_limit_wait:
                raise exc
            delay = exc.retry_after
            if call.bucket is not None:
                # Pause everyone on this bucket; acquire() then waits exactly until then.
                call.bucket.pause_for(delay)
                delay = 0.0
        else:
            delay = self.retry.backoff(attempt, self._rng)
        log.warning(
            "%s %s %s: %s; retry %d/%d", self.name, call.method, call.path,
            type(exc).__name__, attempt, self.retry.attempts - 1,
        )
        if delay > 0:
            await self._sleep(delay)

    async def _attempt(self, call: Call) -> tuple[Any, httpx.Response]:
        if call.bucket is not None:
            await call.bucket.acquire(self._sleep)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s %s headers=%s", self.name, call.method, call.path, redact_headers(call.headers))
        response = await self._transport_send(call)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s %s -> %d trace-id=%s remaining=%s", self.name, call.method, call.path,
                      response.status_code, response.headers.get("trace-id"),
                      response.headers.get("x-ratelimit-remaining"))
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
                call.method, call.path, params=call.params, json=call.json_body,
                data=call.form, headers=call.headers, auth=call.auth,  # type: ignore[arg-type]
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
