"""Sandbox test fixtures: the app in-process through `SandboxTransport`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from sandbox import SandboxConfig, create_app
from sandbox.transport import SandboxTransport
from sandbox.world import World

ALLEGRO_ACCEPT = "application/vnd.allegro.public.v1+json"
ALLEGRO_BETA = "application/vnd.allegro.beta.v1+json"


@pytest.fixture
def make_app() -> Callable[..., FastAPI]:
    def factory(**overrides: Any) -> FastAPI:
        return create_app(replace(SandboxConfig(), **overrides))

    return factory


@pytest.fixture
def app(make_app: Callable[..., FastAPI]) -> FastAPI:
    return make_app()


@pytest.fixture
def world(app: FastAPI) -> World:
    return app.state.world


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=SandboxTransport(app=app), base_url="http://sandbox") as c:
        yield c


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=SandboxTransport(app=app), base_url="http://sandbox")


def wb_headers(world: World, shop: str = "wb1") -> dict[str, str]:
    return {"Authorization": world.wb_token(shop)}


def allegro_headers(world: World, shop: str = "allegro1", accept: str = ALLEGRO_ACCEPT) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.allegro_pair(shop).access_token}", "Accept": accept}


@pytest.fixture(scope="session", autouse=True)
def _settings_env() -> None:
    """Overrides the root autouse fixture: the sandbox needs no database, so
    its tests neither start PostgreSQL nor depend on one being available."""
    return None
