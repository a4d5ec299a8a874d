"""Allegro auth host: `/auth/oauth/device` and `/auth/oauth/token`.

Basic auth with the client id and secret on both; parameters only in a form
body (a query string is refused, as since August 2025); GET is 405.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from starlette.responses import Response

from sandbox.allegro.oauth import DEVICE_TTL, OAuthError, TokenPair
from sandbox.responses import json_response, oauth_error
from sandbox.world import World

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def auth_router() -> APIRouter:
    router = APIRouter(prefix="/allegro-auth")

    @router.post("/auth/oauth/device")
    async def device(request: Request) -> Response:
        world: World = request.app.state.world
        checked = await _check(request, world)
        if isinstance(checked, Response):
            return checked
        client_id, form = checked
        if form.get("client_id", client_id) != client_id:
            return oauth_error(400, "invalid_request", "client_id does not match the authenticated client")
        grant = world.auth.start_device(client_id, world.now())
        base = str(request.base_url).rstrip("/") + "/allegro-auth"
        code = grant.user_code
        return json_response(
            {
                "device_code": grant.device_code,
                "user_code": code,
                "verification_uri": f"{base}/skojarz-aplikacje",
                "verification_uri_complete": f"{base}/skojarz-aplikacje?code={code}",
                "expires_in": DEVICE_TTL,
                "interval": grant.interval,
            }
        )

    @router.post("/auth/oauth/token")
    async def token(request: Request) -> Response:
        world: World = request.app.state.world
        checked = await _check(request, world)
        if isinstance(checked, Response):
            return checked
        client_id, form = checked
        try:
            pair = _grant(world, client_id, form)
        except OAuthError as exc:
            return oauth_error(exc.status, exc.error, exc.description)
        ctx = request.scope.get("sandbox_ctx", {})
        ctx["token_id"], ctx["shop"] = pair.jti, pair.shop
        if form.get("grant_type") == "refresh_token" and world.faults.roll(
            "allegro-auth", "reuse", ctx.get("request_no", 0)
        ):
            ctx["reset"] = True  # the rotation happened; the answer is lost
        return json_response(pair.token_response())

    @router.get("/auth/oauth/token")
    async def token_get() -> Response:
        return oauth_error(405, "invalid_request", "GET is not supported; POST a form body")

    @router.get("/skojarz-aplikacje")
    async def verification_page(request: Request) -> Response:
        return Response("Sandbox: approve with `sellerpulse sandbox approve CODE`.", media_type="text/plain")

    return router


def _grant(world: World, client_id: str, form: dict[str, str]) -> TokenPair:
    grant_type = form.get("grant_type")
    now = world.now()
    if grant_type == DEVICE_GRANT:
        return world.auth.poll(form.get("device_code", ""), client_id, now)
    if grant_type == "refresh_token":
        return world.auth.refresh(form.get("refresh_token", ""), client_id, now)
    raise OAuthError("unsupported_grant_type", f"Unsupported grant type: {grant_type}")


async def _check(request: Request, world: World) -> tuple[str, dict[str, str]] | Response:
    if request.url.query:
        return oauth_error(400, "invalid_request", "Query parameters are not accepted; send a form body")
    client = _basic(request.headers.get("authorization", ""))
    if client is None:
        return oauth_error(401, "unauthorized", "Full authentication is required to access this resource")
    if client != (world.client_id, world.client_secret):
        return oauth_error(401, "invalid_client", "Bad client credentials")
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        return oauth_error(400, "invalid_request", "Expected an application/x-www-form-urlencoded body")
    form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
    return client[0], form


def _basic(header: str) -> tuple[str, str] | None:
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None
