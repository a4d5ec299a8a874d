"""The diff rules: from one batch's RowChanges to drafts (pure, no database)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from sellerpulse.notify import rules
from sellerpulse.notify.drafts import ProductInfo
from storage.changes import RowChange
from tests.notify.factories import (
    ALLEGRO,
    NOTIFY_FROM,
    NOW,
    WB,
    allegro_order,
    changed,
    first_seen,
    review,
    sale,
    wb_order,
)


def kinds(drafts: list) -> list[tuple[str, str]]:
    return [(d.kind, d.dedupe_key) for d in drafts]


# -- WB orders -------------------------------------------------------------------------------


def test_wb_new_order_once_per_srid_with_basket_and_place() -> None:
    rows = [wb_order("srid-1", basket="g9"), wb_order("srid-2", basket="g9")]
    drafts = rules.for_orders(WB, [first_seen(r["external_id"], r) for r in rows], now=NOW)
    assert kinds(drafts) == [("new_order", "7:new_order:srid-1:seen"), ("new_order", "7:new_order:srid-2:seen")]
    payload = drafts[0].payload
    assert payload["basket_id"] == "g9"
    assert payload["warehouse"] == "Коледино" and payload["region"] == "Московская"
    assert payload["amount"] == "1299.00" and payload["items"][0]["size"] == "M"


def test_a_shop_before_its_first_sync_is_silent() -> None:
    change = first_seen("srid-1", wb_order("srid-1"))
    assert rules.for_orders(replace(WB, notify_from=None), [change], now=NOW) == []
    assert rules.for_sales(replace(WB, notify_from=None), [first_seen("S1", sale("S1"))], now=NOW) == []


def test_a_backfill_is_silent_for_history_only() -> None:
    """Whichever run writes a change first: what happened after notify-from notifies (once, by its
    key), what happened before is history."""
    shop = replace(WB, notify_from=NOW - timedelta(hours=2), backfill=True)
    live = first_seen("srid-1", wb_order("srid-1", bought_at=NOW - timedelta(minutes=30)))
    history = first_seen("srid-0", wb_order("srid-0", bought_at=NOW - timedelta(days=20)))
    assert (
        kinds(rules.for_orders(shop, [live, history], now=NOW))
        == kinds(rules.for_orders(replace(shop, backfill=False), [live], now=NOW))
        == [("new_order", "7:new_order:srid-1:seen")]
    )
    assert kinds(rules.for_sales(shop, [first_seen("S1", sale("S1"))], now=NOW)) == [("buyout", "7:buyout:s1:sale")]
    allegro = replace(ALLEGRO, notify_from=NOW - timedelta(hours=2), backfill=True)
    old = allegro_order("f9", "BOUGHT", bought_at=NOW - timedelta(days=3))
    cancelled = {**allegro_order("f9", "CANCELLED"), "bought_at": old["bought_at"]}
    assert kinds(rules.for_orders(allegro, [changed("f9", old, cancelled)], now=NOW)) == [
        ("cancellation", "8:cancellation:f9:cancelled")
    ]
    long_ago = {**cancelled, "source_updated_at": NOW - timedelta(days=2), "cancelled_at": NOW - timedelta(days=2)}
    assert rules.for_orders(allegro, [first_seen("f9", long_ago)], now=NOW) == []


def test_a_wb_order_is_judged_by_when_it_was_placed_however_late_statistics_list_it() -> None:
    """Statistics list some orders days after their `date`; the feed showed each when placed, and
    a shop's first feed read is history. Placed after the point: news, even listed days later;
    placed before it: history, even though statistics first list it after the point (once the
    late window let those through: a second "new order" days after the feed's silent first read
    had it). A history order cancelled after the point still notifies its cancellation."""
    shop = replace(WB, notify_from=NOW - timedelta(days=2, hours=21))
    placed_after = wb_order("after", bought_at=NOW - timedelta(days=2, hours=20))
    placed_before = wb_order("before", bought_at=NOW - timedelta(days=2, hours=22))
    drafts = rules.for_orders(shop, [first_seen("after", placed_after), first_seen("before", placed_before)], now=NOW)
    assert [d.entity for d in drafts] == ["after"]
    cancelled_since = {**placed_before, "is_cancelled": True, "cancelled_at": NOW - timedelta(hours=1)}
    assert kinds(rules.for_orders(shop, [first_seen("before", cancelled_since)], now=NOW)) == [
        ("cancellation", "7:cancellation:before:cancelled")
    ]


def test_wb_cancellation_on_flip_and_when_first_seen_cancelled() -> None:
    before = wb_order("a")
    after = wb_order("a", cancelled=True)
    assert kinds(rules.for_orders(WB, [changed("a", before, after)], now=NOW)) == [
        ("cancellation", "7:cancellation:a:cancelled")
    ]
    born_cancelled = rules.for_orders(WB, [first_seen("b", wb_order("b", cancelled=True))], now=NOW)
    assert kinds(born_cancelled) == [
        ("new_order", "7:new_order:b:seen"),
        ("cancellation", "7:cancellation:b:cancelled"),
    ]


def test_wb_other_updates_and_already_cancelled_make_nothing() -> None:
    row = wb_order("a")
    later = {**row, "source_updated_at": NOW, "total_amount": "1300.00"}
    cancelled = wb_order("a", cancelled=True)
    assert rules.for_orders(WB, [changed("a", row, later)], now=NOW) == []
    assert rules.for_orders(WB, [changed("a", cancelled, cancelled)], now=NOW) == []


# -- Allegro orders --------------------------------------------------------------------------


def test_allegro_bought_then_paid_are_two_stages_of_one_order() -> None:
    bought = allegro_order("f1", "BOUGHT")
    paid = allegro_order("f1", "READY_FOR_PROCESSING", fulfillment="NEW")
    first = rules.for_orders(ALLEGRO, [first_seen("f1", bought)], now=NOW)
    second = rules.for_orders(ALLEGRO, [changed("f1", bought, paid)], now=NOW)
    assert kinds(first) == [("new_order", "8:new_order:f1:bought")]
    assert first[0].payload["stage"] == "bought"
    assert kinds(second) == [("new_order", "8:new_order:f1:paid")]
    assert second[0].payload["bought_key"] == "8:new_order:f1:bought"


def test_allegro_first_seen_paid_is_only_the_paid_stage() -> None:
    drafts = rules.for_orders(ALLEGRO, [first_seen("f2", allegro_order("f2", "READY_FOR_PROCESSING"))], now=NOW)
    assert kinds(drafts) == [("new_order", "8:new_order:f2:paid")]


def test_allegro_duplicate_ready_for_processing_and_fulfilment_moves_add_nothing() -> None:
    paid = allegro_order("f1", "READY_FOR_PROCESSING", fulfillment="NEW")
    sent = allegro_order("f1", "READY_FOR_PROCESSING", fulfillment="SENT")
    sent["status"] = "sent"
    assert rules.for_orders(ALLEGRO, [changed("f1", paid, paid)], now=NOW) == []
    assert rules.for_orders(ALLEGRO, [changed("f1", paid, sent)], now=NOW) == []


def test_allegro_bought_before_notify_from_and_paid_after_it_notifies_the_payment() -> None:
    """The transition's own time decides, not when the order was created."""
    old = allegro_order("f3", "BOUGHT", bought_at=NOTIFY_FROM - timedelta(hours=1))
    paid = {**allegro_order("f3", "READY_FOR_PROCESSING", paid=True), "bought_at": old["bought_at"]}
    drafts = rules.for_orders(ALLEGRO, [changed("f3", old, paid)], now=NOW)
    assert kinds(drafts) == [("new_order", "8:new_order:f3:paid")]
    # First seen already paid (the history listing had not reached it), paid after notify-from.
    assert kinds(rules.for_orders(ALLEGRO, [first_seen("f3", paid)], now=NOW)) == kinds(drafts)


