"""The demo's Telegram side (flows/demo_bot.py): the stand-in and the bot process start against
the demo's API; the demo owner, who owns every shop, is answered."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from flows import demo_bot
from flows.demo import api_server
from flows.prefect_server import free_port
from sandbox.telegram.client import TelegramOperator
from storage import apikeys
from storage.people import register_person
from storage.shops import create_shop


def test_the_demo_bot_starts_and_answers(clean_engine: Engine, tmp_path: Path) -> None:
    owner = demo_bot.DEMO_USER
    with Session(clean_engine) as s, s.begin():
        person, _ = register_person(s, telegram_id=owner, profile={"first_name": "Demo", "language": "en"})
        create_shop(s, marketplace="wb", name="wb1", credentials={"token": "t"}, owner_id=person.id)
        key = apikeys.create_key(s, name="demo-bot").secret
    with (
        api_server(free_port()) as api,
        demo_bot.running(api_url=api, api_key=key, owner=owner, log=tmp_path / "bot.log") as bot,
    ):
        op = TelegramOperator(bot.telegram_url)
        deadline = time.monotonic() + 30
        while not [m for m in op.chat(owner) if m["from"] == "bot"]:
            assert time.monotonic() < deadline, "the bot never answered the demo's /start"
            time.sleep(0.1)
        after = max(m["seq"] for m in op.chat(owner))
        op.say(owner, "/shops")
        replies = op.replies(owner, after, quiet=0.5)
        assert any("wb1" in (m["text"] or "") for m in replies)
        assert 'sellerpulse telegram say "/dashboard"' in bot.where_to_look()
