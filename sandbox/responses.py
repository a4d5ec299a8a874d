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


def dumps(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def json_response(
    body: Any, status: int = 200, media_type: str = "application/json", headers: dict[str, str] | None = None
) -> Response:
    return Response(dumps(body), status_code=status, media_type=media_type, headers=headers)


def json_array_chunks(rows: Iterable[dict[str, Any]], chunk: int = 1000) -> Iterator[bytes]:
    """Stream a JSON array without holding it: memory is one chunk of rows."""
    yield b"["
    first = True
    buf: list[str] = []
    for row in rows:
        buf.append(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
        if len(buf) >= chunk:
            yield ((b"" if first else b",") + ",".join(buf).encode())
            first, buf = False, []
    if buf:
        yield ((b"" if first else b",") + ",".join(buf).encode())
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
