"""Onboarding through the stand-in: /start registers (language from Telegram, time zone asked
once), /help, commands before /start, a typed time zone that is not one."""

from __future__ import annotations

import pytest

from tests.bot.conftest import Harness, texts

# The harness lives on the session's loop: the bot's and the API's tasks must share it.
pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_start_registers_asks_the_zone_once_and_help(harness: Harness) -> None:
    async with harness.running(), harness.api() as api:
        anna = harness.chat(501, first_name="Anna", username="anna_shop", language_code="ru")
        before = await anna.say("/dashboard")  # not registered yet: nothing happens but a hint
        assert "/start" in texts(before)
        assert (await api.get("/people/501")).status_code == 404

        replies = await anna.say("/start", count=2)
        assert "Здравствуйте, Anna" in replies[0].text
        assert "часовом поясе" in replies[1].text and replies[1].reply_markup
        person = (await api.get("/people/501")).json()
        assert (person["language"], person["username"], person["time_zone"]) == ("ru", "anna_shop", "UTC")

        saved = await anna.press("Europe/Moscow")
        assert "Europe/Moscow" in saved[0].text
        assert (await api.get("/people/501")).json()["time_zone"] == "Europe/Moscow"

        again = await anna.say("/start")  # a second /start keeps language and zone, asks nothing
        assert "С возвращением" in again[0].text and not again[0].reply_markup
        person = (await api.get("/people/501")).json()
        assert (person["language"], person["time_zone"]) == ("ru", "Europe/Moscow")

        help_ = await anna.say("/help")
        for command in ("/dashboard", "/orders", "/stocks", "/reviews", "/analytics", "/sync", "/shops", "/settings"):
            assert command in help_[0].text
        assert harness.world.commands, "the command menu was set"


async def test_a_typed_time_zone_is_checked(harness: Harness) -> None:
    async with harness.running(), harness.api() as api:
        ben = harness.chat(502, first_name="Ben", language_code="de")  # not one of ours: English
        await ben.say("/start", count=2)
        assert (await api.get("/people/502")).json()["language"] is None
        await ben.press("Other…")
        refused = await ben.say("Mars/Olympus")
        assert "do not know this time zone" in refused[0].text
        assert (await api.get("/people/502")).json()["time_zone"] == "UTC"
        saved = await ben.say("Asia/Almaty")
        assert "Asia/Almaty" in saved[0].text
        assert (await api.get("/people/502")).json()["time_zone"] == "Asia/Almaty"
        cancelled = await ben.say("/cancel")
        assert "Nothing to cancel" in cancelled[0].text