def test_allegro_paid_before_notify_from_is_history() -> None:
    bought = NOTIFY_FROM - timedelta(hours=3)
    paid_early = {
        **allegro_order("f6", "READY_FOR_PROCESSING", bought_at=bought),
        "raw": {"payment": {"finishedAt": (NOTIFY_FROM - timedelta(hours=2)).isoformat()}},
    }
    sent = {**paid_early, "status": "sent", "fulfillment_status": "SENT"}
    assert rules.for_orders(ALLEGRO, [first_seen("f6", sent)], now=NOW) == []
    unpaid = allegro_order("f6", "BOUGHT", bought_at=bought)
    assert rules.for_orders(ALLEGRO, [changed("f6", unpaid, paid_early)], now=NOW) == []


def test_allegro_new_order_stamped_a_little_before_notify_from_by_the_marketplace_clock_notifies() -> None:
    """boughtAt is the marketplace's clock, notify-from ours: seconds of skew must not silence it."""
    shop = replace(ALLEGRO, notify_from=NOW - timedelta(minutes=3))
    skewed = allegro_order("f7", "BOUGHT", bought_at=shop.notify_from - timedelta(seconds=4))
    drafts = rules.for_orders(shop, [first_seen("f7", skewed)], now=NOW)
    assert kinds(drafts) == [("new_order", "8:new_order:f7:bought")]
    history = allegro_order("f8", "BOUGHT", bought_at=shop.notify_from - timedelta(hours=1))
    assert rules.for_orders(shop, [first_seen("f8", history)], now=NOW) == []
    # While the shop's history is still being read, an unseen order from just before the point may
    # be history the listing has not reached yet: only what is strictly after it notifies.
    reading = replace(shop, history_complete=False)
    assert rules.for_orders(reading, [first_seen("f7", skewed)], now=NOW) == []
    after = allegro_order("f9", "BOUGHT", bought_at=shop.notify_from + timedelta(seconds=1))
    assert kinds(rules.for_orders(reading, [first_seen("f9", after)], now=NOW)) == [
        ("new_order", "8:new_order:f9:bought")
    ]


