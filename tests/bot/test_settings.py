"""/settings through inline keyboards: every toggle, the choices, typed numbers (text where a
number is asked, and numbers the API refuses, change nothing), language and time zone."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from bot.routers.settings import TOGGLES
from bot.texts import t
from tests.bot.conftest import Harness
from tests.bot.test_commands import seed_shop

# The harness lives on the session's loop: the bot's and the API's tasks must share it.
pytestmark = pytest.mark.asyncio(loop_scope="session")

WHO = 901


async def test_every_setting(harness: Harness, clean_engine: Engine) -> None:
    seed_shop(clean_engine, telegram_id=WHO)
    async with harness.running(), harness.api() as api:
        params = {"telegram_id": WHO}

        async def current() -> dict:
            return (await api.get("/settings", params=params)).json()

        chat = harness.chat(WHO)
        await chat.say("/settings")
        before = await current()
        for name in TOGGLES:
            mark = "✅" if before[name] else "❌"
            menu = await chat.press_edit(f"{mark} {t('en', 'set_' + name)}")
            assert (await current())[name] is (not before[name]), name
            flipped = "❌" if before[name] else "✅"
            assert f"{flipped} {t('en', 'set_' + name)}" in str(menu.reply_markup)

        await chat.press("Reviews at or below: 3★")
        await chat.press_edit("2")
        assert (await current())["review_rating_threshold"] == 2
        await chat.press("Running out within: 3 days")
        await chat.press_edit("7")
        assert (await current())["stock_horizon_days"] == 7

        await chat.press("Low stock at: 5 pcs")
        for bad, reply in (("abc", "not a whole number"), ("-5", "Not accepted"), ("100001", "Not accepted")):
            assert reply in (await chat.say(bad))[0].text
            assert (await current())["critical_stock_threshold"] == 5
        assert "Saved" in (await chat.say("12"))[0].text
        assert (await current())["critical_stock_threshold"] == 12

        await chat.press("Group up to: 5 messages")
        assert "Not accepted" in (await chat.say("99"))[0].text
        assert "Saved" in (await chat.say("10"))[0].text
        await chat.press("Group wait: 300 s")
        assert "Saved" in (await chat.say("0"))[0].text
        values = await current()
        assert (values["max_group_size"], values["group_timeout"]) == (10, 0)

        await chat.press("Time zone: UTC")
        await chat.press("Europe/Warsaw")
        assert (await api.get(f"/people/{WHO}")).json()["time_zone"] == "Europe/Warsaw"

        await chat.press("Language: English")
        menu = await chat.press_edit("Polski")
        assert (await api.get(f"/people/{WHO}")).json()["language"] == "pl"
        assert "Ustawienia" in menu.text
        assert "Pomoc" not in (await chat.say("/help"))[0].text and "Co potrafię" in chat.last().text
        await chat.press("Język: Polski")
        await chat.press_edit("język każdego sklepu")
        assert (await api.get(f"/people/{WHO}")).json()["language"] is None
