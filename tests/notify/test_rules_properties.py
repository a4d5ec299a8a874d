"""Exactly-once at the rule level, for any way syncs happen to observe an order's life.

A sync sees an order's state at that moment; syncs may skip states, see one state several
times (re-reads, overlapping runs), and the outbox keeps one row per dedupe key. Whatever the
observation pattern, each person must get at most one new_order message per order (exactly
one when they should), and at most one cancellation.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sellerpulse.notify import rules
from sellerpulse.notify.delivery import Preferences, Stored, wants
from storage.changes import RowChange
from tests.notify.factories import ALLEGRO, NOW, allegro_order, tracked


def state(status: str, fulfillment: str | None = None, *, paid: bool = False) -> dict[str, Any]:
    row = allegro_order("f1", status, fulfillment=fulfillment, paid=paid)
    if status == "READY_FOR_PROCESSING" and fulfillment in {"PROCESSING", "SENT", "PICKED_UP"}:
        row["status"] = {"PROCESSING": "processing", "SENT": "sent", "PICKED_UP": "delivered"}[fulfillment]
    return row


LIVES = {
    "fulfilled": [
        state("BOUGHT"),
        state("FILLED_IN"),
        state("READY_FOR_PROCESSING", "NEW", paid=True),
        state("READY_FOR_PROCESSING", "PROCESSING", paid=True),
        state("READY_FOR_PROCESSING", "SENT", paid=True),
    ],
    "cancelled unpaid": [state("BOUGHT"), state("FILLED_IN"), state("CANCELLED")],
    "cancelled paid": [
        state("BOUGHT"),
        state("READY_FOR_PROCESSING", "NEW", paid=True),
        state("READY_FOR_PROCESSING", "CANCELLED", paid=True),
    ],
    "paid at once": [state("READY_FOR_PROCESSING", "NEW", paid=True), state("READY_FOR_PROCESSING", "SENT", paid=True)],
}


def observe(life: list[dict[str, Any]], seen: list[int]) -> list[Stored]:
    """Run the rule over the observations; keep the first draft per key (the outbox's unique index)."""
    stored: dict[str, Stored] = {}
    previous: dict[str, Any] | None = None
    for index in seen:
        current = life[index]
        if previous is not None and current is previous:
            continue  # the merge reports no change for an identical row
        change = RowChange("f1", None if previous is None else tracked(previous), current)
        for draft in rules.for_orders(ALLEGRO, [change], now=NOW):
            if draft.dedupe_key not in stored:
                bought = draft.payload.get("bought_key") in stored
                stored[draft.dedupe_key] = Stored(
                    len(stored) + 1, ALLEGRO.id, draft.kind, draft.payload, NOW, bought_notified=bought
                )
        previous = current
    return list(stored.values())


observations = st.sampled_from(sorted(LIVES)).flatmap(
    lambda name: st.tuples(
        st.just(name),
        st.lists(st.integers(0, len(LIVES[name]) - 1), min_size=0, max_size=8).map(
            lambda xs: [*sorted(xs), len(LIVES[name]) - 1]  # time only moves forward; the last sync sees the end
        ),
    )
)


@settings(max_examples=400, deadline=None)
@given(observations)
def test_each_person_hears_of_an_order_once(case: tuple[str, list[int]]) -> None:
    name, seen = case
    life = LIVES[name]
    stored = observe(life, seen)
    paid_seen = any(rules._allegro_paid(life[i]) and not life[i]["is_cancelled"] for i in seen)
    for unpaid in (False, True):
        pref = Preferences(notify_unpaid_orders=unpaid)
        orders = [s for s in stored if s.kind == "new_order" and wants(pref, s)]
        cancels = [s for s in stored if s.kind == "cancellation"]
        assert len(orders) <= 1 and len(cancels) <= 1
        if paid_seen or unpaid:
            assert len(orders) == 1, (name, seen, unpaid, [s.payload.get("stage") for s in stored])
        assert bool(cancels) == bool(life[-1]["is_cancelled"])


@settings(max_examples=200, deadline=None)
@given(observations)
def test_re_reading_states_changes_nothing(case: tuple[str, list[int]]) -> None:
    name, seen = case
    once = sorted({(s.kind, s.payload.get("stage")) for s in observe(LIVES[name], sorted(set(seen)))})
    twice = sorted({(s.kind, s.payload.get("stage")) for s in observe(LIVES[name], sorted(seen + seen))})
    assert once == twice


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.booleans(), min_size=1, max_size=12),  # per WB order: is it cancelled in the end?
    st.lists(st.integers(1, 5), min_size=1, max_size=6),  # how the page is cut into write batches
    st.booleans(),  # each order seen first as new, or first seen already cancelled
)
def test_wb_keys_do_not_depend_on_batching_or_re_reads(cancelled: list[bool], cuts: list[int], seen_new: bool) -> None:
    from tests.notify.factories import WB, wb_order

    finals = [wb_order(f"s{i}", basket="g1", cancelled=c) for i, c in enumerate(cancelled)]
    firsts = [wb_order(f"s{i}", basket="g1") if seen_new else finals[i] for i in range(len(finals))]

    def run(batches: list[list[int]]) -> list[str]:
        keys: list[str] = []
        state: dict[int, dict[str, Any]] = {}
        for batch in batches:
            changes = []
            for i in batch:
                new = finals[i] if i in state else firsts[i]
                if state.get(i) is new:
                    continue  # identical row: the merge reports nothing
                changes.append(RowChange(f"s{i}", None if i not in state else tracked(state[i]), new))
                state[i] = new
            keys += [d.dedupe_key for d in rules.for_orders(WB, changes, now=NOW)]
        return keys

    everything = list(range(len(finals)))
    one_go = run([everything, everything])
    pieces, start = [], 0
    for cut in cuts * len(finals):
        pieces.append(everything[start : start + cut])
        start += cut
    split = run([p for p in pieces if p] + [everything, everything])
    assert sorted(set(split)) == sorted(set(one_go))
    assert len(split) == len(set(split))  # the rule itself never repeats a transition
    assert len([k for k in one_go if ":new_order:" in k]) == len(finals)
    assert len([k for k in one_go if ":cancellation:" in k]) == sum(cancelled)
