"""/shops through the stand-in: rename (a bad name changes nothing), pause and resume, remove
with confirmation, invites by code and by deep link, members who may only leave."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.bot.conftest import Harness
from tests.bot.test_commands import seed_shop

# The harness lives on the session's loop: the bot's and the API's tasks must share it.
pytestmark = pytest.mark.asyncio(loop_scope="session")

OWNER, FRIEND, STRANGER = 801, 802, 803


async def test_rename_pause_and_remove(harness: Harness, clean_engine: Engine) -> None:
    shop_id = seed_shop(clean_engine, telegram_id=OWNER)
    async with harness.running(), harness.api() as api:
        chat = harness.chat(OWNER)
        listing = (await chat.say("/shops"))[0]
        assert "Shirts · Wildberries · active · owner" in listing.text
        card = (await chat.press("Shirts"))[0]
        assert {b["text"] for row in card.reply_markup["inline_keyboard"] for b in row} == {
            "✏️ Rename", "⏸ Pause notifications", "👥 Invite", "🗑 Remove", "🚪 Leave"}  # fmt: skip

        await chat.press("✏️ Rename")
        refused = await chat.say("y" * 129)
        assert "1 to 128 characters" in refused[0].text
        assert (await api.get(f"/shops/{shop_id}", params={"telegram_id": OWNER})).json()["name"] == "Shirts"
        assert "Renamed: Shirts &amp; Co" in (await chat.say("Shirts & Co"))[0].text

        await chat.say("/shops")
        await chat.press("Shirts & Co")
        paused = await chat.press_edit("⏸ Pause notifications")
        assert "notifications paused" in paused.text
        assert (await api.get(f"/shops/{shop_id}", params={"telegram_id": OWNER})).json()["paused"] is True
        resumed = await chat.press_edit("▶️ Resume notifications")
        assert "paused" not in resumed.text
        assert (await api.get(f"/shops/{shop_id}", params={"telegram_id": OWNER})).json()["paused"] is False

        confirm = (await chat.press("🗑 Remove"))[0]
        assert "Keep its backed-up orders" in confirm.text
        await chat.press("Cancel")  # nothing removed: the card again
        assert (await api.get(f"/shops/{shop_id}", params={"telegram_id": OWNER})).json()["status"] == "active"
        await chat.press("🗑 Remove")
        done = await chat.press_edit("Remove, keep its data")
        assert "removed; its data is kept" in done.text
        shop = (await api.get(f"/shops/{shop_id}", params={"telegram_id": OWNER})).json()
        assert shop["status"] == "disabled"
        orders = await api.get(f"/shops/{shop_id}/orders", params={"telegram_id": OWNER})
        assert orders.json()["total"] == 12


async def test_invite_join_and_leave(harness: Harness, clean_engine: Engine) -> None:
    shop_id = seed_shop(clean_engine, telegram_id=OWNER)
    async with harness.running(), harness.api() as api:
        owner = harness.chat(OWNER)
        await owner.say("/shops")
        await owner.press("Shirts")
        invite = (await owner.press("👥 Invite"))[0].text
        link = next(w for w in invite.split() if w.startswith("https://t.me/"))
        assert link.startswith(f"https://t.me/{harness.world.config.bot_username}?start=inv_")
        code = link.split("start=")[1]

        friend = harness.chat(FRIEND, first_name="Olek", language_code="pl")
        joined = await friend.say(f"/start {code}", count=3)  # joined, welcome, time zone
        assert "Dołączyłeś do <b>Shirts</b> jako członek" in joined[0].text
        member = (await api.get(f"/shops/{shop_id}", params={"telegram_id": FRIEND})).json()
        assert member["role"] == "member"

        stranger = harness.chat(STRANGER)
        await stranger.say("/start", count=2)
        refused = await stranger.say(f"/join {code}")  # spent
        assert "unknown, used or expired" in refused[0].text
        assert (await api.get(f"/shops/{shop_id}", params={"telegram_id": STRANGER})).status_code == 404
        assert "/join CODE" in (await stranger.say("/join"))[0].text

        await friend.say("/shops")
        card = (await friend.press("Shirts"))[0]
        assert [b["text"] for row in card.reply_markup["inline_keyboard"] for b in row] == ["🚪 Wyjdź"]
        left = await friend.press_edit("🚪 Wyjdź")
        assert "Opuściłeś Shirts" in left.text
        assert (await api.get(f"/shops/{shop_id}", params={"telegram_id": FRIEND})).status_code == 404
