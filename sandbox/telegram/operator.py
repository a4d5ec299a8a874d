"""Operator endpoints under `/_telegram/` (never flood-limited): act as a user, read chats,
make users block the bot, start 429 storms, read counters. JSON in, JSON out.

    POST /_telegram/users/{id}/messages   {"text", "first_name"?, "username"?, "language_code"?}
    POST /_telegram/users/{id}/press      {"button": "visible text"} | {"data": "..."}, "message_id"?
    POST /_telegram/users/{id}/state      {"state": "active" | "blocked" | "gone"}
    POST /_telegram/users                 {"users": [{"id", "first_name"?, ...}]}: users who started the bot
    GET  /_telegram/chats/{id}?after=SEQ  that chat's transcript (both sides)
    GET  /_telegram/chats                 every chat's transcript
    POST /_telegram/storm                 {"requests"?: N, "seconds"?: S, "retry_after"?: R, "probability"?: p}
    POST /_telegram/calm                  end a storm
    POST /_telegram/photo-hosts/failing   {"hosts": [...]}: photo URLs there cannot be fetched
    GET  /_telegram/stats                 calls per method (and per error), refused sends, commands set
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from sandbox.operator import _body, _err  # the marketplace sandbox's: one JSON in/out shape
from sandbox.telegram.state import TelegramWorld

PROFILE = ("first_name", "username", "last_name", "language_code")


def _world(request: Request) -> TelegramWorld:
    return request.app.state.world


def _profile(body: dict[str, Any]) -> dict[str, Any]:
    return {k: str(body[k]) for k in PROFILE if isinstance(body.get(k), str)}


def operator_router() -> APIRouter:
    r = APIRouter(prefix="/_telegram")

    @r.post("/users/{user_id}/messages")
    async def say(user_id: int, request: Request) -> Response:
        body = await _body(request)
        text = body.get("text")
        if not isinstance(text, str) or not text:
            return _err(400, "text: a non-empty string")
        return JSONResponse(_world(request).say(user_id, text, **_profile(body)))

    @r.post("/users/{user_id}/press")
    async def press(user_id: int, request: Request) -> Response:
        body = await _body(request)
        button, data, message_id = body.get("button"), body.get("data"), body.get("message_id")
        if not isinstance(button, str) and not isinstance(data, str):
            return _err(400, "send `button` (its visible text) or `data` (its callback data)")
        try:
            pressed = _world(request).press(
                user_id,
                message_id=message_id if isinstance(message_id, int) else None,
                data=data if isinstance(data, str) else None,
                button=button if isinstance(button, str) else None,
            )
        except LookupError as exc:
            return _err(404, str(exc))
        return JSONResponse(pressed)

    @r.post("/users/{user_id}/state")
    async def state(user_id: int, request: Request) -> Response:
        body = await _body(request)
        try:
            user = _world(request).set_state(user_id, str(body.get("state")))
        except ValueError as exc:
            return _err(400, str(exc))
        return JSONResponse({"id": user.id, "state": user.state})

    @r.post("/users")
    async def add_users(request: Request) -> Response:
        body = await _body(request)
        users = body.get("users")
        if not isinstance(users, list) or not all(isinstance(u, dict) and isinstance(u.get("id"), int) for u in users):
            return _err(400, "users: a list of {id, first_name?, username?, language_code?}")
        world = _world(request)
        for u in users:
            world.user(u["id"], started=True, **_profile(u))
        return JSONResponse({"users": len(users)})

    @r.get("/chats/{chat_id}")
    async def transcript(chat_id: int, request: Request, after: int = 0) -> Response:
        entries = _world(request).transcript(chat_id, after=after)
        return JSONResponse({"chat_id": chat_id, "messages": [e.as_json() for e in entries]})

    @r.get("/chats")
    async def chats(request: Request) -> Response:
        found = _world(request).all_chats()
        return JSONResponse({str(c): [e.as_json() for e in entries] for c, entries in found.items()})

    @r.post("/storm")
    async def storm(request: Request) -> Response:
        body = await _body(request)
        try:
            requests = int(body.get("requests", 0))
            seconds = float(body.get("seconds", 0))
            retry_after = int(body.get("retry_after", 1))
            probability = float(body.get("probability", 1.0))
        except (TypeError, ValueError):
            return _err(400, "requests, seconds, retry_after, probability: numbers")
        if requests <= 0 and seconds <= 0:
            return _err(400, "send `requests` (how many sends) or `seconds` (how long)")
        _world(request).flood.storm(
            requests=requests, seconds=seconds, retry_after=retry_after, probability=max(0.0, min(1.0, probability))
        )
        return JSONResponse({"storm": True})

    @r.post("/calm")
    async def calm(request: Request) -> Response:
        _world(request).flood.calm()
        return JSONResponse({"storm": False})

    @r.post("/photo-hosts/failing")
    async def failing_hosts(request: Request) -> Response:
        hosts = (await _body(request)).get("hosts")
        if not isinstance(hosts, list):
            return _err(400, "hosts: a list of host names")
        world = _world(request)
        world.failing_photo_hosts = {str(h) for h in hosts}
        return JSONResponse({"hosts": sorted(world.failing_photo_hosts)})

    @r.get("/stats")
    async def stats(request: Request) -> Response:
        world = _world(request)
        return JSONResponse(
            {
                "calls": dict(sorted(world.counts.items())),
                "refused_429": world.flood.refused,
                "commands": world.commands,
                "users": len(world.users),
                "pending_updates": world.pending_updates(),
            }
        )

    return r