def test_allegro_cancellations_record_whether_the_order_was_paid() -> None:
    bought = allegro_order("f4", "BOUGHT")
    paid = allegro_order("f4", "READY_FOR_PROCESSING", fulfillment="NEW")
    unpaid_cancel = rules.for_orders(ALLEGRO, [changed("f4", bought, allegro_order("f4", "CANCELLED"))], now=NOW)
    paid_cancel = rules.for_orders(
        ALLEGRO, [changed("f4", paid, allegro_order("f4", "READY_FOR_PROCESSING", fulfillment="CANCELLED"))], now=NOW
    )
    assert kinds(unpaid_cancel) == [("cancellation", "8:cancellation:f4:cancelled")]
    assert unpaid_cancel[0].payload["was_paid"] is False
    assert paid_cancel[0].payload["was_paid"] is True


def test_allegro_order_first_seen_cancelled_is_announced_and_cancelled() -> None:
    drafts = rules.for_orders(ALLEGRO, [first_seen("f5", allegro_order("f5", "CANCELLED"))], now=NOW)
    assert kinds(drafts) == [("new_order", "8:new_order:f5:bought"), ("cancellation", "8:cancellation:f5:cancelled")]


# -- sales, returns, reviews -----------------------------------------------------------------


def test_sales_kind_comes_from_sale_id_prefix() -> None:
    changes = [
        first_seen("S1", sale("S1", srid="R-looking-srid")),
        first_seen("R2", sale("R2")),
        first_seen("D3", sale("D3")),
    ]
    drafts = rules.for_sales(WB, changes, now=NOW, catalog={"1001": ProductInfo("Платье синее", "https://img/1.jpg")})
    # Named by the unit (srid), as the order feed names the same buyout and return.
    assert kinds(drafts) == [("buyout", "7:buyout:R-looking-srid:sale"), ("return", "7:return:s1:sale")]
    no_srid = rules.for_sales(WB, [first_seen("S4", {**sale("S4"), "srid": None})], now=NOW)
    assert kinds(no_srid) == [("buyout", "7:buyout:S4:sale")]
    assert drafts[0].payload["name"] == "Платье синее" and drafts[0].payload["image_url"] == "https://img/1.jpg"


