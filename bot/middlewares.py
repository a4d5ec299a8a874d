"""Cross-cutting concerns of every handler.

- `PersonMiddleware`: the person behind an update, read from the API (cached briefly), with
  their language and time zone, as handler arguments `person`, `lang`; someone who has not
  sent /start yet is asked to, and nothing else runs.
- `ErrorMiddleware`: an API that is down, or an answer nobody expected, becomes one clear
  line to the person (and a log line without secrets), never a silent failure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message, TelegramObject, User

from bot.api import ApiClient, ApiError, ApiUnavailable
from bot.texts import language_of, t

log = logging.getLogger("sellerpulse.bot")

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]
OPEN_COMMANDS = ("/start", "/help")


class People:
    """A short-lived cache of people as the API has them (a read per update would double the
    bot's API traffic); handlers that change a person call `forget`."""

    def __init__(self, api: ApiClient, ttl: float = 30.0) -> None:
        self.api, self.ttl = api, ttl
        self._cache: dict[int, tuple[float, dict[str, Any] | None]] = {}

    async def get(self, telegram_id: int) -> dict[str, Any] | None:
        hit = self._cache.get(telegram_id)
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        person = await self.api.get_person(telegram_id)
        self._cache[telegram_id] = (time.monotonic(), person)
        return person

    def put(self, telegram_id: int, person: dict[str, Any]) -> None:
        self._cache[telegram_id] = (time.monotonic(), person)

    def forget(self, telegram_id: int) -> None:
        self._cache.pop(telegram_id, None)


async def reply(event: TelegramObject, text: str) -> None:
    if isinstance(event, Message):
        await event.answer(text)
    elif isinstance(event, CallbackQuery):
        await event.answer()
        if event.message is not None:
            await event.message.answer(text)


class PersonMiddleware(BaseMiddleware):
    def __init__(self, people: People) -> None:
        self.people = people

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is None or user.is_bot:
            return None
        person = await self.people.get(user.id)
        data["person"] = person
        data["lang"] = language_of(person, user.language_code)
        if person is None and not _opens(event):
            await reply(event, t(data["lang"], "need_start"))
            return None
        return await handler(event, data)


def _opens(event: TelegramObject) -> bool:
    return isinstance(event, Message) and (event.text or "").startswith(OPEN_COMMANDS)


class ErrorMiddleware(BaseMiddleware):
    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        try:
            return await handler(event, data)
        except ApiUnavailable as exc:
            log.warning("API unavailable while handling an update: %s", exc.message)
            await reply(event, t(data.get("lang", "en"), "api_down"))
        except ApiError as exc:
            if exc.status == 404:
                await reply(event, t(data.get("lang", "en"), "not_found"))
            elif exc.status == 403:
                await reply(event, t(data.get("lang", "en"), "owners_only"))
            else:
                log.warning("API answered %s %s while handling an update", exc.status, exc.code)
                await reply(event, t(data.get("lang", "en"), "error", message=exc.message))
        return None
