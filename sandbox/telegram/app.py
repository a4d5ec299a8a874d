"""`create_app(config)`: the Bot API at `/bot{token}/{method}` (what aiogram's
`TelegramAPIServer.from_base(base)` calls) and the operator API under `/_telegram/`.

Answers are the Bot API's: `{"ok": true, "result": ...}` or `{"ok": false, "error_code",
"description", "parameters": {"retry_after"}}`. Parameters are read from the query string,
a JSON body, a form, or multipart (files referenced as `attach://name`), as Telegram does.
"""

from __future__ import annotations

import json
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from sandbox.telegram.methods import METHODS
from sandbox.telegram.operator import operator_router
from sandbox.telegram.state import BotApiError, TelegramConfig, TelegramWorld


def create_app(config: TelegramConfig | None = None, world: TelegramWorld | None = None) -> FastAPI:
    world = world or TelegramWorld(config)
    app = FastAPI(title="sellerpulse Telegram Bot API stand-in", docs_url="/_telegram/docs", redoc_url=None,
                  openapi_url="/_telegram/openapi.json")  # fmt: skip
    app.state.world = world

    @app.api_route("/bot{token}/{method}", methods=["GET", "POST"], include_in_schema=False)
    async def bot_api(token: str, method: str, request: Request) -> Response:
        if token != world.config.token:
            return _error(BotApiError(401, "Unauthorized"))
        handler = METHODS.get(method.lower())
        if handler is None:
            return _error(BotApiError(404, "Not Found: method not found"))
        world.count(method)
        try:
            params = await _params(request)
            result = await handler(world, params)
        except BotApiError as exc:
            world.count(f"{method}:{exc.code}")
            return _error(exc)
        return JSONResponse({"ok": True, "result": result})

    @app.get("/")
    async def root() -> Response:
        return JSONResponse({"status": "ok", "stand_in": "telegram", "bot": world.config.bot_username})

    app.include_router(operator_router())
    return app


def _error(exc: BotApiError) -> Response:
    body: dict[str, Any] = {"ok": False, "error_code": exc.code, "description": exc.description}
    if exc.retry_after is not None:
        body["parameters"] = {"retry_after": exc.retry_after}
    return JSONResponse(body, status_code=exc.code)


async def _params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query_params)
    raw = await request.body()
    kind = request.headers.get("content-type", "")
    if not raw:
        return params
    if kind.startswith("application/json"):
        try:
            body = json.loads(raw)
        except ValueError:
            raise BotApiError(400, "Bad Request: can't parse JSON body") from None
        if not isinstance(body, dict):
            raise BotApiError(400, "Bad Request: the body must be a JSON object")
        params.update(body)
    elif kind.startswith("multipart/form-data"):
        params.update(_multipart(kind, raw))
    else:
        params.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    for name, value in list(params.items()):
        if isinstance(value, str) and value.startswith("attach://"):
            attached = params.get(value.removeprefix("attach://"))
            if not isinstance(attached, bytes):
                raise BotApiError(400, f"Bad Request: file {value} not found in the request")
            params[name] = attached
    return params


def _multipart(content_type: str, raw: bytes) -> dict[str, Any]:
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
    out: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        out[str(name)] = payload if part.get_filename() else payload.decode("utf-8", "replace")
    return out