def test_sale_seen_again_with_prices_filled_in_is_not_new() -> None:
    row = sale("S1")
    old = {c: row[c] for c in ("kind", "amount", "for_pay", "source_updated_at")}
    assert rules.for_sales(WB, [RowChange("S1", old, {**row, "amount": "1500"})], now=NOW) == []


def test_allegro_customer_return_keeps_no_bank_details() -> None:
    row = {
        "external_id": "ret-1",
        "order_external_id": "f1",
        "created_at_source": NOW - timedelta(hours=1),
        "raw": {
            "referenceNumber": "ZW-1",
            "items": [
                {"offerId": "o1", "name": "Kubek", "quantity": 1, "price": {"amount": "10.00", "currency": "PLN"}}
            ],
            "refund": {"bankAccount": {"iban": "PL61109010140000071219812874"}},
        },
    }
    drafts = rules.for_customer_returns(ALLEGRO, [first_seen("ret-1", row)], now=NOW)
    assert kinds(drafts) == [("return", "8:return:ret-1:customer_return")]
    assert "PL611090" not in str(drafts[0].payload)
    assert drafts[0].payload["items"][0]["price"] == "10.00"


def test_review_once_with_stars_and_never_again_when_answered() -> None:
    new = rules.for_reviews(WB, [first_seen("fb1", review("fb1", 2))], now=NOW)
    assert kinds(new) == [("negative_review", "7:negative_review:fb1:new")]
    assert new[0].payload["stars"] == 2 and new[0].payload["size"] == "M"
    old = {"stars": 2, "is_answered": False}
    answered = RowChange("fb1", old, review("fb1", 2, answered=True))
    assert rules.for_reviews(WB, [answered], now=NOW) == []


def test_every_new_review_is_stored_thresholds_apply_at_delivery() -> None:
    drafts = rules.for_reviews(WB, [first_seen(f"fb{s}", review(f"fb{s}", s)) for s in range(1, 6)], now=NOW)
    assert [d.payload["stars"] for d in drafts] == [1, 2, 3, 4, 5]


# -- stock -----------------------------------------------------------------------------------


@dataclass
class Total:
    sku: str
    old_total: int | None
    new_total: int


def stock(totals: list[Total], thresholds: set[int] = frozenset({5})) -> list:
    per = {"n1": [{"warehouse": "Коледино", "size": "M", "quantity": 3}]}
    return rules.for_stock(WB, totals, thresholds=thresholds, per_warehouse=per, at=NOW)


def test_critical_stock_on_crossing_only() -> None:
    drafts = stock([Total("n1", 9, 3), Total("n2", 4, 2), Total("n3", 20, 6), Total("n4", None, 1)])
    assert kinds(drafts) == [("critical_stock", "7:critical_stock:n1:9>3@20261123T1200")]
    assert drafts[0].payload["warehouses"] == [{"warehouse": "Коледино", "size": "M", "quantity": 3}]
    assert drafts[0].payload["old_total"] == 9 and drafts[0].payload["new_total"] == 3


def test_critical_stock_re_arms_after_rising_above() -> None:
    sequence = [(10, 4), (4, 3), (3, 8), (8, 5), (5, 7)]
    fired = [bool(stock([Total("n1", old, new)])) for old, new in sequence]
    assert fired == [True, False, False, True, False]


def test_critical_stock_any_member_threshold_and_none_without_people() -> None:
    assert [d.entity for d in stock([Total("n1", 30, 15)], thresholds={5, 20})] == ["n1"]
    assert stock([Total("n1", 30, 15)], thresholds=set()) == []


