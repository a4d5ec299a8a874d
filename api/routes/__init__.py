"""Routers, one per area, all mounted under /api/v1 by api.app."""

from typing import Any

from api.schemas import ErrorResponse


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error responses a route can give (all in the one error shape)."""
    text = {
        401: "missing, unknown or revoked API key",
        403: "not allowed for this person's role",
        404: "no such person or shop, or not this person's",
        409: "conflict",
        413: "the request body is too large",
        422: "invalid input (field errors in details)",
        429: "too many failed authentications from this address (see Retry-After)",
        503: "the database or another dependency is unavailable; try again after Retry-After seconds",
    }
    return {s: {"model": ErrorResponse, "description": text.get(s, "error")} for s in statuses}


# Every route that checks a key and reads the database can answer these.
AUTHED = (401, 404, 422, 429, 503)
