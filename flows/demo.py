"""`sellerpulse demo`: the whole product on one machine, on the sandbox.

Embedded PostgreSQL, the marketplace sandbox (a small lively scenario, device codes approved
at once), a local Prefect server with its UI, the sandbox's WB shops connected by token and
its Allegro shops through the device flow, and every deployment served on its schedule.
Ctrl-C stops everything it started.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import uvicorn
from sqlalchemy.orm import Session

from flows import demo_bot
from flows.connect import begin_login, complete_login
from flows.prefect_server import free_port, prefect_server
from flows.serve import serve_deployments
from sandbox.app import create_app
from sandbox.cli import settings_lines
from sandbox.config import SandboxConfig
from sandbox.operator import credentials_env
from sandbox.world import World
from sellerpulse.errors import UserError
from sellerpulse.settings import Settings, get_settings
from storage import migrate
from storage.db import get_engine, get_target
from storage.shops import create_shop, find_shop
from tasks.clients import make_clients


@contextmanager
def sandbox_server(config: SandboxConfig, port: int) -> Iterator[tuple[str, World]]:
    app = create_app(config)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="sandbox", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/", timeout=1.0).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            raise UserError(f"the sandbox did not start on port {port}")
        time.sleep(0.1)
    try:
        yield url, app.state.world
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _point_at_sandbox(url: str, world: World) -> Settings:
    """Environment for this process and the flow runs it starts, then fresh settings."""
    for line in settings_lines(url, credentials_env(world)):
        key, _, value = line.partition("=")
        if not key.startswith(("WB_TOKEN_", "ALLEGRO_ACCESS_TOKEN_", "ALLEGRO_REFRESH_TOKEN_")):
            os.environ[key] = value
    get_settings.cache_clear()
    return get_settings()


async def _connect_shops(world: World) -> list[str]:
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
            )
            done.append(f"{name} (WB, by token)")
    async with make_clients() as clients:
        for name in world.allegro:
            with Session(engine) as session:
                existing = find_shop(session, ref=name)
                reconnect = existing.id if existing is not None and existing.marketplace == "allegro" else None
            device = await begin_login(clients)  # the sandbox approves it at once
            await complete_login(engine, clients, device, name=name, shop_id=reconnect)
            done.append(f"{name} (Allegro, device flow, code {device.user_code_display})")
    return done


def run_demo(
    settings: Settings, *, scenario: str, speed: float, sandbox_port: int | None, prefect_port: int | None
) -> int:
    engine = get_engine()
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
            connected = asyncio.run(_connect_shops(world))
            bot = demo_bot.start(settings)  # seam (issue 14): the API, the Telegram stand-in and the bot
            _print_where_to_look(api_url, sandbox_url, target.describe(), connected, settings)
            print(bot.where_to_look(), flush=True)  # seam (issue 14)
            try:
                asyncio.run(serve_deployments(settings))
            except KeyboardInterrupt:
                print("\nstopping: deployments, Prefect server, sandbox, database")
            finally:
                bot.stop()  # seam (issue 14)
    return 0


def _print_where_to_look(
    api_url: str, sandbox_url: str, database: str, connected: list[str], settings: Settings
) -> None:
    ui = api_url.removesuffix("/api")
    print(
        f"""
sellerpulse demo is running.

  Prefect UI      {ui}   (flow runs, retries, artifacts; start a backfill from deployments/backfill)
  Sandbox         {sandbox_url}   (ground truth: {sandbox_url}/_sandbox/docs)
  Database        {database}
                  e.g. uv run sellerpulse db query "select s.name, count(*) from orders o
                       join shops s on s.id = o.shop_id group by 1"
  Shops           {", ".join(connected)}
  Schedules       sync-all every {settings.sync_interval_seconds} s, refresh-tokens every
                  {settings.token_refresh_interval_seconds} s

Ctrl-C stops everything.
""",
        flush=True,
    )
