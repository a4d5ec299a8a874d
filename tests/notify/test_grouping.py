"""Grouping and the delivery cursor (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sellerpulse.notify.delivery import Preferences, Stored
from sellerpulse.notify.grouping import plan

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def row(id_: int, kind: str = "new_order", *, seconds: float = 0, shop: int = 1, **payload: Any) -> Stored:
    return Stored(id=id_, shop_id=shop, kind=kind, payload=payload, created_at=T0 + timedelta(seconds=seconds))


GROUPING = Preferences(grouping_enabled=True, max_group_size=5, group_timeout=300)
SINGLE = Preferences(grouping_enabled=False)


def test_grouping_off_each_notification_is_a_message() -> None:
    rows = [row(i, seconds=i) for i in range(1, 4)]
    result = plan(rows, pref=SINGLE, after=0, now=T0, limit=50, page_full=False)
    assert [g.ids for g in result.groups] == [[1], [2], [3]]
    assert result.next_cursor == 3


def test_open_group_is_held_and_cursor_stays_before_it() -> None:
    rows = [row(1, "buyout"), row(2, seconds=1), row(3, seconds=2)]
    result = plan(rows, pref=GROUPING, after=0, now=T0 + timedelta(seconds=10), limit=50, page_full=False)
    assert result.groups == [] and result.next_cursor == 0 and result.held == 3


def test_group_closes_when_window_passes() -> None:
    rows = [row(1), row(2, seconds=10), row(3, seconds=400)]
    result = plan(rows, pref=GROUPING, after=0, now=T0 + timedelta(seconds=301), limit=50, page_full=False)
    assert [g.ids for g in result.groups] == [[1, 2]]
    assert result.next_cursor == 2  # 3 opened a new window, still open


def test_full_group_is_sent_at_once() -> None:
    rows = [row(i, seconds=i) for i in range(1, 8)]
    result = plan(rows, pref=GROUPING, after=0, now=T0 + timedelta(seconds=8), limit=50, page_full=False)
    assert [g.ids for g in result.groups] == [[1, 2, 3, 4, 5]]
    assert result.groups[0].id == 5 and result.next_cursor == 5


def test_group_straddling_a_held_one_is_held_too() -> None:
    # buyouts 1 and 3 are a closed group (window over); new_order 2 opened later and is still open.
    pref = Preferences(grouping_enabled=True, max_group_size=5, group_timeout=60)
    rows = [row(1, "buyout"), row(2, "new_order", seconds=50), row(3, "buyout", seconds=55)]
    result = plan(rows, pref=pref, after=0, now=T0 + timedelta(seconds=70), limit=50, page_full=False)
    assert result.groups == [] and result.next_cursor == 0


def test_wb_basket_is_one_message_even_without_grouping() -> None:
    rows = [row(1, basket_id="g1"), row(2, basket_id="g1"), row(3, "buyout"), row(4, basket_id="g2")]
    result = plan(rows, pref=SINGLE, after=0, now=T0, limit=50, page_full=False)
    assert [(g.ids, g.basket) for g in result.groups] == [([1, 2], True), ([3], False), ([4], False)]


def test_page_ending_inside_a_basket_waits_for_the_rest() -> None:
    rows = [row(1, "buyout"), row(2, basket_id="g1"), row(3, basket_id="g1")]
    result = plan(rows, pref=SINGLE, after=0, now=T0, limit=50, page_full=True)
    assert [g.ids for g in result.groups] == [[1]] and result.next_cursor == 1


def test_unwanted_rows_are_passed_by_the_cursor() -> None:
    rows = [row(1, "negative_review", stars=5), row(2, "buyout")]
    result = plan(rows, pref=SINGLE, after=0, now=T0, limit=50, page_full=False)
    assert [g.ids for g in result.groups] == [[2]] and result.next_cursor == 2


def test_limit_counts_messages_and_cursor_stops_after_the_last_one() -> None:
    rows = [row(i, "buyout") for i in range(1, 11)]
    result = plan(rows, pref=SINGLE, after=0, now=T0, limit=4, page_full=False)
    assert [g.id for g in result.groups] == [1, 2, 3, 4] and result.next_cursor == 4


def test_burst_of_500_orders_becomes_few_messages_none_lost() -> None:
    pref = Preferences(grouping_enabled=True, max_group_size=50, group_timeout=300)
    rows = [row(i, seconds=i / 10) for i in range(1, 501)]
    sent: list[list[int]] = []
    after, now = 0, T0 + timedelta(seconds=400)
    for _ in range(100):
        page = [r for r in rows if r.id > after][:250]
        result = plan(page, pref=pref, after=after, now=now, limit=50, page_full=len(page) == 250)
        sent.extend(g.ids for g in result.groups)
        if result.next_cursor == after:
            break
        after = result.next_cursor
    assert len(sent) == 10
    assert sorted(i for ids in sent for i in ids) == list(range(1, 501))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["new_order", "buyout", "return"]), st.integers(0, 900), st.sampled_from([None, "g1", "g2"])
        ),
        min_size=1,
        max_size=40,
    ),
    st.integers(1, 6),
    st.integers(0, 600),
    st.integers(1, 5),
    st.integers(3, 15),
    st.booleans(),
    st.integers(0, 1500),
)
def test_polling_until_quiet_delivers_every_row_exactly_once(
    specs: list[tuple[str, int, str | None]],
    size: int,
    timeout: int,
    limit: int,
    fetch: int,
    grouping: bool,
    early: int,
) -> None:
    """Repeated polls (acking each cursor), first while windows are open, then after they closed,
    deliver each notification once, whatever the settings."""
    offsets = sorted(s for _, s, _ in specs)  # created_at rises with id
    rows = [row(i + 1, kind, seconds=offsets[i], basket_id=basket) for i, (kind, _, basket) in enumerate(specs)]
    pref = Preferences(grouping_enabled=grouping, max_group_size=size, group_timeout=timeout)
    late = T0 + timedelta(seconds=offsets[-1] + timeout + 1)  # every window is over
    seen: list[int] = []
    after = 0
    for attempt in range(len(rows) + 10):
        now = T0 + timedelta(seconds=early) if attempt < 3 else late
        page = [r for r in rows if r.id > after][:fetch]
        result = plan(page, pref=pref, after=after, now=now, limit=limit, page_full=len(page) == fetch)
        for group in result.groups:
            assert all(i > after for i in group.ids) and group.id == max(group.ids)
            assert max(group.ids) <= result.next_cursor
            seen.extend(group.ids)
        assert result.next_cursor >= after
        after = result.next_cursor
    assert sorted(seen) == [r.id for r in rows]


def test_same_cursor_same_items() -> None:
    rows = [row(i, "buyout" if i % 3 else "new_order", seconds=i) for i in range(1, 20)]
    a = plan(rows, pref=GROUPING, after=0, now=T0 + timedelta(hours=1), limit=3, page_full=False)
    b = plan(rows, pref=GROUPING, after=0, now=T0 + timedelta(hours=2), limit=3, page_full=False)
    assert [g.ids for g in a.groups] == [g.ids for g in b.groups] and a.next_cursor == b.next_cursor


@given(
    st.lists(
        st.tuples(st.sampled_from(["new_order", "buyout"]), st.integers(0, 900), st.sampled_from([None, "g1"])),
        min_size=1,
        max_size=30,
    ),
    st.integers(1, 6),
    st.integers(0, 600),
    st.booleans(),
    st.integers(0, 1500),
    st.floats(0, 1),
)
@settings(max_examples=300)
def test_a_plan_holds_until_the_next_window_closes(
    specs: list[tuple[str, int, str | None]], size: int, timeout: int, grouping: bool, early: int, where: float
) -> None:
    """`until` is what a cached page may be served until (api.pagecache): the plan at any later
    moment before it is the same plan; without it, at any later moment at all."""
    offsets = sorted(s for _, s, _ in specs)
    rows = [row(i + 1, kind, seconds=offsets[i], basket_id=basket) for i, (kind, _, basket) in enumerate(specs)]
    pref = Preferences(grouping_enabled=grouping, max_group_size=size, group_timeout=timeout)
    now = T0 + timedelta(seconds=early)

    def at(moment: datetime) -> tuple[list[list[int]], int, int]:
        result = plan(rows, pref=pref, after=0, now=moment, limit=3, page_full=len(rows) > 20)
        return [g.ids for g in result.groups], result.next_cursor, result.held

    first = plan(rows, pref=pref, after=0, now=now, limit=3, page_full=len(rows) > 20)
    if first.until is None:
        assert at(now + timedelta(days=30)) == at(now)
        return
    assert first.until > now and grouping
    later = now + (first.until - now) * where
    assert at(min(later, first.until - timedelta(microseconds=1))) == at(now)
    # And it is the next change, not a moment picked early for nothing: some window closes then.
    assert any(r.created_at + timedelta(seconds=timeout) == first.until for r in rows)


def test_a_held_group_says_when_its_window_closes() -> None:
    rows = [row(1), row(2, seconds=10)]
    held = plan(rows, pref=GROUPING, after=0, now=T0 + timedelta(seconds=20), limit=50, page_full=False)
    assert held.groups == [] and held.until == T0 + timedelta(seconds=300)
    ready = plan(rows, pref=GROUPING, after=0, now=held.until, limit=50, page_full=False)
    assert [g.ids for g in ready.groups] == [[1, 2]] and ready.until is None
    assert plan(rows, pref=SINGLE, after=0, now=T0, limit=50, page_full=False).until is None
