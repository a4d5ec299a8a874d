"""The demo's Telegram side (flows/demo_bot.py, the seam flows/demo.py calls): the API, the
stand-in and the bot process start; the demo person owns every shop and is answered."""

from __future__ import annotations

import time

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from flows import demo_bot
from sellerpulse.settings import get_settings
from storage.models import Membership, Person
from storage.shops import create_shop


def test_the_demo_bot_starts_and_answers(clean_engine: Engine) -> None:
    with Session(clean_engine) as s, s.begin():
        create_shop(s, marketplace="wb", name="wb1", credentials={"token": "t"})
    bot = demo_bot.start(get_settings())
    try:
        from sandbox.telegram.client import TelegramOperator

        op = TelegramOperator(bot.telegram_url)
        deadline = time.monotonic() + 30
        while not [m for m in op.chat(demo_bot.DEMO_USER) if m["from"] == "bot"]:
            assert time.monotonic() < deadline, "the bot never answered the demo's /start"
            time.sleep(0.1)
        after = max(m["seq"] for m in op.chat(demo_bot.DEMO_USER))
        op.say(demo_bot.DEMO_USER, "/shops")
        replies = op.replies(demo_bot.DEMO_USER, after, quiet=0.5)
        assert any("wb1" in (m["text"] or "") for m in replies)
        assert "sellerpulse telegram say" in bot.where_to_look()
    finally:
        bot.stop()
    with Session(clean_engine) as s:
        roles = s.execute(
            select(Membership.role).join(Person, Person.id == Membership.person_id)
            .where(Person.telegram_id == demo_bot.DEMO_USER)
        ).scalars().all()  # fmt: skip
    assert roles == ["owner"]
