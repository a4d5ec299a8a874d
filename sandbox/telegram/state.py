"""The stand-in's world: the bot, its users and chats, the update queue, every chat's transcript.

Everything is in memory and guarded by one lock (the app serves from one event loop, the
operator API may be called from threads in tests). Chats are private chats: a chat's id is
its user's id, as in Telegram.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sandbox.telegram.flood import FloodControl, FloodLimits

DEFAULT_TOKEN = "123456789:sandbox-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


@dataclass(frozen=True)
class TelegramConfig:
    token: str = DEFAULT_TOKEN  # the one bot token accepted (any other answers 401)
    bot_username: str = "sellerpulse_sandbox_bot"
    bot_first_name: str = "sellerpulse"
    flood: FloodLimits = field(default_factory=FloodLimits)
    flood_limits: bool = True
    time_scale: float = 1.0  # the stand-in's clock runs this much faster (benchmarks)
    seed: int = 1
    # Users must have started the bot before it can write to them (Telegram's rule).
    require_start: bool = True

    @property
    def bot_id(self) -> int:
        head = self.token.split(":", 1)[0]
        return int(head) if head.isdigit() else 1


class BotApiError(Exception):
    """An answer `{"ok": false, ...}` with this code and description."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after


@dataclass
class User:
    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    language_code: str | None = None
    # active | blocked (403, "bot was blocked by the user") | gone (400, "chat not found")
    state: str = "active"
    started: bool = False

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for name in ("last_name", "username", "language_code"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        return out

    def chat_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.username:
            out["username"] = self.username
        return out


@dataclass
class Entry:
    """One message in a chat, as the operator reads it."""

    seq: int
    chat_id: int
    message_id: int
    sender: str  # "bot" | "user"
    kind: str  # text | photo | callback (a button press) | answer (a callback's toast)
    text: str | None = None
    photo: dict[str, Any] | None = None
    reply_markup: dict[str, Any] | None = None
    date: int = 0
    at: float = 0.0  # monotonic, when accepted
    accepted_at: float = 0.0  # wall clock (epoch seconds), when accepted: lag measurements
    edits: list[str] = field(default_factory=list)
    deleted: bool = False
    data: str | None = None  # a button press's callback data

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "from": self.sender,
            "kind": self.kind,
            "text": self.text,
            "photo": self.photo,
            "reply_markup": self.reply_markup,
            "date": self.date,
            "accepted_at": self.accepted_at,
            "edits": list(self.edits),
            "deleted": self.deleted,
            "data": self.data,
        }


