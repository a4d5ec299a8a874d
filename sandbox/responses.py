"""Response helpers: the error shapes of each marketplace, JSON encoding."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from starlette.responses import Response

from sandbox.ratelimit import Decision, seconds_header
from sandbox.timefmt import utc_z

ALLEGRO_PUBLIC = "application/vnd.allegro.public.v1+json"
ALLEGRO_BETA = "application/vnd.allegro.beta.v1+json"
PROBLEM = "application/problem+json"


# One encoder, built once: `json.dumps` with options builds a new one on every call, and the
# statistics rows are encoded by the hundred thousand (the bytes are the same).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(body: Any) -> bytes:
    return _ENCODER.encode(body).encode()


def json_response(
    body: Any, status: int = 200, media_type: str = "application/json", headers: dict[str, str] | None = None
) -> Response:
    return Response(dumps(body), status_code=status, media_type=media_type, headers=headers)


def json_array_chunks(rows: Iterable[dict[str, Any]], chunk: int = 250) -> Iterator[bytes]:
    """Stream a JSON array without holding it: memory is one chunk of rows. Each chunk is
    encoded as one list (its brackets cut off): the same bytes as the rows joined by commas."""
    yield b"["
    first = True
    buf: list[dict[str, Any]] = []
    for row in rows:
        buf.append(row)
        if len(buf) >= chunk:
            yield (b"" if first else b",") + _ENCODER.encode(buf)[1:-1].encode()
            first, buf = False, []
    if buf:
        yield (b"" if first else b",") + _ENCODER.encode(buf)[1:-1].encode()
    yield b"]"


# -- WB ------------------------------------------------------------------------
def wb_problem(
    status: int, title: str, detail: str, now: float, origin: str, headers: dict[str, str] | None = None
) -> Response:
    body = {
        "title": title,
        "detail": detail,
        "code": uuid.uuid4().hex[:12],
        "requestId": uuid.uuid4().hex,
        "origin": origin,
        "status": status,
        "statusText": {
            401: "Unauthorized",
            429: "Too Many Requests",
            503: "Service Unavailable",
            504: "Gateway Timeout",
        }.get(status, "Error"),
        "timestamp": utc_z(now),
    }
    return json_response(body, status, PROBLEM, headers)


def wb_429(decision: Decision, now: float, origin: str) -> Response:
    headers = {
        "X-Ratelimit-Retry": seconds_header(decision.retry_after),
        "X-Ratelimit-Limit": str(decision.limit),
        "X-Ratelimit-Reset": seconds_header(decision.reset_after),
    }
    return wb_problem(429, "too many requests", "Limited by sandbox token bucket", now, origin, headers)


def wb_bad_request(detail: str) -> Response:
    return json_response({"title": "bad request", "detail": detail, "status": 400, "errors": [detail]}, 400)


# -- Allegro ---------------------------------------------------------------------
def allegro_error(
    status: int,
    code: str,
    message: str,
    path: str | None = None,
    media_type: str = ALLEGRO_PUBLIC,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {
        "errors": [
            {"code": code, "message": message, "details": None, "path": path, "userMessage": message, "metadata": {}}
        ]
    }
    return json_response(body, status, media_type, headers)


def oauth_error(status: int, error: str, description: str) -> Response:
    return json_response({"error": error, "error_description": description}, status)
