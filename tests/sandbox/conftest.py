"""Sandbox test fixtures: the app in-process through `SandboxTransport`."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from sandbox import SandboxConfig, create_app
from sandbox.transport import SandboxTransport
from sandbox.world import World
from sellerpulse.processes import free_port, stop

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


@contextmanager
def served_sandbox(*options: str, until: str) -> Iterator[tuple[dict[str, str], str]]:
    """`python -m sandbox` (the real entry point) on a free port: the settings it prints, read up
    to the line of `until`, and its base URL once it answers; stopped afterwards."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", str(port), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        env: dict[str, str] = {}
        assert proc.stdout is not None
        while until not in env:
            key, _, value = proc.stdout.readline().strip().partition("=")
            assert key, "sandbox exited early"
            env[key] = value
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                assert httpx.get(base + "/").json()["status"] == "ok"
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "sandbox did not come up"
                time.sleep(0.05)  # polling a server that is starting up, not waiting for a result
        yield env, base
    finally:
        stop(proc, grace=10)


@pytest.fixture(scope="session", autouse=True)
def _settings_env() -> None:
    """Overrides the root autouse fixture: the sandbox needs no database, so
    its tests neither start PostgreSQL nor depend on one being available."""
    return None
