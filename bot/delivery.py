"""The delivery loop: poll the API for everyone's notifications, send each to Telegram, record
what happened, ack the cursor.

Exactly once to a person:
- A person's page is handled by one task at a time; they are not polled again until it ends.
- Before sending, the page's ids are looked up in the delivery records: an item the API hands
  out again (the bot stopped before its ack) is recognised and not sent twice.
- Right after Telegram answers, the item's record is written (sent, failed for good, or
  skipped); the page's `next_cursor` is acked only once every item has a record. A crash
  before the ack therefore costs a redelivery that is recognised, never a second message.
  The one window left is between Telegram accepting a message and its record being written
  (a few milliseconds): a crash exactly there sends that one message again on restart.

Telegram's answers: 429 is waited out and retried by bot.flood (never dropped); 403 means the
person blocked the bot: they are marked inactive through the API and nothing more is sent to
them (the others go on); any other 4xx is logged with the item and recorded as failed, never
retried; a 5xx or a network error leaves the page unacked for the next round.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramServerError,
)
from aiogram.types import LinkPreviewOptions

from bot import flood
from bot.api import ApiClient, ApiError, ApiUnavailable
from bot.metrics import DeliveryMetrics
from bot.settings import BotSettings

log = logging.getLogger("sellerpulse.bot.delivery")

CAPTION_LIMIT = 1024
TAGS = re.compile(r"<[^>]+>")
RETRY_PAUSE = 2.0  # seconds before a person's page is tried again after an outage


@dataclass(frozen=True)
class Item:
    id: int
    ids: tuple[int, ...]
    kind: str
    shop_id: int
    text: str
    image_url: str | None
    created_at: datetime

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Item:
        created = datetime.fromisoformat(str(raw["created_at"]).replace("Z", "+00:00"))
        return cls(
            id=int(raw["id"]),
            ids=tuple(int(i) for i in raw.get("ids") or [raw["id"]]),
            kind=str(raw["kind"]),
            shop_id=int(raw["shop_id"]),
            text=str(raw["text"]),
            image_url=raw.get("image_url") or None,
            created_at=created if created.tzinfo else created.replace(tzinfo=UTC),
        )


@dataclass(frozen=True)
class Outcome:
    status: str  # sent | failed | skipped | blocked
    message_id: int | None = None
    detail: str | None = None
    attempts: int = 1


class Blocked(Exception):
    """Telegram answered 403 for this person."""


def visible_length(text: str) -> int:
    return len(html.unescape(TAGS.sub("", text)))


class Deliverer:
    def __init__(self, *, api: ApiClient, bot: Bot, settings: BotSettings, metrics: DeliveryMetrics) -> None:
        self.api, self.bot, self.settings, self.metrics = api, bot, settings, metrics
        self.recipients: list[int] = []
        self.paused: dict[int, datetime] = {}
        self.busy: set[int] = set()
        self.acked: dict[int, int] = {}  # the cursor last acked per person (known to us)
        self.sent_unrecorded: dict[tuple[int, int], Outcome] = {}  # sent, record not yet written
        self.retry_at: dict[int, float] = {}
        self._slots = asyncio.Semaphore(settings.bot_senders)
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._recipients_at = 0.0

    # -- the loop -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        log.info("delivery started")
        metrics_at = asyncio.get_running_loop().time()
        try:
            while not stop.is_set():
                now = asyncio.get_running_loop().time()
                try:
                    await self.round(now)
                except ApiUnavailable as exc:
                    log.warning("delivery poll: %s", exc.message)
                except ApiError as exc:
                    if exc.status == 401:  # the key was revoked: nothing will work until it is replaced
                        raise
                    log.warning("delivery poll refused: %s %s", exc.status, exc.code)
                if now - metrics_at >= self.settings.bot_metrics_seconds:
                    self.metrics.log()
                    metrics_at = now
                await self._sleep(stop, self.settings.bot_poll_seconds)
        finally:
            await self.drain()
            self.metrics.log()
            if self.sent_unrecorded:
                log.warning("stopping with %d sent item(s) not recorded yet", len(self.sent_unrecorded))

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        self._wake.clear()

    def wake(self) -> None:
        """Poll now (someone connected a shop or joined one): a new recipient is read at once."""
        self._recipients_at = 0.0
        self._wake.set()

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def round(self, now: float) -> None:
        """One poll of everyone not being delivered to right now."""
        if now - self._recipients_at >= self.settings.bot_recipients_seconds or not self._recipients_at:
            self.recipients = await self._read_recipients()
            paused = await self.api.paused_shops()
            self.paused = {s: datetime.fromisoformat(at.replace("Z", "+00:00")) for s, at in paused.items()}
            self._recipients_at = now
        ready = [t for t in self.recipients if t not in self.busy and self.retry_at.get(t, 0) <= now]
        size = self.settings.bot_poll_batch
        for start in range(0, len(ready), size):
            page = await self.api.batch_poll(ready[start : start + size], limit=self.settings.bot_page_limit)
            for result in page["results"]:
                self._take(int(result["telegram_id"]), result["items"], int(result["next_cursor"]))

    async def _read_recipients(self) -> list[int]:
        found: list[int] = []
        after = 0
        while True:
            page = await self.api.recipients(after=after)
            found += page["items"]
            if not page["items"] or page["next_after"] == after:
                return found
            after = page["next_after"]

    def _take(self, telegram_id: int, raw_items: Sequence[dict[str, Any]], cursor: int) -> None:
        if not raw_items and cursor <= self.acked.get(telegram_id, -1):
            return
        self.busy.add(telegram_id)
        task = asyncio.create_task(self._deliver(telegram_id, [Item.of(i) for i in raw_items], cursor))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- one person's page ----------------------------------------------------------------

    async def _deliver(self, telegram_id: int, items: list[Item], cursor: int) -> None:
        try:
            async with self._slots:
                await self.deliver_page(telegram_id, items, cursor)
        except Blocked:
            pass
        except (ApiUnavailable, TelegramNetworkError, TelegramServerError) as exc:
            log.warning("delivery to a person paused (%s); retried next round", type(exc).__name__)
            self.retry_at[telegram_id] = asyncio.get_running_loop().time() + RETRY_PAUSE
        except ApiError as exc:
            log.warning("delivery: the API refused %s (%s)", exc.code, exc.message)
            self.retry_at[telegram_id] = asyncio.get_running_loop().time() + RETRY_PAUSE
        except Exception:
            log.exception("delivery to a person failed; retried next round")
            self.retry_at[telegram_id] = asyncio.get_running_loop().time() + RETRY_PAUSE
        finally:
            self.busy.discard(telegram_id)

    async def deliver_page(self, telegram_id: int, items: list[Item], cursor: int) -> None:
        if items:
            done = await self.api.recorded(telegram_id, sorted({i for item in items for i in item.ids}))
            for item in items:
                if set(item.ids) <= done:
                    self.metrics.recognised += 1
                    continue
                outcome = self.sent_unrecorded.get((telegram_id, item.id)) or await self.send(telegram_id, item)
                if outcome.status == "blocked":
                    await self._blocked(telegram_id, item, outcome)
                    raise Blocked
                await self._record(telegram_id, item, outcome)
        self.acked[telegram_id] = await self.api.ack(telegram_id, cursor)
        self.retry_at.pop(telegram_id, None)

    async def send(self, telegram_id: int, item: Item) -> Outcome:
        paused_at = self.paused.get(item.shop_id)
        if paused_at is not None and item.created_at >= paused_at:
            return Outcome("skipped", detail="the shop's notifications are paused")
        counter = flood.Attempts()
        tokens = (flood.priority.set(flood.DELIVERY), flood.attempts.set(counter))
        try:
            message = await self._send_message(telegram_id, item)
        except TelegramForbiddenError as exc:
            return Outcome("blocked", detail=exc.message, attempts=counter.retried + 1)
        except (TelegramNetworkError, TelegramServerError):
            raise
        except TelegramAPIError as exc:  # any other refusal: for good, not retried
            log.warning("Telegram refused item %s (%s): %s", item.id, item.kind, exc.message)
            return Outcome("failed", detail=exc.message, attempts=counter.retried + 1)
        finally:
            flood.priority.reset(tokens[0])
            flood.attempts.reset(tokens[1])
        outcome = Outcome("sent", message_id=message, attempts=counter.retried + 1)
        self.sent_unrecorded[(telegram_id, item.id)] = outcome
        self.metrics.lag((datetime.now(UTC) - item.created_at).total_seconds())
        return outcome

    async def _send_message(self, telegram_id: int, item: Item) -> int:
        if item.image_url and visible_length(item.text) <= CAPTION_LIMIT:
            try:
                sent = await self.bot.send_photo(telegram_id, photo=item.image_url, caption=item.text)
                return sent.message_id
            except TelegramForbiddenError:
                raise
            except (TelegramNetworkError, TelegramServerError):
                raise
            except TelegramAPIError as exc:  # Telegram could not fetch the photo: the text alone
                log.info("photo of item %s not sent (%s); sending the text", item.id, exc.message)
        sent = await self.bot.send_message(
            telegram_id, item.text, link_preview_options=LinkPreviewOptions(is_disabled=True)
        )
        return sent.message_id

    async def _record(self, telegram_id: int, item: Item, outcome: Outcome) -> None:
        await self.api.record(
            telegram_id,
            item_id=item.id,
            ids=item.ids,
            status=outcome.status,
            message_id=outcome.message_id,
            detail=outcome.detail,
            attempts=outcome.attempts,
        )
        self.sent_unrecorded.pop((telegram_id, item.id), None)
        if outcome.status == "sent":
            self.metrics.sent += 1
        elif outcome.status == "failed":
            self.metrics.failed += 1
        else:
            self.metrics.skipped += 1

    async def _blocked(self, telegram_id: int, item: Item, outcome: Outcome) -> None:
        log.info("a person blocked the bot; they get nothing more until they come back")
        self.metrics.blocked += 1
        await self.api.set_inactive(telegram_id, "blocked")
        await self.api.record(telegram_id, item_id=item.id, ids=item.ids, status="failed", detail=outcome.detail)
        if telegram_id in self.recipients:
            self.recipients.remove(telegram_id)