def test_runout_one_draft_per_horizon_crossed_per_day() -> None:
    # 30 sold in 30 days = 1 a day; 5 left = 5 days: under the 7, 10 and 14 day horizons.
    drafts = rules.for_runout(WB, totals={"n1": 5, "n2": 100, "n3": 0}, sold_30d={"n1": 30, "n2": 30}, now=NOW)
    assert [d.dedupe_key for d in drafts] == [
        "7:stock_runout:n1:2026-11-23:7d",
        "7:stock_runout:n1:2026-11-23:10d",
        "7:stock_runout:n1:2026-11-23:14d",
    ]
    tomorrow = rules.for_runout(WB, totals={"n1": 5}, sold_30d={"n1": 30}, now=NOW + timedelta(days=1))
    assert tomorrow[0].dedupe_key == "7:stock_runout:n1:2026-11-24:7d"


# -- shop health -----------------------------------------------------------------------------


def test_reauth_once_per_move_into_needs_reauth() -> None:
    a = rules.for_shop_status(ALLEGRO, status="needs_reauth", changed_at=NOW, reason="invalid_grant")
    b = rules.for_shop_status(ALLEGRO, status="needs_reauth", changed_at=NOW, reason="invalid_grant")
    assert kinds(a) == kinds(b) == [("shop_needs_reauth", f"8:shop_needs_reauth:shop:{NOW.isoformat()}")]
    assert rules.for_shop_status(ALLEGRO, status="active", changed_at=NOW) == []


def test_sync_failing_after_threshold_once_per_streak() -> None:
    since = NOW - timedelta(minutes=50)
    short = rules.for_sync_failing(WB, stream="wb_orders", failing_since=since, now=NOW, after=timedelta(hours=1))
    long = rules.for_sync_failing(
        WB, stream="wb_orders", failing_since=since, now=NOW + timedelta(minutes=20), after=timedelta(hours=1)
    )
    later = rules.for_sync_failing(
        WB, stream="wb_orders", failing_since=since, now=NOW + timedelta(hours=5), after=timedelta(hours=1)
    )
    assert short == [] and kinds(long) == kinds(later)


def test_same_batch_twice_gives_identical_keys() -> None:
    changes = [first_seen("srid-1", wb_order("srid-1")), changed("a", wb_order("a"), wb_order("a", cancelled=True))]
    assert kinds(rules.for_orders(WB, changes, now=NOW)) == kinds(
        rules.for_orders(WB, changes, now=NOW + timedelta(minutes=3))
    )


# -- Allegro merges (storage.allegro_merges annotates the changes) ----------------------------


def test_allegro_merged_form_is_paid_once_naming_its_parts_bought_keys() -> None:
    parts = [{"id": "f1", "paid": False}, {"id": "f2", "paid": False}]
    merged = {**allegro_order("m1", "READY_FOR_PROCESSING"), "merged_from": parts}
    drafts = rules.for_orders(ALLEGRO, [first_seen("m1", merged)], now=NOW)
    assert kinds(drafts) == [("new_order", "8:new_order:m1:paid")]
    payload = drafts[0].payload
    assert payload["bought_keys"] == ["8:new_order:f1:bought", "8:new_order:f2:bought"]
    assert payload["merged_from"] == ["f1", "f2"]


def test_allegro_merged_form_seen_unpaid_has_no_bought_stage_of_its_own() -> None:
    merged = {**allegro_order("m1", "BOUGHT"), "merged_from": [{"id": "f1", "paid": False}]}
    assert rules.for_orders(ALLEGRO, [first_seen("m1", merged)], now=NOW) == []


def test_allegro_merged_form_of_an_already_paid_part_announces_nothing_new() -> None:
    parts = [{"id": "f1", "paid": True}, {"id": "f2", "paid": False}]
    merged = {**allegro_order("m1", "READY_FOR_PROCESSING"), "merged_from": parts}
    assert rules.for_orders(ALLEGRO, [first_seen("m1", merged)], now=NOW) == []


def test_allegro_form_merged_away_says_nothing_not_even_a_cancellation() -> None:
    old = allegro_order("f1", "FILLED_IN")
    gone = {**allegro_order("f1", "CANCELLED"), "merged_into": "m1"}
    assert rules.for_orders(ALLEGRO, [first_seen("f1", {**old, "merged_into": "m1"})], now=NOW) == []
    assert rules.for_orders(ALLEGRO, [changed("f1", old, gone)], now=NOW) == []
