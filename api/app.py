"""The FastAPI application: the interface the Telegram bot and operators use.

`create_app` takes every collaborator as an optional argument so tests (and the sync
pipeline) can plug in their own; the defaults come from the settings.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import lru_cache, partial
from typing import Any

import anyio.to_thread
import psycopg
from fastapi import FastAPI
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from api import errors, openapi, throttle
from api.admission import DbSlots, threads_for
from api.docs import install_offline_docs
from api.fastpath import LoopConnection, PollFastPath
from api.limits import BodyLimit
from api.routes import data, delivery, health, notifications, people, settings, sharing, shops, sync
from api.services import (
    AllegroLoginStarter,
    ConnectorWbVerifier,
    Delivery,
    DeviceFlowLoginStarter,
    PrefectSyncLauncher,
    SyncLauncher,
    WbTokenVerifier,
    default_delivery,
)
from connectors.allegro.auth import AllegroAuth
from sellerpulse import __version__
from sellerpulse.settings import Settings, get_settings
from storage.db import get_target
from storage.ratelimit import shared_buckets

API_PREFIX = "/api/v1"

DESCRIPTION = """
The interface of sellerpulse for the Telegram bot and operators.

A bot authenticates with an API key (header `X-API-Key`) and acts for people identified by
`telegram_id`; everything a person can see or change is limited to the shops they belong to.
Errors always have the shape `{"error": {"code", "message", "details"}}`.
"""


API_APPLICATION_NAME = "sellerpulse-api"  # how its connections show in pg_stat_activity
# A database that does not answer a connection attempt within this is down (libpq's minimum is 2).
API_CONNECT_TIMEOUT_SECONDS = 2


def _connect_args(settings: Settings) -> dict[str, Any]:
    return {
        "connect_timeout": API_CONNECT_TIMEOUT_SECONDS,
        "application_name": API_APPLICATION_NAME,
        # An interactive API has no business waiting longer; the poll runs on the event loop.
        # No JIT: the poll's and the batch poll's statements are estimated past jit_above_cost
        # on a small database, and PostgreSQL (built with LLVM, as Debian's and the official
        # image are) compiled them on every call: ~100-190 ms of its CPU each, where they run
        # in well under a millisecond (tests/api/test_concurrency.py: 21-23 s of it -> 1.5 s).
        "options": f"-c statement_timeout={settings.api_statement_timeout_ms} -c jit=off",
    }


@lru_cache(maxsize=1)
def api_engine() -> Engine:
    """Per worker process: API_POOL_SIZE connections for requests (api.admission lets no more
    requests than that hold one), API_POOL_MAX_OVERFLOW more for background work. No pre-ping:
    it would cost a round trip per request; connections are recycled instead, and a dropped one
    is discarded by the pool on its first error (and every older one with it)."""
    settings = get_settings()
    return create_engine(
        get_target().url,
        pool_size=settings.api_pool_size,
        max_overflow=settings.api_pool_max_overflow,
        pool_timeout=settings.api_pool_timeout_seconds,
        pool_recycle=600,
        connect_args=_connect_args(settings),
    )


@lru_cache(maxsize=1)
def _unpooled_engine() -> Engine:
    return create_engine(get_target().url, poolclass=NullPool, connect_args=_connect_args(get_settings()))


def loop_connect() -> psycopg.Connection[Any]:
    """The fast path's connection (api.fastpath.LoopConnection): the API engine's options, one
    connection more per worker, never one of the request pool's (a first poll must not wait
    behind the requests holding them). Detached: ours until closed."""
    proxy = _unpooled_engine().raw_connection()
    conn: psycopg.Connection[Any] = proxy.driver_connection  # before detach: it forgets it
    proxy.detach()
    return conn


# The bot's poll first: routes are matched in order, and it is by far the most frequent request.
ROUTERS = (notifications, health, people, settings, shops, data, sync, delivery, sharing)


def create_app(
    *,
    settings: Settings | None = None,
    engine: Engine | None = None,
    session_factory: Callable[[], Session] | None = None,
    wb_verifier: WbTokenVerifier | None = None,
    allegro_login: AllegroLoginStarter | None = None,
    sync_launcher: SyncLauncher | None = None,
    delivery: Delivery | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    engine_of: Callable[[], Engine] = (lambda: engine) if engine is not None else api_engine
    # The app as uvicorn serves it (its own engine), not one a test or the pipeline wired up.
    served = engine is None and session_factory is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A thread for every request holding a slot (api.admission) and a few more: more would
        # only wait, and on a small machine every extra runnable thread costs context switches.
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads_for(settings.api_pool_size)
        if served:
            # What exists now (modules, the app and its models: ~200k objects) lives as long as
            # the worker. Frozen, it is no longer walked by the collector's full passes: one
            # took ~100 ms under load, stalling every request the worker held (the p99).
            gc.collect()
            gc.freeze()
        yield
        if app.state.poll_connection is not None:
            app.state.poll_connection.close()
        closer = getattr(app.state.allegro_login, "aclose", None)
        if closer is not None:
            await closer()

    app = FastAPI(
        title="sellerpulse API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served offline by api.docs, not from a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.db_slots = DbSlots(settings.api_pool_size, settings.api_pool_timeout_seconds)
    install_offline_docs(app)
    app.state.engine = engine_of() if engine is not None else _LazyEngine()
    app.state.sessionmaker = session_factory or _LazySessionmaker(engine_of)
    # The poll is read-only (plus at most one self-contained key touch): in autocommit it saves
    # the BEGIN and COMMIT round trips, two of its three trips to the database.
    app.state.read_sessionmaker = session_factory or _LazySessionmaker(engine_of, autocommit=True)
    # Plain polls run on the event loop (api.fastpath), on a connection of their own; only with
    # the app's own engine, whose statement timeout bounds how long the loop can block.
    app.state.poll_connection = LoopConnection(loop_connect) if served else None
    app.state.wb_verifier = wb_verifier or ConnectorWbVerifier(settings)
    app.state.allegro_login = allegro_login or DeviceFlowLoginStarter(
        engine=engine_of,
        auth_factory=partial(AllegroAuth.from_settings, settings, registry=shared_buckets(settings)),
        per_person=settings.allegro_pending_logins_per_person,
        overall=settings.allegro_pending_logins_max,
    )
    app.state.sync_launcher = sync_launcher or PrefectSyncLauncher()
    app.state.delivery = delivery or default_delivery()
    errors.install(app, on_auth_failure=throttle.after_request)
    app.add_middleware(PollFastPath)
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes)  # the outermost: first to run
    for module in ROUTERS:
        app.include_router(module.router, prefix=API_PREFIX)
    openapi.install(app)
    return app


class _LazySessionmaker:
    """Connects on first use, so building the app (e.g. for /openapi.json) needs no database."""

    def __init__(self, engine: Callable[[], Engine], *, autocommit: bool = False) -> None:
        self._engine = engine
        self._autocommit = autocommit
        self._factory: sessionmaker[Session] | None = None

    def __call__(self) -> Session:
        if self._factory is None:
            engine = self._engine()
            if self._autocommit:
                engine = engine.execution_options(isolation_level="AUTOCOMMIT")  # type: ignore[assignment]
            self._factory = sessionmaker(engine, expire_on_commit=False)
        return self._factory()


class _LazyEngine:
    def __getattr__(self, name: str) -> object:
        return getattr(api_engine(), name)
