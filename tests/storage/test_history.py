"""History reads: progress only moves forward, a finished read closes the reads it covers, and a
shop's history is complete once its first sync is done and nothing is pending."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from storage import history
from storage.models import Shop

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def _shop(session: Session, *, synced: bool = True) -> int:
    shop = Shop(marketplace="allegro", name="s", notify_from=T0 if synced else None)
    session.add(shop)
    session.flush()
    return shop.id


def test_progress_only_moves_forward_and_a_second_begin_keeps_it(session: Session) -> None:
    shop_id = _shop(session)
    read = history.begin_read(session, shop_id=shop_id, name="first-sync", since=T0, until=T0 + timedelta(days=90))
    assert read.resume_from == T0 and not read.complete
    history.advance_read(session, shop_id=shop_id, name="first-sync", done_until=T0 + timedelta(days=14))
    history.advance_read(session, shop_id=shop_id, name="first-sync", done_until=T0 + timedelta(days=7))
    again = history.begin_read(session, shop_id=shop_id, name="first-sync", since=T0 - timedelta(days=9), until=T0)
    assert (again.since, again.resume_from) == (T0, T0 + timedelta(days=14))  # range and progress kept
    assert history.history_complete(session, shop_id=shop_id) is False
    history.finish_read(session, shop_id=shop_id, name="first-sync")
    assert history.history_complete(session, shop_id=shop_id) is True
    assert history.pending_reads(session, shop_id=shop_id) == []


def test_a_finished_read_closes_the_pending_reads_it_covers(session: Session) -> None:
    shop_id = _shop(session)
    inner = history.backfill_name(T0 + timedelta(days=3), T0 + timedelta(days=5))
    outer = history.backfill_name(T0, T0 + timedelta(days=30))
    beyond = history.backfill_name(T0 + timedelta(days=20), T0 + timedelta(days=40))
    for name, a, b in ((inner, 3, 5), (outer, 0, 30), (beyond, 20, 40)):
        history.begin_read(
            session, shop_id=shop_id, name=name, since=T0 + timedelta(days=a), until=T0 + timedelta(days=b)
        )
    history.finish_read(session, shop_id=shop_id, name=outer)
    assert [r.name for r in history.pending_reads(session, shop_id=shop_id)] == [beyond]
    # Run again, a finished read starts over (and is pending while it runs).
    restarted = history.restart_read(session, shop_id=shop_id, name=outer)
    assert restarted.done_until is None and not restarted.complete


def test_history_status_of_many_shops(session: Session) -> None:
    done, first_sync_running, backfilling = _shop(session), _shop(session, synced=False), _shop(session)
    history.begin_read(session, shop_id=backfilling, name="b", since=T0, until=T0 + timedelta(days=1))
    status = history.history_status(session, shop_ids=[done, first_sync_running, backfilling, 10**9])
    assert status == {done: True, first_sync_running: False, backfilling: False}
    assert history.history_status(session, shop_ids=[]) == {}
