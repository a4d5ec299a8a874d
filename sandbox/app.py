"""`create_app(config)`: one ASGI app serving every marketplace host under its
own prefix, plus `/_sandbox/` operator endpoints and `GET /`.

The world is at `app.state.world` (a `sandbox.world.World`)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import Response

from sandbox.allegro.api_routes import api_router
from sandbox.allegro.auth_routes import auth_router
from sandbox.config import SandboxConfig
from sandbox.faults import HOSTS
from sandbox.middleware import MarketplaceMiddleware
from sandbox.operator import operator_router
from sandbox.responses import json_response
from sandbox.timefmt import utc_z
from sandbox.wb.routes import analytics_router, content_router, feedbacks_router, marketplace_router, statistics_router
from sandbox.world import World

PREFIXES = {f"/{h}" for h in HOSTS}


def create_app(config: SandboxConfig | None = None) -> FastAPI:
    config = config or SandboxConfig()
    world = World(config)
    app = FastAPI(
        title="sellerpulse marketplace sandbox",
        docs_url="/_sandbox/docs",
        openapi_url="/_sandbox/openapi.json",
        redoc_url=None,
    )
    app.state.world = world
    for router in (
        auth_router(),
        api_router(),
        statistics_router(),
        analytics_router(),
        feedbacks_router(),
        content_router(),
        marketplace_router(),
        operator_router(),
    ):
        app.include_router(router)

    @app.get("/")
    async def root(request: Request) -> Response:
        return json_response(
            {
                "status": "ok",
                "sandbox": "sellerpulse",
                "scenario": world.scenario.name,
                "now": utc_z(world.now()),
                "hosts": list(HOSTS),
            }
        )

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Exception) -> Response:
        # Unknown paths answer in the shape of the host they fall under.
        return json_response(
            {"errors": [{"code": "NOT_FOUND", "message": f"no such resource: {request.url.path}"}]}, 404
        )

    app.add_middleware(MarketplaceMiddleware, world=world)
    return app
