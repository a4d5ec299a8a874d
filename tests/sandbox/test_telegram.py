"""The Telegram stand-in speaks the Bot API as aiogram calls it: {base}/bot{token}/{method},
form or JSON parameters, `{"ok": ...}` answers, flood limits as 429 with retry_after, 403 for a
user who blocked the bot, 400 for HTML Telegram cannot parse; and its operator API."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from aiogram.types import BufferedInputFile

from sandbox.telegram import TelegramConfig, TelegramWorld, create_app
from sandbox.telegram.state import DEFAULT_TOKEN
from tests.bot.conftest import StandIn

ASYNC = pytest.mark.asyncio(loop_scope="session")
ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def api(world: TelegramWorld) -> httpx.AsyncClient:
    app = create_app(world=world)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://tg/bot{DEFAULT_TOKEN}")


@ASYNC
async def test_answers_in_the_bot_api_shape() -> None:
    world = TelegramWorld(TelegramConfig())
    async with api(world) as tg:
        me = (await tg.get("/getMe")).json()
        assert me == {"ok": True, "result": world.me()} and me["result"]["is_bot"] is True
        wrong = await tg.get("/../botnope/getMe")
        assert wrong.status_code in (401, 404)
        bad_token = await httpx.AsyncClient(transport=tg._transport, base_url="http://tg").get("/bot1:x/getMe")
        assert bad_token.status_code == 401 and bad_token.json() == {
            "ok": False, "error_code": 401, "description": "Unauthorized"}  # fmt: skip
        unknown = await tg.post("/sendMessage", data={"chat_id": "77", "text": "hi"})
        assert unknown.status_code == 400 and unknown.json()["description"] == "Bad Request: chat not found"
        world.user(77, started=False)
        never = await tg.post("/sendMessage", json={"chat_id": 77, "text": "hi"})
        assert never.status_code == 403 and "can't initiate conversation" in never.json()["description"]


@ASYNC
async def test_get_updates_offset_confirms_and_long_polls() -> None:
    world = TelegramWorld(TelegramConfig())
    async with api(world) as tg:
        world.say(5, "/start", first_name="Ann", language_code="pl")
        world.say(5, "hello")
        updates = (await tg.post("/getUpdates", data={"offset": "0", "timeout": "0"})).json()["result"]
        assert [u["message"]["text"] for u in updates] == ["/start", "hello"]
        first = updates[0]["message"]
        assert first["from"]["language_code"] == "pl" and first["chat"] == {"id": 5, "type": "private",
                                                                              "first_name": "Ann"}  # fmt: skip
        assert first["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
        next_offset = updates[-1]["update_id"] + 1
        empty = (await tg.post("/getUpdates", data={"offset": str(next_offset), "timeout": "0"})).json()
        assert empty == {"ok": True, "result": []}
        assert world.pending_updates() == 0  # confirmed by the offset


@ASYNC
async def test_flood_limits_block_and_html() -> None:
    world = TelegramWorld(TelegramConfig())
    world.user(9, started=True)
    async with api(world) as tg:
        codes = [(await tg.post("/sendMessage", data={"chat_id": "9", "text": f"m{i}"})).status_code for i in range(4)]
        assert codes == [200, 200, 200, 429]  # a burst of three in one chat, then about one a second
        refused = (await tg.post("/sendMessage", data={"chat_id": "9", "text": "m"})).json()
        assert refused["error_code"] == 429 and refused["parameters"]["retry_after"] >= 1
        assert len(world.transcript(9)) == 3  # a refused message is not sent

        world.set_state(9, "blocked")
        blocked = (await tg.post("/sendMessage", data={"chat_id": "9", "text": "m"})).json()
        assert (blocked["error_code"], blocked["description"]) == (403, "Forbidden: bot was blocked by the user")
        world.set_state(9, "active")
        world.flood.enabled = False
        html = await tg.post("/sendMessage", data={"chat_id": "9", "text": "<b>open", "parse_mode": "HTML"})
        assert html.status_code == 400 and "can't parse entities" in html.json()["description"]
        long = await tg.post("/sendMessage", data={"chat_id": "9", "text": "x" * 4097})
        assert long.json()["description"] == "Bad Request: message is too long"


@ASYNC
async def test_global_limit_spans_chats() -> None:
    world = TelegramWorld(TelegramConfig())
    world.flood.clock = lambda: 1000.0  # frozen: however slowly 40 requests go, no token refills
    async with api(world) as tg:
        for chat in range(1, 41):
            world.user(chat, started=True)
        codes = [(await tg.post("/sendMessage", data={"chat_id": str(c), "text": "m"})).status_code
                 for c in range(1, 41)]  # fmt: skip
        assert codes.count(200) == 30 and codes[30:] == [429] * 10  # 30 a second overall


@pytest.fixture(scope="module")
def served() -> Iterator[StandIn]:
    with StandIn(TelegramConfig()) as stand_in:
        yield stand_in


@ASYNC
async def test_aiogram_talks_to_it(served: StandIn) -> None:
    served.world.user(42, started=True)
    bot = Bot(DEFAULT_TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(served.url)))
    try:
        assert (await bot.get_me()).username == served.world.config.bot_username
        sent = await bot.send_message(42, "<b>hi</b>", parse_mode="HTML")
        edited = await bot.edit_message_text("<i>there</i>", chat_id=42, message_id=sent.message_id, parse_mode="HTML")
        assert edited.text == "<i>there</i>"
        photo = await bot.send_photo(42, BufferedInputFile(PNG, "chart.png"), caption="chart")
        assert photo.photo and photo.caption == "chart"
        by_url = await bot.send_photo(42, "https://img.test/1.jpg", caption="url")
        assert by_url.photo
        with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
            await bot.send_photo(42, BufferedInputFile(b"not an image", "x.png"))
        assert await bot.delete_message(42, sent.message_id)
        served.world.flood.storm(requests=1, retry_after=3)
        with pytest.raises(TelegramRetryAfter) as storm:
            await bot.send_message(42, "storm")
        assert storm.value.retry_after == 3
        served.world.set_state(42, "blocked")
        with pytest.raises(TelegramForbiddenError):
            await bot.send_message(42, "blocked")
    finally:
        served.world.set_state(42, "active")
        await bot.session.close()
    chat = served.world.transcript(42)
    assert [(e.kind, e.deleted) for e in chat] == [("text", True), ("photo", False), ("photo", False)]
    assert chat[0].edits == ["<b>hi</b>"] and chat[1].photo["upload"]["bytes"] == len(PNG)


def test_cli_says_as_a_user_and_prints_the_replies(served: StandIn) -> None:
    """`sellerpulse telegram say` with nobody answering: a clear line and exit 1, no traceback;
    `chat` prints what is there; a stand-in that is not running: exit 2."""
    cli = [sys.executable, "-m", "sellerpulse.cli", "telegram"]
    said = subprocess.run([*cli, "say", "/start", "--user", "55", "--url", served.url, "--wait", "0.5"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert said.returncode == 1 and "no reply" in said.stderr and "Traceback" not in said.stderr
    assert served.world.transcript(55)[0].text == "/start"
    chat = subprocess.run([*cli, "chat", "--user", "55", "--url", served.url], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert chat.returncode == 0 and "you /start" in chat.stdout
    down = subprocess.run([*cli, "say", "hi", "--url", "http://127.0.0.1:9"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert down.returncode == 2 and "not reachable" in down.stderr and "Traceback" not in down.stderr
