"""Allegro journal cursor and the checkout-form listing plan (pure logic)."""

from datetime import UTC, datetime, timedelta

import pytest

from connectors.allegro.paging import OFFSET_CAP, EventJournalPaginator, ListingPlan, Window, parts_needed
from connectors.errors import PayloadError

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def test_journal_cursor_moves_to_last_event_and_stops_on_short_page() -> None:
    p = EventJournalPaginator("100", limit=3)
    params = p.init_request()
    assert params == {"limit": "3", "from": "100"}
    assert p.update_state([{"id": "101"}, {"id": "102"}, {"id": "102"}]) == [0, 1]
    p.update_request(params)
    assert params["from"] == "102" and p.has_next_page
    assert p.update_state([{"id": "103"}]) == [0]
    assert p.from_id == "103" and p.has_next_page is False


def test_journal_without_cursor_starts_at_oldest_and_empty_page_keeps_cursor() -> None:
    p = EventJournalPaginator(None)
    assert "from" not in p.init_request()
    p.update_state([])
    assert p.from_id is None and p.has_next_page is False


def test_window_split_covers_the_window_in_order() -> None:
    w = Window(T0, T0 + timedelta(days=30))
    parts = w.split(4)
    assert parts[0].since == w.since and parts[-1].until == w.until
    assert all(a.until == b.since for a, b in zip(parts, parts[1:], strict=False))


def test_a_window_of_one_millisecond_cannot_be_split() -> None:
    with pytest.raises(PayloadError):
        Window(T0, T0 + timedelta(microseconds=999)).split(2)


def test_plan_splits_an_oversized_window_proportionally() -> None:
    plan = ListingPlan.over(T0, T0 + timedelta(days=30))
    window = plan.next_window()
    assert window is not None and not plan.fits(30_000)
    plan.split(window, 30_000)
    assert len(plan.pending) == parts_needed(30_000) == 4
    assert plan.pending[0].since == T0


def test_offsets_never_pass_the_cap() -> None:
    plan = ListingPlan.over(T0, T0)
    offsets = plan.offsets(OFFSET_CAP)
    assert offsets[0] == 0 and offsets[-1] + plan.limit == OFFSET_CAP
    assert plan.offsets(250) == [0, 100, 200]


def test_ids_are_delivered_once_across_windows() -> None:
    plan = ListingPlan.over(T0, T0)
    assert plan.take_new([{"id": "a"}, {"id": "b"}]) == [0, 1]
    assert plan.take_new([{"id": "b"}, {"id": "c"}, {"bad": 1}]) == [1, 2]


def test_a_plan_of_bounded_windows_covers_the_range_in_order() -> None:
    plan = ListingPlan.over(T0, T0 + timedelta(days=30), max_width=timedelta(days=7))
    assert [w.since for w in plan.pending] == [T0 + timedelta(days=d) for d in (0, 7, 14, 21, 28)]
    assert plan.pending[-1].until == T0 + timedelta(days=30)
    assert all(a.until == b.since for a, b in zip(plan.pending, plan.pending[1:], strict=False))
    assert len(ListingPlan.over(T0, T0 + timedelta(days=3), max_width=timedelta(days=7)).pending) == 1


def test_only_the_ids_of_the_window_being_read_and_the_one_before_are_kept() -> None:
    plan = ListingPlan.over(T0, T0 + timedelta(days=21), max_width=timedelta(days=7))
    first = plan.next_window()
    assert first is not None and plan.take_new([{"id": "a"}, {"id": "edge"}]) == [0, 1]
    # The window grows past the cap while read: its sub-windows are still that window.
    plan.split(first, 12_000)
    plan.next_window()
    assert plan.take_new([{"id": "a"}, {"id": "b"}]) == [1]
    while plan.pending and plan.pending[0].group == 0:
        plan.next_window()
    plan.next_window()  # the second week: an order on the shared boundary instant is dropped
    assert plan.take_new([{"id": "edge"}, {"id": "c"}]) == [1]
    plan.next_window()  # the third: the first week's ids are forgotten, the second's kept
    assert set(plan.seen) == {"c"} and plan.take_new([{"id": "c"}, {"id": "d"}]) == [1]
