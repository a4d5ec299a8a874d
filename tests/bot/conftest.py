"""The bot, end to end on one machine: the real API app (in-process, real PostgreSQL, the
marketplace sandbox behind its WB check and Allegro login), the Telegram stand-in on a local
port (its own thread, as Telegram would be), and the bot talking to both.

Time runs faster for the flood limits (`SCALE`, the same for the stand-in and the bot, so the
ratio of our pace to Telegram's is kept), which keeps a conversation to a few seconds.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine

from bot.app import BotApp, build, serve
from bot.settings import BotSettings
from flows.prefect_server import free_port
from sandbox.telegram import TelegramConfig, TelegramWorld
from sandbox.telegram import create_app as telegram_app
from sandbox.telegram.state import DEFAULT_TOKEN, Entry, button_data
from storage import apikeys
from storage.db import session_scope
from tests.api.conftest import RecordingLauncher, build_app
from tests.connectors.sandbox_harness import Sandbox, make_sandbox

SCALE = 20.0
API_URL = "http://api.test"


class StandIn:
    """The Telegram stand-in served by uvicorn on a free port, in a thread of its own."""

    def __init__(self, config: TelegramConfig) -> None:
        self.world = TelegramWorld(config)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = telegram_app(world=self.world)
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        )
        self.thread = threading.Thread(target=self.server.run, name="telegram-stand-in", daemon=True)

    def __enter__(self) -> StandIn:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the Telegram stand-in did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def telegram() -> Iterator[StandIn]:
    with StandIn(TelegramConfig(time_scale=SCALE)) as stand_in:
        yield stand_in


@pytest.fixture(scope="module")
def marketplace() -> Sandbox:
    return make_sandbox(scenario="tiny", auto_approve=True)


def bot_settings(telegram_url: str, key: str, **overrides: Any) -> BotSettings:
    values: dict[str, Any] = {
        "sellerpulse_api_url": API_URL,
        "sellerpulse_api_key": key,
        "telegram_bot_token": DEFAULT_TOKEN,
        "telegram_api_url": telegram_url,
        "telegram_time_scale": SCALE,
        "bot_poll_seconds": 0.1,
        "bot_recipients_seconds": 0.3,
        "bot_login_poll_seconds": 0.05,
        "bot_metrics_seconds": 3600,
        **overrides,
    }
    return BotSettings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class Harness:
    telegram: StandIn
    api_app: Any
    key: str
    launcher: RecordingLauncher
    marketplace: Sandbox

    @property
    def world(self) -> TelegramWorld:
        return self.telegram.world

    def api(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.api_app),
            base_url=API_URL + "/api/v1",
            headers={"X-API-Key": self.key},
        )

    @asynccontextmanager
    async def running(self, **overrides: Any) -> AsyncIterator[BotApp]:
        """A bot polling the stand-in and delivering, until the block ends."""
        settings = bot_settings(self.telegram.url, self.key, **overrides)
        app = build(settings, api_transport=httpx.ASGITransport(app=self.api_app))
        stop = asyncio.Event()
        ready = asyncio.Event()
        task = asyncio.create_task(serve(app, stop, on_ready=ready.set))
        await asyncio.wait_for(ready.wait(), 15)
        try:
            yield app
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)

    def chat(self, user_id: int, **profile: Any) -> Chat:
        return Chat(self.world, user_id, profile)


@pytest.fixture
async def harness(telegram: StandIn, marketplace: Sandbox, clean_engine: Engine) -> AsyncIterator[Harness]:
    launcher = RecordingLauncher()
    api_app = build_app(marketplace, clean_engine, sync_launcher=launcher)
    with session_scope(clean_engine) as session:
        key = apikeys.create_key(session, name="bot").secret
    async with api_app.router.lifespan_context(api_app):
        yield Harness(telegram, api_app, key, launcher, marketplace)


async def until(check: Callable[[], Any], *, timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy (with a deadline, never a bare sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class Chat:
    """A person talking to the bot through the stand-in."""

    def __init__(self, world: TelegramWorld, user_id: int, profile: dict[str, Any]) -> None:
        self.world, self.user_id = world, user_id
        self.profile = {"first_name": "Anna", "language_code": "en", **profile}

    def entries(self) -> list[Entry]:
        return self.world.transcript(self.user_id)

    def bot_messages(self) -> list[Entry]:
        return [e for e in self.entries() if e.sender == "bot" and e.kind in {"text", "photo"}]

    def _seq(self) -> int:
        return max((e.seq for e in self.entries()), default=0)

    async def _replies(self, after: int, count: int, quiet: float) -> list[Entry]:
        def new() -> list[Entry]:
            return [e for e in self.world.transcript(self.user_id, after=after) if e.sender == "bot"]

        await until(lambda: len([e for e in new() if e.kind != "answer"]) >= count, what=f"{count} repl(ies)")
        # Anything else the same update brings comes right behind: wait until the chat is quiet.
        seen = len(new())
        while True:
            await asyncio.sleep(quiet)
            if len(new()) == seen:
                return [e for e in new() if e.kind != "answer"]
            seen = len(new())

    async def say(self, text: str, *, count: int = 1, quiet: float = 0.15) -> list[Entry]:
        """Send `text`; the bot's new messages once at least `count` came."""
        after = self._seq()
        self.world.say(self.user_id, text, **self.profile)
        return await self._replies(after, count, quiet)

    async def press(self, button: str, *, count: int = 1, message_id: int | None = None) -> list[Entry]:
        """Press a button (by its text) and wait for `count` new messages."""
        after = self._seq()
        self.world.press(self.user_id, button=button, message_id=message_id)
        return await self._replies(after, count, 0.15)

    async def press_edit(self, button: str) -> Entry:
        """Press a button whose answer edits the message it is on; that message, edited."""
        target = self.with_button(button)
        edits = len(target.edits)
        self.world.press(self.user_id, button=button, message_id=target.message_id)
        await until(lambda: len(target.edits) > edits or target.deleted, what=f"the edit after {button!r}")
        return target

    def with_button(self, button: str) -> Entry:
        for entry in reversed(self.bot_messages()):
            if not entry.deleted and button_data(entry.reply_markup, button) is not None:
                return entry
        raise AssertionError(f"no message with the button {button!r}")

    def last(self) -> Entry:
        return self.bot_messages()[-1]


def texts(entries: list[Entry]) -> str:
    return "\n---\n".join(e.text or "" for e in entries)
