"""The lazy change-stream merge against a brute-force model of the same data."""

from __future__ import annotations

import pytest

from sandbox.hashing import u01
from sandbox.scenario import TimeLayout
from sandbox.streams import Change, Timeline


def make(count: int | None) -> Timeline:
    layout = TimeLayout(start=1000, step=7.5, count=count)

    def appear(i: int) -> int:
        b = i - i % 3  # groups of 3 share a time, like WB baskets
        return 1000 + int((b + 0.9 * u01(1, 2, b)) * 7.5)

    return Timeline(
        layout,
        appear,
        [
            Change(0, "row", 0, lambda i: True),
            Change(1, "row", 40, lambda i: i % 4 == 1),
            Change(2, "row", 90, lambda i: u01(1, 3, i) < 0.3),
            Change(3, "other", 15, lambda i: i % 5 == 0),
        ],
    )


def brute(t: Timeline, n: int, lo: float, hi: float) -> list[tuple[int, int, int]]:
    out = [
        (t.appear(i) + c.delay, c.tag, i)
        for i in range(n)
        for c in t.changes.values()
        if c.applies(i) and lo <= t.appear(i) + c.delay <= hi
    ]
    return sorted(out)


@pytest.mark.parametrize("lo,hi", [(0, 10_000), (1200, 1800), (1500, 1500), (1931, 2400)])
def test_changes_between_equals_brute_force(lo: float, hi: float) -> None:
    t = make(200)
    assert list(t.changes_between(lo, hi)) == brute(t, 200, lo, hi)


def test_resume_strictly_after_a_cursor_and_tag_filter() -> None:
    t = make(None)  # unbounded: the live case
    everything = brute(t, 300, 0, 2500)
    for cut in (0, 1, 17, 150, len(everything) - 2):
        cursor = everything[cut]
        resumed = list(t.changes_between(0, 2500, after=cursor))
        assert resumed == everything[cut + 1 :]
    only = list(t.changes_between(0, 2500, tags={1, 3}))
    assert only == [c for c in everything if c[1] in (1, 3)]


def test_latest_and_applied() -> None:
    t = make(200)
    now = 2000
    for i in range(0, 120):
        applied = t.applied("row", i, now)
        expected = [c for c in t.changes.values() if c.row == "row" and c.applies(i) and t.appear(i) + c.delay <= now]
        assert applied == sorted(expected, key=lambda c: (c.delay, c.tag))
        for c in applied:
            assert t.is_latest(c.tag, i, now) == (c is applied[-1])
    # latest_before finds the last change of a kind at or before now.
    last = max(x for x in brute(t, 200, 0, now) if x[1] == 2)
    assert t.latest_before(2, now) == last[2]


def test_index_arithmetic() -> None:
    t = make(200)
    for time in (999, 1000, 1234.5, 2499, 10_000):
        first = t.first_index_at(time)
        assert all(t.appear(i) < time for i in range(first))
        assert first == 200 or t.appear(first) >= time
    rng = t.indices_appearing(1300, 1400)
    assert list(rng) == [i for i in range(200) if 1300 <= t.appear(i) <= 1400]
