"""Delivery through the stand-in, compared with the outbox: each item reaches each person
exactly once (text, or photo with caption), across 429s, a crash between send and ack, a
person who blocked the bot, a chat that is gone, a photo Telegram cannot fetch, a paused shop.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from bot.app import build
from sellerpulse.notify.drafts import Draft
from storage import outbox
from storage.models import Role
from storage.people import register_person
from storage.settings_repo import update_settings
from storage.shops import add_member, create_shop
from tests.bot.conftest import Harness, bot_settings, until

# The harness lives on the session's loop: the bot's and the API's tasks must share it.
pytestmark = pytest.mark.asyncio(loop_scope="session")


def people_and_shop(engine: Engine, telegram_ids: Iterable[int], *, grouping: bool = False) -> int:
    """A WB shop whose members are these people (the first owns it)."""
    ids = list(telegram_ids)
    with Session(engine) as db, db.begin():
        persons = [register_person(db, telegram_id=t, profile={"language": "en"})[0] for t in ids]
        shop = create_shop(db, marketplace="wb", name="Shop", credentials={"token": "t"}, owner_id=persons[0].id)
        for p in persons[1:]:
            add_member(db, shop_id=shop.id, person_id=p.id, role=Role.member)
        # Grouping on: groups of three (a full group goes at once); off: one message each.
        values = {"grouping_enabled": True, "max_group_size": 3} if grouping else {"grouping_enabled": False}
        for p in persons:
            update_settings(db, person_id=p.id, values=values)
        return shop.id


def notify(engine: Engine, shop_id: int, n: int, *, image: str | None = None, start: int = 0) -> None:
    drafts = [
        Draft(
            "new_order",
            f"{shop_id}:new_order:s{i}:seen",
            f"s{i}",
            {"order_id": f"s{i}", "amount": "10.00", "image_url": image},
        )  # fmt: skip
        for i in range(start, start + n)
    ]
    with Session(engine) as db, db.begin():
        outbox.add(db, shop_id=shop_id, drafts=drafts)


async def expected(harness: Harness, telegram_id: int) -> Counter:
    """What the outbox holds for a person: every item's text, read through the API (cursor 0)."""
    found: Counter = Counter()
    async with harness.api() as api:
        after = 0
        while True:
            page = (await api.get("/notifications", params={"telegram_id": telegram_id, "after": after})).json()
            found.update(i["text"] for i in page["items"])
            if page["next_cursor"] == after:
                return found
            after = page["next_cursor"]


def received(harness: Harness, telegram_id: int) -> Counter:
    return Counter(e.text for e in harness.chat(telegram_id).bot_messages())


def started(harness: Harness, telegram_ids: Iterable[int]) -> None:
    for t in telegram_ids:
        harness.world.user(t, started=True, first_name=f"U{t}")


async def test_every_item_once_under_a_429_storm(harness: Harness, clean_engine: Engine) -> None:
    people = [1101, 1102, 1103]
    shop = people_and_shop(clean_engine, people)
    notify(clean_engine, shop, 12)
    notify(clean_engine, shop, 4, image="https://img.test/1.jpg", start=100)
    started(harness, people)
    want = {t: await expected(harness, t) for t in people}
    assert all(sum(w.values()) == 16 for w in want.values())
    harness.world.flood.storm(probability=0.4, seconds=3600, retry_after=1)
    try:
        async with harness.running() as bot:
            await until(lambda: all(received(harness, t) == want[t] for t in people), timeout=30, what="delivery")
            await until(lambda: bot.metrics.sent == 48, what="every record")
            assert bot.metrics.retried > 0
    finally:
        harness.world.flood.calm()
    photos = [e for e in harness.chat(1101).bot_messages() if e.kind == "photo"]
    assert len(photos) == 4 and all(p.photo["url"] == "https://img.test/1.jpg" for p in photos)
    async with harness.api() as api:
        for t in people:
            assert (await api.get("/notifications", params={"telegram_id": t})).json()["items"] == []