class TelegramWorld:
    def __init__(self, config: TelegramConfig | None = None) -> None:
        self.config = config or TelegramConfig()
        self.flood = FloodControl(
            limits=self.config.flood,
            scale=self.config.time_scale,
            enabled=self.config.flood_limits,
            seed=self.config.seed,
        )
        self.users: dict[int, User] = {}
        self.chats: dict[int, list[Entry]] = {}
        self.commands: list[dict[str, Any]] = []
        self.counts: dict[str, int] = {}
        self.failing_photo_hosts: set[str] = set()  # photo URLs there cannot be fetched
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._callback_ids = itertools.count(1)
        self._callbacks: dict[str, int] = {}  # unanswered presses: callback id -> chat
        self._updates: list[dict[str, Any]] = []
        self._new_update: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- users (operator side) ------------------------------------------------------------

    def user(self, user_id: int, **profile: Any) -> User:
        with self._lock:
            found = self.users.get(user_id)
            if found is None:
                name = profile.get("first_name") or f"User {user_id}"
                found = self.users[user_id] = User(id=user_id, first_name=name)
            for key in ("first_name", "username", "last_name", "language_code"):
                if profile.get(key) is not None:
                    setattr(found, key, profile[key])
            if profile.get("started"):
                found.started = True
            return found

    def set_state(self, user_id: int, state: str) -> User:
        if state not in {"active", "blocked", "gone"}:
            raise ValueError("state: active, blocked or gone")
        user = self.user(user_id)
        user.state = state
        return user

    def say(self, user_id: int, text: str, **profile: Any) -> dict[str, Any]:
        """The user sends a text message to the bot (it becomes an update)."""
        user = self.user(user_id, **profile)
        user.started = True
        if user.state == "blocked":
            user.state = "active"  # writing to a bot you blocked unblocks it (the client asks first)
        with self._lock:
            entry = self._entry(user_id, "user", "text", text=text)
        message = {**self._message_json(entry, user), "from": user.as_json()}
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return {"message_id": entry.message_id, "update_id": self._push({"message": message})}

    def press(self, user_id: int, *, message_id: int | None = None, data: str | None = None, button: str | None = None):
        """The user presses an inline button: by its callback data, or by its visible text (on
        the given message, else the newest bot message that has it)."""
        user = self.user(user_id)
        with self._lock:
            target = self._find_button_message(user_id, message_id, data, button)
            if button is not None:
                data = button_data(target.reply_markup, button)
            if data is None:
                raise LookupError(f"no button {button!r} in this chat")
            callback_id = str(next(self._callback_ids))
            self._callbacks[callback_id] = user_id
            self._entry(user_id, "user", "callback", data=data, text=button)
        query = {
            "id": callback_id,
            "from": user.as_json(),
            "message": self._message_json(target, user, bot=True),
            "chat_instance": str(user_id),
            "data": data,
        }
        return {"callback_query_id": callback_id, "update_id": self._push({"callback_query": query})}

    def _find_button_message(self, user_id: int, message_id: int | None, data: str | None, button: str | None):
        for entry in reversed(self.chats.get(user_id, [])):
            if entry.sender != "bot" or entry.deleted or not entry.reply_markup:
                continue
            if message_id is not None and entry.message_id != message_id:
                continue
            if button is not None and button_data(entry.reply_markup, button) is not None:
                return entry
            if button is None and (message_id is not None or _has_data(entry.reply_markup, data or "")):
                return entry
        raise LookupError(f"no bot message with the button {button or data!r} in chat {user_id}")

    # -- updates --------------------------------------------------------------------------

    def _push(self, payload: dict[str, Any]) -> int:
        with self._lock:
            update_id = next(self._update_ids)
            self._updates.append({"update_id": update_id, **payload})
        self._wake()
        return update_id

    def _wake(self) -> None:
        event, loop = self._new_update, self._loop
        if event is None or loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            loop.call_soon_threadsafe(event.set)

    async def get_updates(self, *, offset: int, limit: int, timeout: float) -> list[dict[str, Any]]:
        """Updates from `offset` on; older ones are confirmed and dropped (Telegram's rule)."""
        if self._new_update is None:
            self._new_update, self._loop = asyncio.Event(), asyncio.get_running_loop()
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            with self._lock:
                if offset:
                    self._updates = [u for u in self._updates if u["update_id"] >= offset]
                ready = self._updates[:limit]
                self._new_update.clear()
            left = deadline - time.monotonic()
            if ready or left <= 0:
                return ready
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), timeout=left)

    # -- the bot's side -------------------------------------------------------------------

    def count(self, method: str) -> None:
        with self._lock:
            self.counts[method] = self.counts.get(method, 0) + 1

    def recipient(self, chat_id: int) -> User:
        """The user a send goes to, or the error Telegram would answer."""
        user = self.users.get(chat_id)
        if user is None or user.state == "gone":
            raise BotApiError(400, "Bad Request: chat not found")
        if user.state == "blocked":
            raise BotApiError(403, "Forbidden: bot was blocked by the user")
        if self.config.require_start and not user.started:
            raise BotApiError(403, "Forbidden: bot can't initiate conversation with a user")
        return user

    def add_bot_message(self, chat_id: int, kind: str, **fields: Any) -> tuple[Entry, User]:
        user = self.recipient(chat_id)
        with self._lock:
            return self._entry(chat_id, "bot", kind, **fields), user

    def message(self, chat_id: int, message_id: int) -> Entry:
        for entry in self.chats.get(chat_id, []):
            if entry.message_id == message_id and entry.kind in {"text", "photo"} and not entry.deleted:
                return entry
        raise BotApiError(400, "Bad Request: message to edit not found")

    def answer_callback(self, callback_id: str, text: str | None) -> bool:
        """The toast of a button press, once per press (False: no such press, or answered)."""
        with self._lock:
            chat = self._callbacks.pop(callback_id, None)
            if chat is None:
                return False
            self._entry(chat, "bot", "answer", text=text, data=callback_id)
            return True

    def message_json(self, entry: Entry, user: User) -> dict[str, Any]:
        return self._message_json(entry, user, bot=True)

    def _message_json(self, entry: Entry, user: User, *, bot: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"message_id": entry.message_id, "date": entry.date, "chat": user.chat_json()}
        if bot or entry.sender == "bot":
            out["from"] = self.me()
        if entry.kind == "photo":
            out["photo"] = [entry.photo["size"]] if entry.photo else []
            if entry.text:
                out["caption"] = entry.text
        elif entry.text is not None:
            out["text"] = entry.text
        if entry.reply_markup:
            out["reply_markup"] = entry.reply_markup
        if entry.edits:
            out["edit_date"] = int(time.time())
        return out

    def _entry(self, chat_id: int, sender: str, kind: str, **fields: Any) -> Entry:
        ids = self._message_ids.setdefault(chat_id, itertools.count(1))
        message_id = next(ids) if kind in {"text", "photo"} else 0
        entry = Entry(
            seq=next(self._seq),
            chat_id=chat_id,
            message_id=message_id,
            sender=sender,
            kind=kind,
            date=int(time.time()),
            at=time.monotonic(),
            accepted_at=time.time(),
            **fields,
        )
        self.chats.setdefault(chat_id, []).append(entry)
        return entry

    def me(self) -> dict[str, Any]:
        return {
            "id": self.config.bot_id,
            "is_bot": True,
            "first_name": self.config.bot_first_name,
            "username": self.config.bot_username,
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    # -- reading (operator side) -----------------------------------------------------------

    def transcript(self, chat_id: int, *, after: int = 0) -> list[Entry]:
        with self._lock:
            return [e for e in self.chats.get(chat_id, []) if e.seq > after]

    def all_chats(self) -> dict[int, list[Entry]]:
        with self._lock:
            return {chat: list(entries) for chat, entries in self.chats.items()}

    def pending_updates(self) -> int:
        with self._lock:
            return len(self._updates)


def _buttons(markup: dict[str, Any] | None) -> list[dict[str, Any]]:
    rows = (markup or {}).get("inline_keyboard") or []
    return [b for row in rows for b in row]


def button_data(markup: dict[str, Any] | None, text: str) -> str | None:
    for b in _buttons(markup):
        if b.get("text") == text and b.get("callback_data"):
            return b["callback_data"]
    for b in _buttons(markup):  # then the first whose text starts with it (emoji, counters)
        if str(b.get("text", "")).startswith(text) and b.get("callback_data"):
            return b["callback_data"]
    return None


def _has_data(markup: dict[str, Any] | None, data: str) -> bool:
    return any(b.get("callback_data") == data for b in _buttons(markup))
