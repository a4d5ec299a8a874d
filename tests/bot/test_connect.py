"""Connecting shops through the bot: WB by token (the token's message is deleted; "invalid"
only on WB's 401), Allegro by device login (code and link, then connected or expired)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Engine

from storage import apikeys
from storage.db import session_scope
from tests.api.conftest import build_app
from tests.bot.conftest import Harness, StandIn
from tests.connectors.sandbox_harness import make_sandbox

# The harness lives on the session's loop: the bot's and the API's tasks must share it.
pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_wb_by_token(harness: Harness) -> None:
    async with harness.running(), harness.api() as api:
        anna = harness.chat(601)
        await anna.say("/start", count=2)
        await anna.say("/connect")
        await anna.press("Wildberries")
        asked = await anna.say("My WB")
        assert "WB API token" in asked[0].text

        garbage = await anna.say("not a token at all")
        assert "cannot be a token" in garbage[0].text and "invalid" not in garbage[0].text.lower()
        wrong = await anna.say("eyJhbGciOiJFUzI1NiJ9.bm90LWEtcmVhbC10b2tlbg.c2ln")
        assert "rejected this token (401)" in wrong[0].text
        assert (await api.get("/shops", params={"telegram_id": 601})).json()["total"] == 0

        done = await anna.say(harness.marketplace.wb_token("wb1"))
        assert "My WB is connected" in done[0].text
        shops = (await api.get("/shops", params={"telegram_id": 601})).json()["items"]
        assert [(s["name"], s["marketplace"], s["role"]) for s in shops] == [("My WB", "wb", "owner")]
        # Every message that held a token (good or bad) was deleted from the chat.
        sent = [e for e in anna.entries() if e.sender == "user" and e.kind == "text"]
        tokens = sent[-3:]
        assert all(e.deleted for e in tokens) and not any(e.deleted for e in sent[:-3])


async def test_allegro_by_device_login(harness: Harness) -> None:
    async with harness.running(), harness.api() as api:
        piotr = harness.chat(602, first_name="Piotr", language_code="pl")
        await piotr.say("/start", count=2)
        await piotr.say("/connect")
        await piotr.press("Allegro")
        replies = await piotr.say("Mój sklep", count=2)  # the code and link, then (approved) connected
        assert "<b>" in replies[0].text and "http" in replies[0].text
        assert "Mój sklep połączony" in replies[1].text
        shops = (await api.get("/shops", params={"telegram_id": 602})).json()["items"]
        assert [(s["name"], s["marketplace"]) for s in shops] == [("Mój sklep", "allegro")]


@pytest.fixture
async def refusing(telegram: StandIn, clean_engine: Engine) -> AsyncIterator[Harness]:
    """An Allegro whose device codes nobody approves: they expire."""
    sandbox = make_sandbox(scenario="tiny", auto_approve=False)
    app = build_app(sandbox, clean_engine)
    with session_scope(clean_engine) as session:
        key = apikeys.create_key(session, name="bot").secret
    async with app.router.lifespan_context(app):
        yield Harness(telegram, app, key, app.state.sync_launcher, sandbox)


async def test_allegro_code_that_expires(refusing: Harness) -> None:
    async with refusing.running(), refusing.api() as api:
        ola = refusing.chat(603, language_code="en")
        await ola.say("/start", count=2)
        await ola.say("/connect")
        await ola.press("Allegro")
        replies = await ola.say("Never", count=2)
        assert "expired" in replies[1].text and "/connect" in replies[1].text
        assert (await api.get("/shops", params={"telegram_id": 603})).json()["total"] == 0


async def test_a_name_that_is_too_long_is_asked_again(harness: Harness) -> None:
    async with harness.running():
        max_ = harness.chat(604)
        await max_.say("/start", count=2)
        await max_.say("/connect")
        await max_.press("Wildberries")
        refused = await max_.say("x" * 200)
        assert "1 to 128 characters" in refused[0].text
        assert "WB API token" in (await max_.say("Short"))[0].text
