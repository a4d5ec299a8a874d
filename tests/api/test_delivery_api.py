"""The bot's delivery endpoints: recipients, delivery records (exactly once across restarts),
blocked people, paused shops, and invites to shared shops."""

from __future__ import annotations

from sqlalchemy.orm import Session

from sellerpulse.notify.drafts import Draft
from storage import outbox
from tests.api.conftest import Bot, person, shop

A, B, C = 11, 22, 33


def add(db: Session, shop_id: int, n: int) -> None:
    drafts = [Draft("new_order", f"{shop_id}:new_order:{i}:seen", str(i), {"srid": f"s{i}"}) for i in range(n)]
    outbox.add(db, shop_id=shop_id, drafts=drafts)
    db.commit()


def test_recipients_are_active_members_paged(bot: Bot, db: Session) -> None:
    pa, pb = person(db, A), person(db, B)
    person(db, C)  # registered, in no shop: nothing to deliver
    shop(db, owner=pa)
    shop(db, owner=pb, name="b")
    first = bot.get("/delivery/recipients", params={"limit": 1}).json()
    rest = bot.get("/delivery/recipients", params={"after": first["next_after"]}).json()
    assert first["items"] + rest["items"] == [A, B]
    end = bot.get("/delivery/recipients", params={"after": rest["next_after"]}).json()
    assert end == {"items": [], "next_after": rest["next_after"]}
    assert bot.post(f"/delivery/people/{B}/inactive", json={"reason": "blocked"}).json()["active"] is False
    assert bot.get("/delivery/recipients").json()["items"] == [A]


def test_records_make_a_redelivered_item_recognisable(bot: Bot, db: Session) -> None:
    pa = person(db, A)
    s = shop(db, owner=pa)
    bot.put("/settings", params={"telegram_id": A}, json={"grouping_enabled": False})
    add(db, s, 3)
    items = bot.get("/notifications", params={"telegram_id": A}).json()["items"]
    ids = [i["id"] for i in items]
    assert bot.post("/delivery/records/lookup", json={"telegram_id": A, "ids": ids}).json() == {"recorded": []}
    body = {"telegram_id": A, "item_id": ids[0], "ids": [ids[0]], "status": "sent", "telegram_message_id": 7}
    assert bot.post("/delivery/records", json=body).json() == {"recorded": 1}
    # A retried write changes nothing: the first answer stays.
    again = {**body, "status": "failed", "detail": "late"}
    assert bot.post("/delivery/records", json=again).json() == {"recorded": 0}
    # The bot crashed before acking: the same items come again, the sent one is recognised.
    redelivered = bot.get("/notifications", params={"telegram_id": A}).json()["items"]
    assert [i["id"] for i in redelivered] == ids
    found = bot.post("/delivery/records/lookup", json={"telegram_id": A, "ids": ids}).json()
    assert found == {"recorded": [ids[0]]}
    listed = bot.get("/delivery/records", params={"telegram_id": A}).json()
    assert [(r["notification_id"], r["status"], r["telegram_message_id"]) for r in listed] == [(ids[0], "sent", 7)]
    # Another person's records are their own.
    person(db, B)
    assert bot.post("/delivery/records/lookup", json={"telegram_id": B, "ids": ids}).json() == {"recorded": []}


