"""Telegram's flood limits on our side: pace every send, and on a 429 wait `retry_after` and
send again (never drop).

Limits (Bot FAQ): about 1 message per second in a chat, 30 per second overall, 20 per minute
in a group. A send first waits for its chat (chats wait independently, so a busy chat never
holds up the others), then for the global budget, where a person's interactive reply goes
before queued notifications. A 429 holds every send for `retry_after` seconds: Telegram says
we are going too fast, and hammering on only lengthens the wait.

`FloodMiddleware` is an aiogram request middleware: it applies to every sendMessage and
sendPhoto the bot makes, replies and notifications alike.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import Response, SendMessage, SendPhoto, TelegramMethod
from aiogram.methods.base import TelegramType

log = logging.getLogger("sellerpulse.bot.flood")

INTERACTIVE, DELIVERY = 0, 1  # lower goes first
PACED = (SendMessage, SendPhoto)

# Set by the delivery loop around its sends: their priority, and how many 429s each one met.
priority: contextvars.ContextVar[int] = contextvars.ContextVar("priority", default=INTERACTIVE)


@dataclass
class Attempts:
    retried: int = 0


attempts: contextvars.ContextVar[Attempts | None] = contextvars.ContextVar("attempts", default=None)


class ChatPacer:
    """One chat's pace: a send may go `1/rate` seconds after the previous one (GCRA, with a
    small burst). Reservations are made in call order, so sends to one chat keep their order."""

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        self.interval = 1.0 / rate
        self.tolerance = (max(1.0, burst) - 1.0) * self.interval
        self.tat = 0.0  # theoretical arrival time of the next send

    def reserve(self, now: float) -> float:
        """When this send may go (>= now)."""
        at = max(now, self.tat - self.tolerance)
        self.tat = max(self.tat, at) + self.interval
        return at


@dataclass(order=True)
class _Waiter:
    priority: int
    seq: int
    future: asyncio.Future[None] = field(compare=False)


class GlobalBucket:
    """A token bucket whose waiters are served by priority, then in arrival order."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.capacity, self.clock = rate, burst, clock
        self.tokens, self.at = burst, clock()
        self.blocked_until = 0.0
        self._waiters: list[_Waiter] = []
        self._seq = itertools.count()
        self._dispatcher: asyncio.Task[None] | None = None

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def _take(self) -> float:
        """0 if a token was taken, else how long until one could be."""
        now = self.clock()
        self._refill(now)
        if now < self.blocked_until:
            return self.blocked_until - now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate

    def hold(self, seconds: float) -> None:
        self.blocked_until = max(self.blocked_until, self.clock() + seconds)
        self.tokens = 0.0

    async def acquire(self, priority: int) -> None:
        if not self._waiters and self._take() == 0:
            return
        waiter = _Waiter(priority, next(self._seq), asyncio.get_running_loop().create_future())
        heapq.heappush(self._waiters, waiter)
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.create_task(self._dispatch())
        await waiter.future

    async def _dispatch(self) -> None:
        while self._waiters:
            if self._waiters[0].future.done():  # cancelled while waiting
                heapq.heappop(self._waiters)
                continue
            wait = self._take()
            if wait == 0:
                heapq.heappop(self._waiters).future.set_result(None)
            else:
                await asyncio.sleep(wait)


class FloodGate:
    def __init__(
        self,
        *,
        global_rate: float = 30.0,
        chat_rate: float = 1.0,
        group_per_minute: float = 20.0,
        time_scale: float = 1.0,
    ) -> None:
        self.scale = time_scale
        self.chat_rate = chat_rate * time_scale
        self.group_rate = group_per_minute / 60.0 * time_scale
        self.bucket = GlobalBucket(global_rate * time_scale, burst=max(1.0, global_rate / 6))
        self._chats: dict[int, ChatPacer] = {}

    def _pacer(self, chat_id: int) -> ChatPacer:
        found = self._chats.get(chat_id)
        if found is None:
            group = chat_id < 0
            # A burst of two in a chat (Telegram lets short bursts through), then the rate.
            found = self._chats[chat_id] = ChatPacer(self.group_rate if group else self.chat_rate, burst=2)
        return found

    async def wait(self, chat_id: int, prio: int) -> None:
        at = self._pacer(chat_id).reserve(time.monotonic())
        delay = at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await self.bucket.acquire(prio)

    def retry_after(self, seconds: int) -> float:
        """Hold every send for `retry_after` (in Telegram seconds); returns our seconds."""
        ours = seconds / self.scale
        self.bucket.hold(ours)
        return ours


class FloodMiddleware(BaseRequestMiddleware):
    def __init__(self, gate: FloodGate, *, on_retry: Callable[[], None] | None = None) -> None:
        self.gate = gate
        self.on_retry = on_retry

    async def __call__(
        self, make_request: NextRequestMiddlewareType[TelegramType], bot: Any, method: TelegramMethod[TelegramType]
    ) -> Response[TelegramType]:
        if not isinstance(method, PACED):
            return await make_request(bot, method)
        chat_id = int(method.chat_id) if isinstance(method.chat_id, int | str) else 0
        while True:
            await self.gate.wait(chat_id, priority.get())
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                waited = self.gate.retry_after(exc.retry_after)
                counter = attempts.get()
                if counter is not None:
                    counter.retried += 1
                if self.on_retry is not None:
                    self.on_retry()
                log.info("Telegram asked to wait %s s (%s); retrying", exc.retry_after, type(method).__name__)
                await asyncio.sleep(waited)
