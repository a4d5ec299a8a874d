"""One error shape for every failure: `{"error": {"code", "message", "details"}}`.

FastAPI's own 404/405/422 and any unexpected exception are rewritten into it; a 500 says
nothing about internals (the traceback goes to the log, which never carries secrets either:
exceptions from the connectors and storage are built without them).

The database being unreachable, restarting, over the statement timeout, or every pooled
connection busy past the pool timeout is a 503 `unavailable` with `Retry-After`, whichever
layer noticed it (SQLAlchemy, or the driver itself on the poll's fast path): never a 500.
A 405 lists in `Allow` every method the path has, not just those of the first route on it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

log = logging.getLogger("sellerpulse.api")

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


# How long a client should wait before trying again after a 503 (the database restarting).
RETRY_AFTER_SECONDS = 2

# Everything that means "the database cannot answer now", from SQLAlchemy or from the driver
# (the poll's fast path talks to psycopg directly). TimeoutError: no pooled connection in time.
DATABASE_DOWN: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


class ApiError(Exception):
    """An error the API answers on purpose."""

    def __init__(
        self, status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details
        self.headers = headers

    def response(self) -> JSONResponse:
        return error_response(self.status, self.code, self.message, self.details, self.headers)


def not_found(what: str) -> ApiError:
    # One message for "does not exist" and "not yours": ids must not be probeable.
    return ApiError(404, "not_found", f"{what} not found")


def database_unavailable() -> ApiError:
    # Unreachable, restarting, or a statement over the timeout: nothing the client did wrong.
    return ApiError(
        503,
        "unavailable",
        "the database is busy or unreachable; try again",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def is_database_down(exc: BaseException) -> bool:
    if isinstance(exc, DATABASE_DOWN):
        return True
    # Any driver error SQLAlchemy saw on a connection it then dropped (a disconnect).
    return isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated


def error_response(status: int, code: str, message: str, details: Any = None, headers: Any = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details}}
    return JSONResponse(body, status_code=status, headers=headers)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only where and why: pydantic's `input` would echo what was sent, tokens included.
    return [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": e.get("type", "")}
        for e in exc.errors()
    ]


# Given a failed authentication (401), says how to answer it: api.throttle's, set by install.
AuthFailureHook = Callable[[Any, Scope, ApiError], Awaitable[ApiError]]


def _api_error_handler(on_auth_failure: AuthFailureHook | None) -> Callable[..., Awaitable[JSONResponse]]:
    async def _api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        if exc.status == 401 and on_auth_failure is not None:
            exc = await on_auth_failure(request.app.state, request.scope, exc)
        return exc.response()

    return _api_error


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI's only 400 is a body it could not parse: bad input, answered like any other (422).
        return error_response(422, "invalid_request", "the request body could not be parsed")
    code = HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:
        allowed = allowed_methods(request)
        headers = {**(headers or {}), "Allow": ", ".join(allowed)}
        message = f"{request.method} is not allowed here; allowed: {', '.join(allowed)}"
    return error_response(exc.status_code, code, message, None, headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app serves at this path (Starlette's own 405 names only
    those of the first route matching the path, and FastAPI has a route per method)."""
    # The most literal routes only: /shops/1/sync/backfill is the backfill's path, not a run id.
    found: dict[int, set[str]] = {}
    for route in _leaf_routes(request.app.router.routes):
        match, child = route.matches(request.scope)
        if match is not Match.NONE:
            params = len(child.get("path_params", {}))
            found.setdefault(params, set()).update(getattr(route, "methods", None) or set())
    return sorted(found[min(found)]) if found else []


def _leaf_routes(routes: Iterable[Any]) -> Iterator[Any]:
    # FastAPI keeps an included router as one entry whose routes carry its prefix.
    for route in routes:
        candidates = getattr(route, "effective_candidates", None)
        if callable(candidates):
            yield from _leaf_routes(candidates())
        else:
            yield route


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "invalid_request", "the request is not valid", _field_errors(exc))


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    # A value the database refuses (validation should have caught it): the client's fault, not ours.
    log.warning("database refused a value on %s %s: %s", request.method, request.url.path, type(exc.orig).__name__)
    return error_response(422, "invalid_value", "a value is out of range or malformed")


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    cause = getattr(exc, "orig", None) or exc
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, type(cause).__name__)
    return database_unavailable().response()


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    if is_database_down(exc):
        return await _database_unavailable(request, exc)
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal error")


def install(app: FastAPI, *, on_auth_failure: AuthFailureHook | None = None) -> None:
    app.add_exception_handler(ApiError, _api_error_handler(on_auth_failure))
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(sa_exc.DataError, _data_error)
    for kind in DATABASE_DOWN:
        app.add_exception_handler(kind, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected)