def test_a_record_of_an_unknown_notification_is_refused_quietly(bot: Bot, db: Session) -> None:
    person(db, A)
    body = {"telegram_id": A, "item_id": 10**12, "ids": [10**12], "status": "sent"}
    assert bot.post("/delivery/records", json=body).json() == {"recorded": 0}
    bad = bot.post("/delivery/records", json={**body, "status": "lost"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
    assert bot.post("/delivery/records", json={**body, "telegram_id": 999}).status_code == 404


def test_coming_back_after_blocking_skips_the_backlog(bot: Bot, db: Session) -> None:
    pa = person(db, A)
    s = shop(db, owner=pa)
    r = bot.post(f"/delivery/people/{A}/inactive")
    assert r.status_code == 200 and r.json()["inactive_reason"] == "blocked"
    assert bot.get(f"/people/{A}").json()["inactive_since"] is not None
    add(db, s, 4)  # arrives while the bot is blocked
    back = bot.post(f"/delivery/people/{A}/active").json()
    assert back["active"] is True and back["resumed"] is True
    assert bot.get("/notifications", params={"telegram_id": A}).json()["items"] == []
    assert bot.post(f"/delivery/people/{A}/active").json()["resumed"] is False
    assert bot.post("/delivery/people/999/inactive").status_code == 404


def test_pause_is_for_owners_and_listed(bot: Bot, db: Session) -> None:
    pa, pb = person(db, A), person(db, B)
    s = shop(db, owner=pa)
    code = bot.post(f"/shops/{s}/invites", params={"telegram_id": A}).json()["code"]
    bot.post("/invites/accept", json={"telegram_id": B, "code": code})
    assert bot.post(f"/shops/{s}/pause", params={"telegram_id": B}).status_code == 403
    r = bot.post(f"/shops/{s}/pause", params={"telegram_id": A})
    assert r.status_code == 200 and r.json()["paused"] is True
    paused = bot.get("/delivery/paused-shops").json()["shops"]
    assert [p["shop_id"] for p in paused] == [s]
    assert bot.get(f"/shops/{s}", params={"telegram_id": B}).json()["paused"] is True
    assert bot.post(f"/shops/{s}/resume", params={"telegram_id": A}).json()["paused"] is False
    assert bot.get("/delivery/paused-shops").json() == {"shops": []}
    assert pb


def test_invite_codes_are_one_time_and_owner_only(bot: Bot, db: Session) -> None:
    pa = person(db, A)
    person(db, B)
    person(db, C)
    s = shop(db, owner=pa)
    made = bot.post(f"/shops/{s}/invites", params={"telegram_id": A})
    assert made.status_code == 201
    code = made.json()["code"]
    joined = bot.post("/invites/accept", json={"telegram_id": B, "code": code})
    assert joined.status_code == 201 and joined.json() == {"shop_id": s, "telegram_id": B, "role": "member"}
    # Members see the shop; they may not invite; a spent or made-up code is one answer.
    assert bot.get(f"/shops/{s}", params={"telegram_id": B}).json()["role"] == "member"
    assert bot.post(f"/shops/{s}/invites", params={"telegram_id": B}).status_code == 403
    for wrong in (code, "inv_made-up-code"):
        r = bot.post("/invites/accept", json={"telegram_id": C, "code": wrong})
        assert r.status_code == 404 and r.json()["error"]["code"] == "invite_not_found"
    assert bot.get(f"/shops/{s}", params={"telegram_id": C}).status_code == 404
    assert bot.post("/invites/accept", json={"telegram_id": C, "code": "x y"}).status_code == 422


def test_a_key_touch_never_waits_for_another_request(clean_engine) -> None:
    """Every request of a bot uses one key: one that touched last_used_at holds the row until it
    commits, and the others must go on (they queued behind it and emptied the API's pool)."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import text

    from storage import apikeys
    from storage.db import driver_cursor, session_scope

    with session_scope(clean_engine) as s:
        secret = apikeys.create_key(s, name="bot").secret
    later = datetime.now(UTC) + timedelta(minutes=5)
    with Session(clean_engine) as first, first.begin():
        assert apikeys.authenticate(first, secret=secret, now=later) is not None  # touched: the row is held
        with Session(clean_engine) as second, second.begin():
            second.execute(text("SET LOCAL lock_timeout = '1s'"))
            assert apikeys.authenticate(second, secret=secret, now=later + timedelta(minutes=5)) is not None
            with driver_cursor(second) as cur:
                found = apikeys.StoredKey(*cur.execute(
                    "SELECT id, key_hash, revoked_at, NULL FROM api_keys").fetchone())  # fmt: skip
                assert apikeys.verify(cur, found, apikeys.digest_of(secret) or "")
