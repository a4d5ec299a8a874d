"""The Telegram side of `sellerpulse demo` (issue 14): the Telegram Bot API stand-in on a local
port and the bot as a process against it and the demo's API, so the shops' notifications reach
the demo owner's chat in the stand-in.

    with demo_bot.running(api_url=..., api_key=..., owner=telegram_id, log=path) as bot:
        print(bot.where_to_look())

Talk to the bot as the demo owner: `sellerpulse telegram say "/dashboard"` (and `press`,
`chat`); see README.md, "The Telegram bot".
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy.orm import Session

from flows.local_server import uvicorn_thread
from flows.prefect_server import free_port
from sandbox.telegram import TelegramConfig
from sandbox.telegram import create_app as telegram_app
from sandbox.telegram.cli import DEFAULT_PORT, DEFAULT_USER
from sandbox.telegram.state import DEFAULT_TOKEN, TelegramWorld
from sellerpulse.errors import UserError
from sellerpulse.processes import stop
from storage.db import get_engine
from storage.people import get_person
from storage.settings_repo import update_settings

# The stand-in CLI's default user: `sellerpulse telegram say` speaks as the demo owner.
DEMO_USER = DEFAULT_USER
DEMO_GROUP_SECONDS = 30  # the demo owner's grouping window: the first notifications show within a minute


@dataclass
class DemoBot:
    api_url: str
    telegram_url: str
    owner: int
    log: Path

    def where_to_look(self) -> str:
        url = "" if self.telegram_url.endswith(f":{DEFAULT_PORT}") else f" --url {self.telegram_url}"
        user = "" if self.owner == DEFAULT_USER else f" --user {self.owner}"
        opts = f"{user}{url}"
        return f"""  Telegram bot    the stand-in at {self.telegram_url}, log {self.log}
                  talk to it as the demo owner (Telegram user {self.owner}):
                    uv run sellerpulse telegram say "/dashboard"{opts}
                    uv run sellerpulse telegram say "/orders"{opts}      then: ... press "▶"{opts}
                    uv run sellerpulse telegram chat{opts}     (everything, notifications included)"""


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _short_grouping(owner: int) -> None:
    with Session(get_engine()) as session, session.begin():
        person = get_person(session, telegram_id=owner)
        if person is None:
            raise UserError(f"the demo owner {owner} is not registered")
        update_settings(session, person_id=person.id, values={"group_timeout": DEMO_GROUP_SECONDS})


@contextmanager
def _bot_process(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "sellerpulse.cli", "bot"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "delivery started" not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise UserError(f"the bot did not start; see {log}")
            time.sleep(0.2)
        yield process
    finally:
        stop(process, grace=20)


@contextmanager
def running(
    *, api_url: str, api_key: str, owner: int, log: Path, telegram_port: int | None = None
) -> Iterator[DemoBot]:
    """The stand-in and the bot until the block ends; `owner` (registered, owning the demo's
    shops) has started the bot, as a person would with /start."""
    _short_grouping(owner)
    world = TelegramWorld(TelegramConfig())
    world.user(owner, first_name="Demo", language_code="en", started=True)
    port = telegram_port or (DEFAULT_PORT if _free(DEFAULT_PORT) else free_port())  # the CLI's default if free
    with uvicorn_thread(telegram_app(world=world), port, "Telegram stand-in") as telegram_url:
        env = {
            **os.environ,
            "SELLERPULSE_API_URL": api_url,
            "SELLERPULSE_API_KEY": api_key,
            "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN,
            "TELEGRAM_API_URL": telegram_url,
        }
        with _bot_process(env, log):
            httpx.post(f"{telegram_url}/_telegram/users/{owner}/messages", json={"text": "/start"}, timeout=10)
            yield DemoBot(api_url, telegram_url, owner, log)
