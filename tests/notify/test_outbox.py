"""The outbox against real PostgreSQL: storing once, fan-out with settings at delivery, cursors."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from sellerpulse.notify import rules
from sellerpulse.notify.drafts import Draft, ShopContext
from storage import apikeys, caller, outbox, scratch
from storage.changes import RowChange
from storage.db import driver_cursor, session_scope
from storage.models import Notification
from storage.sync_state import failing_since
from tests.notify import dbfixtures as db
from tests.notify.factories import allegro_order, first_seen, review, sale, tracked, wb_order

LATER = datetime.now(UTC) + timedelta(hours=1)  # every group window is over by then


def ctx(shop_row: object) -> ShopContext:
    return ShopContext(
        shop_row.id, shop_row.marketplace, shop_row.name, datetime(2020, 1, 1, tzinfo=UTC), shop_row.currency
    )


def draft(i: int, kind: str = "buyout", **payload: object) -> Draft:
    return Draft(kind, f"test:{kind}:{i}", str(i), {"sale_id": f"S{i}", **payload})


def test_add_stores_each_key_once(session: Session) -> None:
    s = db.shop(session)
    assert outbox.add(session, shop_id=s.id, drafts=[draft(1), draft(2), draft(2)]) == 2
    assert outbox.add(session, shop_id=s.id, drafts=[draft(1), draft(2), draft(3)]) == 1
    assert outbox.add(session, shop_id=s.id, drafts=[]) == 0
    assert session.scalar(select(func.count()).select_from(Notification)) == 3


def test_fan_out_by_membership_and_settings_now(session: Session) -> None:
    a, b = db.shop(session, name="A"), db.shop(session, name="B")
    owner = db.person(session, grouping_enabled=False)
    helper = db.person(session, grouping_enabled=False, order_buyouts_enabled=False)
    stranger = db.person(session, grouping_enabled=False)
    db.member(session, a, owner, "owner")
    db.member(session, a, helper)
    db.member(session, b, helper)
    db.member(session, b, stranger)
    outbox.add(
        session, shop_id=a.id, drafts=[draft(1), Draft("sync_failing", "k:sf", "wb_orders", {"stream": "wb_orders"})]
    )
    outbox.add(session, shop_id=a.id, drafts=[draft(2, "return")])
    outbox.add(session, shop_id=b.id, drafts=[draft(3)])

    def kinds(person_id: int) -> list[tuple[str, str]]:
        page = outbox.poll(session, person_id=person_id, now=LATER)
        return [(i.kind, i.shop_name) for i in page.items]

    assert kinds(owner.id) == [("buyout", "A"), ("sync_failing", "A"), ("return", "A")]
    assert kinds(helper.id) == [("return", "A")]  # buyouts off, sync_failing is for owners
    assert kinds(stranger.id) == [("buyout", "B")]
    from storage.settings_repo import update_settings

    update_settings(session, person_id=helper.id, values={"order_buyouts_enabled": True})
    assert kinds(helper.id) == [("buyout", "A"), ("return", "A"), ("buyout", "B")]


def test_allegro_unpaid_choice_gives_each_person_one_message_per_order(session: Session) -> None:
    s = db.shop(session, marketplace="allegro")
    waits = db.person(session, language=None, grouping_enabled=False)
    eager = db.person(session, language=None, grouping_enabled=False, notify_unpaid_orders=True)
    db.member(session, s, waits)
    db.member(session, s, eager)
    shop = ctx(s)
    now = datetime.now(UTC)
    bought = allegro_order("f1", "BOUGHT", bought_at=now)
    paid = allegro_order("f1", "READY_FOR_PROCESSING", fulfillment="NEW", bought_at=now)
    first_paid = allegro_order("f2", "READY_FOR_PROCESSING", bought_at=now)
    outbox.add(session, shop_id=s.id, drafts=rules.for_orders(shop, [first_seen("f1", bought)], now=now))
    outbox.add(session, shop_id=s.id, drafts=rules.for_orders(shop, [RowChange("f1", tracked(bought), paid)], now=now))
    outbox.add(session, shop_id=s.id, drafts=rules.for_orders(shop, [first_seen("f2", first_paid)], now=now))

    def orders(person_id: int) -> list[str]:
        return [i.text.split("\n")[0] for i in outbox.poll(session, person_id=person_id, now=LATER).items]

    assert orders(waits.id) == ["🛒 <b>Nowe zamówienie</b> · Shop"] * 2
    assert orders(eager.id) == ["🛒 <b>Nowe zamówienie (nieopłacone)</b> · Shop", "🛒 <b>Nowe zamówienie</b> · Shop"]


def test_review_threshold_applied_per_person(session: Session) -> None:
    s = db.shop(session)
    strict = db.person(session, review_rating_threshold=1, grouping_enabled=False)
    lenient = db.person(session, review_rating_threshold=4, grouping_enabled=False)
    off = db.person(session, review_rating_threshold=0, grouping_enabled=False)
    for p in (strict, lenient, off):
        db.member(session, s, p)
    changes = [first_seen(f"fb{n}", review(f"fb{n}", n)) for n in range(1, 6)]
    now = datetime.now(UTC)
    outbox.add(session, shop_id=s.id, drafts=rules.for_reviews(ctx(s), changes, now=now))
    counts = [len(outbox.poll(session, person_id=p.id, now=LATER).items) for p in (strict, lenient, off)]
    assert counts == [1, 4, 0]


def test_cursor_ack_forward_only_and_redelivery_same_ids(session: Session) -> None:
    s = db.shop(session)
    p = db.person(session, grouping_enabled=False)
    db.member(session, s, p)
    outbox.add(session, shop_id=s.id, drafts=[draft(i) for i in range(5)])
    first = outbox.poll(session, person_id=p.id, limit=3, now=LATER)
    again = outbox.poll(session, person_id=p.id, limit=3, now=LATER)
    assert [i.id for i in first.items] == [i.id for i in again.items] and len(first.items) == 3
    assert outbox.ack(session, person_id=p.id, cursor=first.next_cursor) == first.next_cursor
    rest = outbox.poll(session, person_id=p.id, now=LATER)
    assert len(rest.items) == 2 and rest.items[0].id > first.next_cursor
    assert outbox.ack(session, person_id=p.id, cursor=1) == first.next_cursor  # never backwards
    assert outbox.ack(session, person_id=p.id, cursor=10**12) == rest.next_cursor  # never past the newest
    assert outbox.poll(session, person_id=p.id, now=LATER).items == []
    # A bot that lost its place may read again from an older cursor: same ids as before.
    replay = outbox.poll(session, person_id=p.id, after=first.items[0].id - 1, now=LATER)
    assert [i.id for i in replay.items] == [i.id for i in first.items] + [i.id for i in rest.items]


def test_grouped_burst_none_lost(session: Session) -> None:
    s = db.shop(session)
    p = db.person(session, grouping_enabled=True, max_group_size=50, group_timeout=300)
    db.member(session, s, p)
    shop = ctx(s)
    now = datetime.now(UTC)
    rows = [wb_order(f"srid-{i}", basket=f"g{i}", bought_at=now) for i in range(510)]
    outbox.add(
        session, shop_id=s.id, drafts=rules.for_orders(shop, [first_seen(r["external_id"], r) for r in rows], now=now)
    )
    # Full groups go at once; the last ten wait for their window to close.
    messages, ids, held = 0, [], []
    for moment in [now] * 3 + [LATER] * 3:
        page = outbox.poll(session, person_id=p.id, limit=50, now=moment)
        messages += len(page.items)
        ids += [n for item in page.items for n in item.notification_ids]
        held.append(page.held)
        outbox.ack(session, person_id=p.id, cursor=page.next_cursor)
    assert held[2] == 10 and held[-1] == 0
    assert messages == 11 and len(ids) == len(set(ids)) == 510


def test_joining_a_shop_does_not_replay_its_past(session: Session) -> None:
    s = db.shop(session)
    early = db.person(session, grouping_enabled=False)
    db.member(session, s, early)
    outbox.add(session, shop_id=s.id, drafts=[draft(1)])
    late = db.person(session, grouping_enabled=False)
    session.execute(text("SELECT 1"))
    db.member(session, s, late)
    session.execute(text("UPDATE memberships SET created_at = clock_timestamp() WHERE person_id = :p"), {"p": late.id})
    outbox.add(session, shop_id=s.id, drafts=[draft(2)])
    assert len(outbox.poll(session, person_id=early.id, now=LATER).items) == 2
    assert [i.notification_ids for i in outbox.poll(session, person_id=late.id, now=LATER).items] == [
        [outbox.cursor_at(session, at=datetime.now(UTC) + timedelta(days=1))]
    ]


def test_poll_many_in_one_query(session: Session) -> None:
    s = db.shop(session)
    people = [db.person(session, grouping_enabled=False) for _ in range(3)]
    for p in people[:2]:
        db.member(session, s, p)
    outbox.add(session, shop_id=s.id, drafts=[draft(1)])
    pages = outbox.poll_many(session, requests=[(p.id, None) for p in people] + [(10**9, None)], now=LATER)
    assert [len(pages[p.id].items) for p in people] == [1, 1, 0]
    assert 10**9 not in pages
    assert outbox.poll(session, person_id=10**9).items == []


def test_stock_merge_to_alerts_moves_are_silent(session: Session) -> None:
    from storage.stock import add_snapshot_page, merge_snapshot

    s = db.shop(session)
    p = db.person(session, grouping_enabled=False, critical_stock_threshold=5)
    db.member(session, s, p)
    shop = ctx(s)

    def snapshot(name: str, rows: list[tuple[str, str, int]]) -> int:
        add_snapshot_page(
            session,
            snapshot_id=name,
            shop_id=s.id,
            rows=[{"sku": k, "warehouse": w, "quantity": q} for k, w, q in rows],
        )
        result = merge_snapshot(session, snapshot_id=name, shop_id=s.id)
        return outbox.notify_stock(session, shop=shop, totals=result.totals, now=datetime.now(UTC))

    assert snapshot("a", [("n1", "Коледино", 8), ("n1", "Казань", 4)]) == 0  # first appearance
    assert snapshot("b", [("n1", "Коледино", 2), ("n1", "Казань", 10)]) == 0  # moved: total 12 both times
    assert snapshot("c", [("n1", "Коледино", 2), ("n1", "Казань", 1)]) == 1  # 12 -> 3
    assert snapshot("d", [("n1", "Коледино", 2), ("n1", "Казань", 0)]) == 0  # already below
    (item,) = outbox.poll(session, person_id=p.id, now=LATER).items
    assert item.kind == "critical_stock" and "Коледино" in item.text and "Казань" in item.text


def test_notify_changes_with_real_upserts_is_idempotent(session: Session) -> None:
    from storage.upserts import upsert_orders, upsert_sales

    s = db.shop(session)
    p = db.person(session, grouping_enabled=False)
    db.member(session, s, p)
    shop = ctx(s)
    now = datetime.now(UTC)
    rows = [wb_order("x1", basket="g", bought_at=now), wb_order("x2", basket="g", bought_at=now)]
    sales = [sale("S77", srid="x1", sold_at=now)]
    for _ in range(2):  # the same page twice: the second write changes nothing
        written = upsert_orders(session, shop_id=s.id, rows=rows)
        outbox.notify_changes(session, shop=shop, stream="wb_orders", changes=written.changes, now=now)
        written_sales = upsert_sales(session, shop_id=s.id, rows=sales)
        outbox.notify_changes(session, shop=shop, stream="wb_sales", changes=written_sales.changes, now=now)
    assert session.scalar(select(func.count()).select_from(Notification)) == 3
    items = outbox.poll(session, person_id=p.id, now=LATER).items
    assert [(i.kind, len(i.notification_ids)) for i in items] == [("new_order", 2), ("buyout", 1)]


def test_rows_commit_in_id_order(clean_engine: Engine) -> None:
    """A poll never sees a row whose lower-id sibling is still uncommitted (the add lock)."""
    with Session(clean_engine) as setup, setup.begin():
        s = db.shop(setup)
        p = db.person(setup, grouping_enabled=False)
        db.member(setup, s, p)
        setup.execute(text("UPDATE memberships SET created_at = now() - interval '1 day'"))
        shop_id, person_id = s.id, p.id
    first = Session(clean_engine)
    first.begin()
    outbox.add(first, shop_id=shop_id, drafts=[draft(1)])  # holds the outbox lock, not committed
    done = threading.Event()

    def second() -> None:
        with Session(clean_engine) as other, other.begin():
            outbox.add(other, shop_id=shop_id, drafts=[draft(2)])
        done.set()

    worker = threading.Thread(target=second)
    worker.start()
    assert not done.wait(timeout=1.0)  # the second writer waits for the first to commit
    with Session(clean_engine) as reader:
        assert outbox.poll(reader, person_id=person_id, now=LATER).items == []
    first.commit()
    first.close()
    worker.join(timeout=10)
    with Session(clean_engine) as reader:
        items = outbox.poll(reader, person_id=person_id, now=LATER).items
    assert [i.text.count("S1") + 2 * i.text.count("S2") for i in items] == [1, 2]
    assert items[0].id < items[1].id


def test_api_delivery_protocol_adapter(session: Session) -> None:
    s = db.shop(session)
    p = db.person(session, grouping_enabled=False)
    db.member(session, s, p)
    outbox.add(session, shop_id=s.id, drafts=[draft(1)])
    secret = apikeys.create_key(session, name="bot").secret
    delivery = outbox.Delivery()
    cur = driver_cursor(session)

    def poll_as(**kw: object) -> outbox.CallerPage | None:
        args = {"key_digest": apikeys.hash_key(secret), "telegram_id": p.telegram_id, "after": None, "at": None}
        return delivery.poll_as(cur, **{**args, **kw}, limit=10, now=LATER)

    found = poll_as()
    items, cursor = found.page.items, found.page.next_cursor
    assert found.person_id == p.id and found.key.key_hash == apikeys.hash_key(secret)
    assert [i.ids for i in items] == [[cursor]]
    assert delivery.poll_many(session, requests=[(p.id, None)], limit=10, now=LATER) == {p.id: (items, cursor)}
    assert poll_as(at=datetime.now(UTC) + timedelta(days=1)).page.items == []  # a time after it: nothing new
    assert poll_as(at=datetime(2000, 1, 1, tzinfo=UTC)).page.items == items
    assert poll_as(after=cursor).page == outbox.Page(next_cursor=cursor)
    assert delivery.ack(session, person_id=p.id, cursor=cursor) == cursor
    assert poll_as().page.items == []
    assert poll_as(telegram_id=p.telegram_id + 1).person_id is None
    assert poll_as(key_digest=apikeys.hash_key("sp_other")) is None


def test_sync_failing_once_per_streak_to_owners(session: Session) -> None:
    s = db.shop(session)
    owner, member = db.person(session, grouping_enabled=False), db.person(session, grouping_enabled=False)
    db.member(session, s, owner, "owner")
    db.member(session, s, member)
    start = datetime.now(UTC) - timedelta(hours=3)
    for minutes, status in [(0, "success"), (10, "failed"), (70, "failed")]:
        session.execute(
            text("INSERT INTO sync_runs (shop_id, stream, status, started_at) VALUES (:s, 'wb_orders', :st, :at)"),
            {"s": s.id, "st": status, "at": start + timedelta(minutes=minutes)},
        )
    shop = outbox.shop_context(session, shop_id=s.id)

    def failing(now: datetime) -> int:
        since = failing_since(session, shop_id=s.id, stream="wb_orders")
        return outbox.notify_sync_failing(
            session, shop=shop, stream="wb_orders", failing_since=since, now=now, after=timedelta(hours=1), error="boom"
        )

    now = start + timedelta(minutes=75)
    assert failing(start + timedelta(minutes=65)) == 0  # failing for 55 minutes only
    assert failing(now) == 1
    assert failing(now + timedelta(minutes=5)) == 0
    assert [i.kind for i in outbox.poll(session, person_id=owner.id, now=LATER).items] == ["sync_failing"]
    assert outbox.poll(session, person_id=member.id, now=LATER).items == []
    # A success ends the streak; the next streak is news again.
    for minutes, status in [(80, "success"), (90, "failed")]:
        session.execute(
            text("INSERT INTO sync_runs (shop_id, stream, status, started_at) VALUES (:s, 'wb_orders', :st, :at)"),
            {"s": s.id, "st": status, "at": start + timedelta(minutes=minutes)},
        )
    assert failing(start + timedelta(minutes=155)) == 1


def test_shop_status_alert_once_per_move(session: Session) -> None:
    from storage.models import ShopStatus
    from storage.shops import set_status

    s = db.shop(session, marketplace="allegro")

    def alert() -> int:
        view = outbox.shop_context(session, shop_id=s.id)
        return outbox.notify_shop_status(
            session, shop=view, status=s.status, changed_at=s.status_changed_at, reason=s.status_reason
        )

    assert alert() == 0  # active
    set_status(session, shop=s, status=ShopStatus.needs_reauth, reason="invalid_grant")
    assert alert() == 1
    assert alert() == 0  # the same move, seen again
    set_status(session, shop=s, status=ShopStatus.active, reason=None)
    set_status(session, shop=s, status=ShopStatus.broken, reason="401")
    assert alert() == 1


def test_cursor_at_a_time_for_old_bots(session: Session) -> None:
    a, b = db.shop(session), db.shop(session)
    p = db.person(session, grouping_enabled=False)
    db.member(session, a, p)
    outbox.add(session, shop_id=a.id, drafts=[draft(1)])
    middle = session.execute(text("SELECT clock_timestamp()")).scalar_one()
    outbox.add(session, shop_id=b.id, drafts=[draft(2)])  # not the person's shop
    outbox.add(session, shop_id=a.id, drafts=[draft(3)])
    first = outbox.cursor_at(session, at=middle, person_id=p.id)
    page = outbox.poll(session, person_id=p.id, after=first, now=LATER)
    assert [i.text.count("S3") for i in page.items] == [1]  # only what came after `middle`
    assert outbox.cursor_at(session, at=middle) == first
    assert outbox.cursor_at(session, at=middle - timedelta(days=1), person_id=p.id) == 0


def test_stock_runout_once_a_day_for_the_chosen_horizon(session: Session) -> None:
    from storage.stock import add_snapshot_page, merge_snapshot
    from storage.upserts import upsert_orders

    s = db.shop(session)
    week = db.person(session, grouping_enabled=False, stock_horizon_days=7, critical_stock_threshold=0)
    fortnight = db.person(session, grouping_enabled=False, stock_horizon_days=14, critical_stock_threshold=0)
    db.member(session, s, week)
    db.member(session, s, fortnight)
    shop = ctx(s)
    now = datetime.now(UTC)
    # 30 sold in 30 days: one a day.
    orders = [wb_order(f"o{i}", basket=f"g{i}", bought_at=now - timedelta(days=i % 29)) for i in range(30)]
    for row in orders:
        row["lines"][0]["sku"] = "n1"
    upsert_orders(session, shop_id=s.id, rows=orders)

    def snapshot(name: str, quantity: int) -> int:
        add_snapshot_page(session, snapshot_id=name, shop_id=s.id, rows=[{"sku": "n1", "quantity": quantity}])
        result = merge_snapshot(session, snapshot_id=name, shop_id=s.id)
        return outbox.notify_stock(session, shop=shop, totals=result.totals, now=now)

    snapshot("a", 40)  # 40 days of stock: nothing
    assert snapshot("b", 12) == 1  # 12 days: under the 14-day horizon
    assert snapshot("c", 11) == 0  # still 14-day, same day: already told
    assert snapshot("d", 5) == 2  # 5 days: under 7 and 10 now
    kinds = {p.id: [i.kind for i in outbox.poll(session, person_id=p.id, now=LATER).items] for p in (week, fortnight)}
    assert kinds == {week.id: ["stock_runout"], fortnight.id: ["stock_runout"]}


def test_an_ack_commits_without_waiting_for_the_flush_and_nothing_else_does(clean_engine: Engine) -> None:
    """An ack's transaction commits without waiting for the WAL flush (outbox.ACK_ASYNC), the
    route's (outbox.ack) and the fast path's (caller.ack_as) alike; the setting is the ack
    transaction's own, so the connection's next one (the API's connections serve every other
    write too) waits for the flush as ever."""
    with session_scope(clean_engine) as session:
        s, p = db.shop(session), db.person(session)
        db.member(session, s, p)
        outbox.add(session, shop_id=s.id, drafts=[draft(1), draft(2)])
        secret = apikeys.create_key(session, name="bot").secret
        person_id, telegram_id = p.id, p.telegram_id
        newest = session.scalar(select(func.max(Notification.id)))

    def durability(run: Callable[[], object]) -> str:
        run()
        return conn.execute(text("SHOW synchronous_commit")).scalar_one()

    with clean_engine.connect() as conn:
        ack = Session(bind=conn)
        assert (
            durability(lambda: outbox.ack(ack, person_id=person_id, cursor=newest - 1)) == "off"
        )  # its commit included
        ack.commit()
        assert conn.execute(text("SHOW synchronous_commit")).scalar_one() == "on"
    with psycopg.connect(scratch.libpq_url(clean_engine.url.render_as_string(hide_password=False))) as raw:
        raw.autocommit = True  # as the API's fast path runs it: the statement is its own transaction
        found = caller.ack_as(
            raw.cursor(), key_digest=apikeys.hash_key(secret), telegram_id=telegram_id, cursor=newest + 9
        )
        assert found is not None and found.cursor == newest  # never past the newest
        assert raw.execute("SHOW synchronous_commit").fetchone() == ("on",)
    with session_scope(clean_engine) as session:
        assert outbox.stored_cursor(session, person_id=person_id) == newest
