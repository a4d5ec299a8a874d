"""Wiring: the aiogram Bot (our Bot API server, the flood middleware), the Dispatcher with
its routers and middlewares, and `run()` with long polling and delivery side by side."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import httpx
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.memory import MemoryStorage

from bot.api import ApiClient
from bot.delivery import Deliverer
from bot.flood import FloodGate, FloodMiddleware
from bot.metrics import DeliveryMetrics
from bot.middlewares import ErrorMiddleware, People, PersonMiddleware
from bot.routers import all_routers
from bot.routers.connect import LoginWatcher
from bot.routers.start import set_commands
from bot.settings import BotSettings

log = logging.getLogger("sellerpulse.bot")

POLLING_TIMEOUT = 10  # seconds a getUpdates waits for news


@dataclass
class BotApp:
    bot: Bot
    dispatcher: Dispatcher
    api: ApiClient
    delivery: Deliverer
    metrics: DeliveryMetrics
    logins: LoginWatcher

    async def aclose(self) -> None:
        await self.logins.aclose()
        await self.api.aclose()
        await self.bot.session.close()


def build(settings: BotSettings, *, api_transport: httpx.AsyncBaseTransport | None = None) -> BotApp:
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    metrics = DeliveryMetrics()
    gate = FloodGate(
        global_rate=settings.bot_global_rate,
        chat_rate=settings.bot_chat_rate,
        group_per_minute=settings.bot_group_per_minute,
        time_scale=settings.telegram_time_scale,
    )
    session.middleware(FloodMiddleware(gate, on_retry=metrics.count_retry))
    bot = Bot(
        settings.telegram_bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )
    api = ApiClient(
        settings.api_base,
        settings.sellerpulse_api_key.get_secret_value(),
        transport=api_transport,
        max_connections=settings.bot_api_connections,
    )
    delivery = Deliverer(api=api, bot=bot, settings=settings, metrics=metrics)
    logins = LoginWatcher(bot, api, every=settings.bot_login_poll_seconds, delivery=delivery)
    people = People(api)
    dp = Dispatcher(storage=MemoryStorage(), api=api, people=people, delivery=delivery, logins=logins)
    for observer in (dp.message, dp.callback_query):
        observer.outer_middleware(ErrorMiddleware())
        observer.outer_middleware(PersonMiddleware(people))
    dp.include_routers(*all_routers())
    return BotApp(bot, dp, api, delivery, metrics, logins)


async def serve(app: BotApp, stop: asyncio.Event, *, on_ready: Callable[[], None] | None = None) -> None:
    """Long polling and the delivery loop until `stop` is set (or either of them fails)."""
    tasks: list[asyncio.Task[Any]] = []
    try:
        me = await app.bot.get_me()
        log.info("bot @%s (id %s) polling; delivering notifications", me.username, me.id)
        await set_commands(app.bot)
        polling = asyncio.create_task(
            app.dispatcher.start_polling(
                app.bot, polling_timeout=POLLING_TIMEOUT, handle_signals=False, close_bot_session=False
            )  # fmt: skip
        )
        tasks = [polling, asyncio.create_task(app.delivery.run(stop)), asyncio.create_task(stop.wait())]
        if on_ready is not None:
            on_ready()
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done - {tasks[2]}:
            task.result()  # a loop that ended by itself: its error, if any, goes up
    finally:
        stop.set()
        if tasks:
            with suppress(RuntimeError):
                await app.dispatcher.stop_polling()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task
        await app.aclose()


def run(settings: BotSettings) -> int:
    async def main() -> None:
        app = build(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            with suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await serve(app, stop)

    asyncio.run(main())
    return 0
