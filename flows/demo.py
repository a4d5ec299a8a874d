"""`sellerpulse demo`: the whole product on one machine, on the sandbox.

In its own data dir (flows/demo_setup.py: never a real install's): embedded PostgreSQL, the
marketplace sandbox (device codes approved at once), a local Prefect server with its UI, a demo
owner with the sandbox's WB shops connected by token and its Allegro shops through the device
flow, the bot API, and every deployment served on its schedule. Ctrl-C (or SIGTERM) stops
everything it started.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy.orm import Session

from flows import demo_bot
from flows.connect import begin_login, complete_login
from flows.local_server import uvicorn_thread
from flows.prefect_server import free_port, prefect_server
from flows.serve import serve_deployments
from sandbox.app import create_app
from sandbox.cli import settings_lines
from sandbox.config import SandboxConfig
from sandbox.operator import credentials_env
from sandbox.world import World
from sellerpulse.settings import Settings, get_settings
from storage import apikeys, migrate
from storage.db import get_engine, get_target, session_scope
from storage.people import register_person
from storage.shops import create_shop, find_shop

# The demo's seller: owner of every demo shop, and the chat the bot writes to in the Telegram
# stand-in (the stand-in CLI's default user, so `sellerpulse telegram say` speaks as them).
DEMO_OWNER = {
    "telegram_id": demo_bot.DEMO_USER,
    "username": "demo_seller",
    "first_name": "Demo",
    "time_zone": "Europe/Warsaw",
    "language": "en",
}


@dataclass(frozen=True)
class Running:
    """What the demo prints: where each part listens."""

    data_dir: Path
    prefect_ui: str
    sandbox: str
    api: str
    api_key: str
    database: str
    bot: str
    shops: list[str]


@contextmanager
def sandbox_server(config: SandboxConfig, port: int) -> Iterator[tuple[str, World]]:
    app = create_app(config)
    with uvicorn_thread(app, port, "sandbox", hint=": pick another with --sandbox-port") as url:
        httpx.get(url + "/", timeout=5.0).raise_for_status()
        yield url, app.state.world


@contextmanager
def api_server(port: int) -> Iterator[str]:
    from api.app import create_app as create_api

    with uvicorn_thread(create_api(), port, "api", hint=": pick another with --api-port") as url:
        yield url


def _point_at_sandbox(url: str, world: World) -> Settings:
    """Environment for this process and the flow runs it starts, then fresh settings."""
    for line in settings_lines(url, credentials_env(world)):
        key, _, value = line.partition("=")
        if not key.startswith(("WB_TOKEN_", "ALLEGRO_ACCESS_TOKEN_", "ALLEGRO_REFRESH_TOKEN_")):
            os.environ[key] = value
    get_settings.cache_clear()
    return get_settings()


def _demo_owner() -> int:
    with session_scope(get_engine()) as session:
        profile = {k: v for k, v in DEMO_OWNER.items() if k != "telegram_id"}
        person, _ = register_person(session, telegram_id=DEMO_OWNER["telegram_id"], profile=profile)
        return person.id


def _bot_key() -> str:
    with session_scope(get_engine()) as session:
        return apikeys.create_key(session, name=f"demo bot {datetime.now(UTC):%Y-%m-%d %H:%M}").secret


async def _connect_shops(world: World, owner_id: int) -> list[str]:
    engine = get_engine()
    done = []
    with Session(engine) as session, session.begin():
        for name in world.wb:
            create_shop(
                session,
                marketplace="wb",
                name=name,
                credentials={"token": world.wb_token(name)},
                account=f"sandbox:{name}",
                owner_id=owner_id,
            )
            done.append(f"{name} (WB, by token)")
    from tasks.clients import make_clients

    async with make_clients() as clients:
        for name in world.allegro:
            with Session(engine) as session:
                existing = find_shop(session, ref=name)
                reconnect = existing.id if existing is not None and existing.marketplace == "allegro" else None
            device = await begin_login(clients)  # the sandbox approves it at once
            await complete_login(
                engine, clients, device, name=name, owner_telegram_id=DEMO_OWNER["telegram_id"], shop_id=reconnect
            )
            done.append(f"{name} (Allegro, device flow, code {device.user_code_display})")
    return done


def psql_url(sqlalchemy_url: str) -> str:
    """The URL as psql (and psycopg.connect) take it: no driver name, no empty password."""
    url = sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)
    return url.replace("postgres:@", "postgres@", 1)


def run_demo(
    *,
    data_dir: Path,
    scenario: str,
    speed: float,
    sandbox_port: int | None,
    prefect_port: int | None,
    api_port: int | None,
) -> int:
    engine = get_engine()  # the embedded PostgreSQL in the demo's data dir (demo_setup made sure)
    migrate.upgrade(engine)
    target = get_target()
    # Flow runs are served in child processes: hand them this database directly.
    os.environ["DATABASE_URL"] = target.url
    config = replace(
        SandboxConfig(),
        scenario=scenario,
        speed=speed,
        auto_approve=True,
        start=datetime.now(UTC).replace(microsecond=0),
    )
    with sandbox_server(config, sandbox_port or free_port()) as (sandbox_url, world):
        settings = _point_at_sandbox(sandbox_url, world)
        with prefect_server(settings.sellerpulse_data_dir, port=prefect_port) as api_url:
            owner_id = _demo_owner()
            connected = asyncio.run(_connect_shops(world, owner_id))
            key = _bot_key()
            log = settings.sellerpulse_data_dir / "demo-bot.log"
            with (
                api_server(api_port or free_port()) as bot_api,
                demo_bot.running(api_url=bot_api, api_key=key, owner=DEMO_OWNER["telegram_id"], log=log) as bot,
            ):
                _print_where_to_look(
                    Running(
                        data_dir=data_dir,
                        prefect_ui=api_url.removesuffix("/api"),
                        sandbox=sandbox_url,
                        api=bot_api,
                        api_key=key,
                        database=psql_url(target.url),
                        bot=bot.where_to_look(),
                        shops=connected,
                    ),
                    settings,
                )
                try:
                    asyncio.run(serve_deployments(settings))
                except KeyboardInterrupt:
                    print("\nstopping: deployments, bot, API, Prefect server, sandbox, database", flush=True)
    return 0


def _print_where_to_look(run: Running, settings: Settings) -> None:
    owner = DEMO_OWNER["telegram_id"]
    print(
        f"""
sellerpulse demo is running.

  Prefect UI      {run.prefect_ui}   (flow runs, retries, artifacts; start a backfill from deployments/backfill)
  Sandbox         {run.sandbox}   (ground truth: {run.sandbox}/_sandbox/docs)
  Bot API         {run.api}/docs   (X-API-Key: {run.api_key}; the demo owner's telegram_id is {owner})
{run.bot}
  Database        psql "{run.database}"
                  or: DATABASE_URL= SELLERPULSE_DATA_DIR={run.data_dir} \\
                      uv run sellerpulse db query "select s.name, count(*) from orders o
                      join shops s on s.id = o.shop_id group by 1"
  Data dir        {run.data_dir}   (the demo's own; `sellerpulse demo --reset` starts afresh)
  Shops           {", ".join(run.shops)}
  Schedules       sync-all every {settings.sync_interval_seconds} s, refresh-tokens every
                  {settings.token_refresh_interval_seconds} s

Ctrl-C stops everything.
""",
        flush=True,
    )
