"""The Bot API methods the stand-in answers, each `(world, params) -> result`, raising
BotApiError for what Telegram would refuse. Parameters arrive as Telegram takes them (JSON,
form fields, multipart with files attached as `attach://name`), already merged into one dict
by the app; objects such as `reply_markup` may be JSON strings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from sandbox.telegram.html import EntityError, visible_text
from sandbox.telegram.state import BotApiError, TelegramWorld

Params = dict[str, Any]
Method = Callable[[TelegramWorld, Params], Awaitable[Any]]

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


def _int(params: Params, name: str, *, required: bool = True) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise BotApiError(400, f"Bad Request: {name} is empty")
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BotApiError(400, f"Bad Request: invalid {name} specified") from None


def _object(params: Params, name: str) -> Any:
    value = params.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise BotApiError(400, f"Bad Request: can't parse {name} JSON object") from None
    return value


def _markup(params: Params) -> dict[str, Any] | None:
    markup = _object(params, "reply_markup")
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise BotApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    for row in markup.get("inline_keyboard") or []:
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(data.encode()) <= 64:
                raise BotApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    return markup


def _text(params: Params, name: str, limit: int, *, required: bool) -> str | None:
    text = params.get(name)
    if text is None or text == "":
        if required:
            raise BotApiError(400, "Bad Request: message text is empty")
        return None
    try:
        shown = visible_text(str(text), params.get("parse_mode"))
    except EntityError as exc:
        raise BotApiError(400, f"Bad Request: can't parse entities: {exc}") from None
    if len(shown) > limit:
        what = "message caption" if name == "caption" else "message"
        raise BotApiError(400, f"Bad Request: {what} is too long")
    return str(text)


def _flood(world: TelegramWorld, chat_id: int) -> None:
    retry = world.flood.check(chat_id)
    if retry is not None:
        raise BotApiError(429, f"Too Many Requests: retry after {retry}", retry_after=retry)


async def get_me(world: TelegramWorld, params: Params) -> Any:
    return world.me()


async def get_updates(world: TelegramWorld, params: Params) -> Any:
    offset = _int(params, "offset", required=False) or 0
    limit = min(100, max(1, _int(params, "limit", required=False) or 100))
    timeout = min(50, max(0, _int(params, "timeout", required=False) or 0))
    return await world.get_updates(offset=offset, limit=limit, timeout=timeout / world.config.time_scale)


async def send_message(world: TelegramWorld, params: Params) -> Any:
    chat_id = _int(params, "chat_id")
    assert chat_id is not None
    text = _text(params, "text", TEXT_LIMIT, required=True)
    markup = _markup(params)
    world.recipient(chat_id)  # 400/403 before the flood check: Telegram answers those first
    _flood(world, chat_id)
    entry, user = world.add_bot_message(chat_id, "text", text=text, reply_markup=markup)
    return world.message_json(entry, user)


async def send_photo(world: TelegramWorld, params: Params) -> Any:
    chat_id = _int(params, "chat_id")
    assert chat_id is not None
    caption = _text(params, "caption", CAPTION_LIMIT, required=False)
    markup = _markup(params)
    photo = _photo(world, params)
    world.recipient(chat_id)
    _flood(world, chat_id)
    entry, user = world.add_bot_message(chat_id, "photo", text=caption, photo=photo, reply_markup=markup)
    return world.message_json(entry, user)


def _photo(world: TelegramWorld, params: Params) -> dict[str, Any]:
    value = params.get("photo")
    if isinstance(value, bytes):
        if not value.startswith((PNG_MAGIC, JPEG_MAGIC)):
            raise BotApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")
        digest = hashlib.sha256(value).hexdigest()
        size = {"file_id": f"upl-{digest[:24]}", "file_unique_id": digest[:16], "width": 800, "height": 600}
        return {"upload": {"sha256": digest, "bytes": len(value)}, "size": {**size, "file_size": len(value)}}
    if not isinstance(value, str) or not value:
        raise BotApiError(400, "Bad Request: there is no photo in the request")
    if value.startswith(("http://", "https://")):
        host = value.split("/")[2]
        if host in world.failing_photo_hosts:  # Telegram fetches the URL itself
            raise BotApiError(400, "Bad Request: failed to get HTTP URL content")
        digest = hashlib.sha256(value.encode()).hexdigest()
        return {"url": value, "size": {"file_id": f"url-{digest[:24]}", "file_unique_id": digest[:16],
                                       "width": 800, "height": 800}}  # fmt: skip
    if value.startswith(("url-", "upl-")):  # a file_id this stand-in handed out
        return {
            "file_id": value,
            "size": {"file_id": value, "file_unique_id": value[4:20], "width": 800, "height": 800},
        }
    raise BotApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")


def _target(world: TelegramWorld, params: Params):
    chat_id = _int(params, "chat_id")
    message_id = _int(params, "message_id")
    assert chat_id is not None and message_id is not None
    user = world.recipient(chat_id)
    return world.message(chat_id, message_id), user


async def edit_message_text(world: TelegramWorld, params: Params) -> Any:
    text = _text(params, "text", TEXT_LIMIT, required=True)
    markup = _markup(params)
    entry, user = _target(world, params)
    if entry.kind != "text":
        raise BotApiError(400, "Bad Request: there is no text in the message to edit")
    if entry.text == text and entry.reply_markup == markup:
        raise BotApiError(400, "Bad Request: message is not modified")
    entry.edits.append(entry.text or "")
    entry.text, entry.reply_markup = text, markup
    return world.message_json(entry, user)


async def edit_message_reply_markup(world: TelegramWorld, params: Params) -> Any:
    markup = _markup(params)
    entry, user = _target(world, params)
    if entry.reply_markup == markup:
        raise BotApiError(400, "Bad Request: message is not modified")
    entry.edits.append(entry.text or "")
    entry.reply_markup = markup
    return world.message_json(entry, user)


async def delete_message(world: TelegramWorld, params: Params) -> Any:
    chat_id = _int(params, "chat_id")
    message_id = _int(params, "message_id")
    assert chat_id is not None and message_id is not None
    for entry in world.transcript(chat_id):
        if entry.message_id == message_id and entry.kind in {"text", "photo"} and not entry.deleted:
            entry.deleted = True
            return True
    raise BotApiError(400, "Bad Request: message to delete not found")


async def answer_callback_query(world: TelegramWorld, params: Params) -> Any:
    callback_id = params.get("callback_query_id")
    if not callback_id:
        raise BotApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
    if not world.answer_callback(str(callback_id), params.get("text")):
        raise BotApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
    return True


async def set_my_commands(world: TelegramWorld, params: Params) -> Any:
    commands = _object(params, "commands")
    if not isinstance(commands, list) or not all(isinstance(c, dict) and c.get("command") for c in commands):
        raise BotApiError(400, "Bad Request: can't parse commands JSON object")
    world.commands = commands
    return True


async def send_chat_action(world: TelegramWorld, params: Params) -> Any:
    chat_id = _int(params, "chat_id")
    assert chat_id is not None
    world.recipient(chat_id)
    return True


async def delete_webhook(world: TelegramWorld, params: Params) -> Any:
    return True


async def get_webhook_info(world: TelegramWorld, params: Params) -> Any:
    return {"url": "", "has_custom_certificate": False, "pending_update_count": world.pending_updates()}


METHODS: dict[str, Method] = {
    "getme": get_me,
    "getupdates": get_updates,
    "sendmessage": send_message,
    "sendphoto": send_photo,
    "editmessagetext": edit_message_text,
    "editmessagereplymarkup": edit_message_reply_markup,
    "deletemessage": delete_message,
    "answercallbackquery": answer_callback_query,
    "setmycommands": set_my_commands,
    "sendchataction": send_chat_action,
    "deletewebhook": delete_webhook,
    "getwebhookinfo": get_webhook_info,
}
