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
        422: "invalid input (field errors in details)",
        503: "a dependency is unavailable; try again",
    }
    return {s: {"model": ErrorResponse, "description": text.get(s, "error")} for s in statuses}


AUTHED = (401, 404, 422)
