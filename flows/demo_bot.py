"""The Telegram side of `sellerpulse demo` (issue 14): the API on a local port, the Telegram
Bot API stand-in, the bot as a process, and a demo person who owns every shop, so the shops'
notifications reach them in the stand-in.

The seam `flows/demo.py` calls (one line to start, one to stop):

    bot = demo_bot.start(settings)     # after the shops are connected
    print(bot.where_to_look())
    ...
    bot.stop()

Talk to the bot as the demo person: `sellerpulse telegram say "/dashboard"` (and `press`,
`chat`); see README.md, "The Telegram bot".
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy.orm import Session

from flows.prefect_server import free_port
from sandbox.telegram import TelegramConfig
from sandbox.telegram import create_app as telegram_app
from sandbox.telegram.cli import DEFAULT_PORT
from sandbox.telegram.state import DEFAULT_TOKEN, TelegramWorld
from sellerpulse.errors import UserError
from sellerpulse.settings import Settings
from storage import apikeys
from storage.db import get_engine
from storage.models import Role
from storage.people import register_person
from storage.settings_repo import update_settings
from storage.shops import add_member, list_shops

DEMO_USER = 1001
DEMO_GROUP_SECONDS = 30


@dataclass
class DemoBot:
    api_url: str
    telegram_url: str
    log: Path
    process: subprocess.Popen[bytes]
    servers: list[tuple[uvicorn.Server, threading.Thread]] = field(default_factory=list)

    def where_to_look(self) -> str:
        url = "" if self.telegram_url.endswith(f":{DEFAULT_PORT}") else f" --url {self.telegram_url}"
        return f"""  Telegram bot    the stand-in at {self.telegram_url}, the API at {self.api_url}, log {self.log}
                  talk to it as the demo owner of every shop (user {DEMO_USER}):
                    uv run sellerpulse telegram say "/dashboard"{url}
                    uv run sellerpulse telegram say "/orders"{url}      then: ... press "▶"{url}
                    uv run sellerpulse telegram chat{url}     (everything, notifications included)"""

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        for server, thread in self.servers:
            server.should_exit = True
            thread.join(timeout=10)


def _serve(app: object, port: int, name: str) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise UserError(f"the {name} did not start on port {port}")
        time.sleep(0.05)
    return server, thread


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _demo_owner(world: TelegramWorld) -> None:
    """The demo person owns every shop (the demo connected them without an owner in Telegram).
    Their grouping window is short, so the first notifications show within a minute, not five."""
    with Session(get_engine()) as session, session.begin():
        person, _ = register_person(session, telegram_id=DEMO_USER, profile={"first_name": "Demo", "language": "en"})
        for shop in list_shops(session):
            add_member(session, shop_id=shop.id, person_id=person.id, role=Role.owner)
        update_settings(session, person_id=person.id, values={"group_timeout": DEMO_GROUP_SECONDS})
    world.user(DEMO_USER, first_name="Demo", language_code="en", started=True)


def start(settings: Settings, *, api_port: int | None = None, telegram_port: int | None = None) -> DemoBot:
    from api.app import create_app

    servers = [_serve(create_app(), api_port or free_port(), "API")]
    api_url = f"http://127.0.0.1:{servers[0][0].config.port}"
    world = TelegramWorld(TelegramConfig())
    port = telegram_port or (DEFAULT_PORT if _free(DEFAULT_PORT) else free_port())  # the CLI's default if free
    servers.append(_serve(telegram_app(world=world), port, "Telegram stand-in"))
    telegram_url = f"http://127.0.0.1:{servers[1][0].config.port}"
    with Session(get_engine()) as session, session.begin():
        key = apikeys.create_key(session, name="demo-bot").secret
    _demo_owner(world)
    log = settings.sellerpulse_data_dir / "demo-bot.log"
    env = {
        **os.environ,
        "SELLERPULSE_API_URL": api_url,
        "SELLERPULSE_API_KEY": key,
        "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN,
        "TELEGRAM_API_URL": telegram_url,
    }
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "sellerpulse.cli", "bot"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)  # fmt: skip
    bot = DemoBot(api_url, telegram_url, log, process, servers)
    deadline = time.monotonic() + 60
    while "delivery started" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            bot.stop()
            raise UserError(f"the bot did not start; see {log}")
        time.sleep(0.2)
    httpx.post(f"{telegram_url}/_telegram/users/{DEMO_USER}/messages", json={"text": "/start"}, timeout=10)
    return bot
