"""Sync fixtures: the sandbox in-process, connector clients pointed at it, shops in PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from connectors.http import Timeouts
from connectors.ratelimit import RateLimits
from sandbox import SandboxConfig, create_app
from sandbox.cli import URL_KEYS
from sandbox.transport import SandboxTransport
from sandbox.world import World
from sellerpulse.settings import get_settings
from storage.shops import create_shop
from tasks.clients import Clients, set_client_factory

SANDBOX = "http://sandbox"


def sandbox_settings(**overrides: Any):
    urls = {key.lower(): f"{SANDBOX}/{host}" for host, key in URL_KEYS.items()}
    return get_settings().model_copy(update={**urls, **overrides})


def make_sandbox(**overrides: Any) -> FastAPI:
    return create_app(replace(SandboxConfig(rate_limits=False), **overrides))


async def _no_sleep(seconds: float) -> None:  # retries back off without waiting in tests
    return None


def clients_for(
    app: FastAPI,
    *,
    transport: Any = None,
    skew: float = 0.0,
    timeouts: Timeouts | None = None,
    **settings_overrides: Any,
) -> Clients:
    """Clients on the in-process sandbox (or on `transport`, a SandboxTransport of that app);
    `skew`: seconds our clock runs ahead of the marketplace's."""
    world: World = app.state.world
    settings = sandbox_settings(
        allegro_client_id=world.client_id,
        allegro_client_secret=world.client_secret,
        **settings_overrides,
    )
    return Clients.from_settings(
        settings,
        transport=transport or SandboxTransport(app=app),
        limits=RateLimits.unlimited(),
        now=(lambda: world.now_dt() + timedelta(seconds=skew)) if skew else world.now_dt,
        sleep=_no_sleep,
        **({"timeouts": timeouts} if timeouts else {}),
    )


@pytest.fixture
def sandbox_app() -> FastAPI:
    return make_sandbox()


@pytest.fixture
def world(sandbox_app: FastAPI) -> World:
    return sandbox_app.state.world


@pytest.fixture
async def clients(sandbox_app: FastAPI) -> AsyncIterator[Clients]:
    c = clients_for(sandbox_app)
    set_client_factory(lambda: clients_for(sandbox_app))
    yield c
    set_client_factory(None)
    await c.aclose()


def add_shops(engine: Engine, world: World) -> dict[str, int]:
    """One sellerpulse shop per sandbox shop, credentials as the sandbox issued them."""
    ids = {}
    with Session(engine) as session, session.begin():
        for name in world.shop_names():
            if world.marketplace_of(name) == "wb":
                shop = create_shop(session, marketplace="wb", name=name, credentials={"token": world.wb_token(name)})
            else:
                pair = world.allegro_pair(name)
                creds = {"access_token": pair.access_token, "refresh_token": pair.refresh_token}
                expires = datetime.fromtimestamp(pair.access_expires, UTC)
                shop = create_shop(
                    session, marketplace="allegro", name=name, credentials=creds, token_expires_at=expires
                )
            ids[name] = shop.id
    return ids


@pytest.fixture
def shops(clean_engine: Engine, world: World) -> Iterator[dict[str, int]]:
    yield add_shops(clean_engine, world)