async def test_a_crash_between_send_and_ack_sends_nothing_twice(harness: Harness, clean_engine: Engine) -> None:
    people = [1201, 1202]
    shop = people_and_shop(clean_engine, people)
    notify(clean_engine, shop, 10)
    started(harness, people)
    want = {t: await expected(harness, t) for t in people}

    settings = bot_settings(harness.telegram.url, harness.key, bot_page_limit=4)
    first = build(settings, api_transport=httpx.ASGITransport(app=harness.api_app))
    hanging: list[int] = []
    real_ack = first.api.ack

    async def ack_then_crash(telegram_id: int, cursor: int) -> int:
        if sum(received(harness, t).total() for t in people) >= 6:
            hanging.append(telegram_id)
            await asyncio.Event().wait()  # the process dies here: sent and recorded, never acked
        return await real_ack(telegram_id, cursor)

    first.api.ack = ack_then_crash  # type: ignore[method-assign]
    stop = asyncio.Event()
    run = asyncio.create_task(first.delivery.run(stop))
    await until(lambda: hanging and len(hanging) == len(first.delivery._tasks), timeout=20, what="the crash point")
    for task in [*first.delivery._tasks, run]:
        task.cancel()
    await asyncio.gather(*first.delivery._tasks, run, return_exceptions=True)
    await first.aclose()
    sent_before = {t: received(harness, t) for t in people}
    assert any(sent_before.values())

    async with harness.running() as second:  # the restarted bot
        await until(lambda: all(received(harness, t) == want[t] for t in people), timeout=20, what="delivery")
        assert second.metrics.recognised > 0  # the unacked items came again and were recognised
    assert all(n == 1 for t in people for n in received(harness, t).values())  # every text is an order's own


async def test_a_blocked_person_stops_and_does_not_stall_the_others(harness: Harness, clean_engine: Engine) -> None:
    blocked, gone, fine = 1301, 1302, 1303
    shop = people_and_shop(clean_engine, [fine, blocked, gone])
    notify(clean_engine, shop, 6)
    started(harness, [blocked, gone, fine])
    harness.world.set_state(blocked, "blocked")
    harness.world.set_state(gone, "gone")
    want = await expected(harness, fine)
    async with harness.running() as bot, harness.api() as api:
        await until(lambda: received(harness, fine) == want, timeout=20, what="the others' delivery")
        await until(lambda: bot.metrics.failed == 6 and bot.metrics.blocked == 1, what="the refusals' records")

        async def failed(telegram_id: int) -> list[dict[str, Any]]:
            params = {"telegram_id": telegram_id, "status": "failed"}
            return (await api.get("/delivery/records", params=params)).json()

        state = (await api.get(f"/delivery/people/{blocked}")).json()
        assert state["active"] is False and state["inactive_reason"] == "blocked"
        assert len(await failed(blocked)) == 1  # the one refused send; nothing more was tried
        gone_failed = await failed(gone)
        assert len(gone_failed) == 6 and all("chat not found" in r["detail"] for r in gone_failed)
        calls = harness.world.counts
        assert calls.get("sendMessage:403") == 1 and calls.get("sendMessage:400") == 6
        # The gone chat's items were recorded and acked: not retried forever.
        assert (await api.get("/notifications", params={"telegram_id": gone})).json()["items"] == []
        assert (await api.get("/delivery/recipients")).json()["items"] == [fine, gone]

        # Coming back: /start reactivates, the backlog of the blocked time is not replayed.
        harness.world.set_state(blocked, "active")
        back = await harness.chat(blocked).say("/start")
        assert "resume from now on" in back[0].text
        notify(clean_engine, shop, 1, start=50)
        await until(lambda: "<code>s50</code>" in str(received(harness, blocked)), timeout=10, what="the new item")
        assert sum(1 for e in harness.chat(blocked).bot_messages() if "New order" in (e.text or "")) == 1


async def test_photo_that_cannot_be_fetched_falls_back_to_text(harness: Harness, clean_engine: Engine) -> None:
    who = 1401
    shop = people_and_shop(clean_engine, [who])
    notify(clean_engine, shop, 1, image="https://broken.test/x.jpg")
    notify(clean_engine, shop, 1, image="https://img.test/ok.jpg", start=1)
    started(harness, [who])
    harness.world.failing_photo_hosts = {"broken.test"}
    try:
        async with harness.running():
            await until(lambda: len(harness.chat(who).bot_messages()) == 2, what="two messages")
    finally:
        harness.world.failing_photo_hosts = set()
    kinds = {(e.kind, "<code>s0</code>" in e.text) for e in harness.chat(who).bot_messages()}
    assert kinds == {("text", True), ("photo", False)}


async def test_grouped_items_are_one_message_and_paused_shops_are_skipped(
    harness: Harness, clean_engine: Engine
) -> None:
    who = 1501
    shop = people_and_shop(clean_engine, [who], grouping=True)
    started(harness, [who])
    notify(clean_engine, shop, 3)  # one group of three
    want = await expected(harness, who)
    assert sum(want.values()) == 1
    async with harness.running() as bot, harness.api() as api:
        await until(lambda: received(harness, who) == want, what="the group")
        assert (await api.post(f"/shops/{shop}/pause", params={"telegram_id": who})).status_code == 200
        bot.delivery.wake()
        notify(clean_engine, shop, 3, start=10)
        skipped = {"telegram_id": who, "status": "skipped"}
        await until(lambda: bot.metrics.skipped == 1, what="the paused group's record")
        records = (await api.get("/delivery/records", params=skipped)).json()
        assert len(records) == 3 and "paused" in records[0]["detail"]
        assert received(harness, who) == want
