"""Statistics paging by lastChangeDate under WB's literal `>=` (pure logic)."""

from datetime import UTC, datetime

from connectors.wildberries.paging import (
    ArchivePaginator,
    CardsCursor,
    FbsOrdersCursor,
    FeedbackPaginator,
    LastChangePaginator,
    select_latest,
)

START = datetime(2026, 11, 1, tzinfo=UTC)  # 03:00 Moscow


def row(srid: str, lcd: str) -> dict[str, str]:
    return {"srid": srid, "lastChangeDate": lcd}


def test_first_request_sends_moscow_time_without_zone() -> None:
    paginator = LastChangePaginator("srid", START)
    assert paginator.init_request() == {"dateFrom": "2026-11-01T03:00:00", "flag": "0"}


def test_boundary_rows_are_dropped_and_next_page_starts_at_wb_own_string() -> None:
    p = LastChangePaginator("srid", START, full_page_rows=3)
    params = p.init_request()
    page1 = [row("a", "2026-11-01T04:00:00"), row("b", "2026-11-01T05:00:00.5"), row("c", "2026-11-01T05:00:00.5")]
    assert p.update_state(page1) == [0, 1, 2]
    p.update_request(params)
    assert params["dateFrom"] == "2026-11-01T05:00:00.5"
    assert p.cursor == datetime(2026, 11, 1, 2, 0, 0, 500000, tzinfo=UTC)
    # WB repeats b and c (>=), then new rows.
    page2 = [row("b", "2026-11-01T05:00:00.5"), row("c", "2026-11-01T05:00:00.5"), row("d", "2026-11-01T06:00:00")]
    assert p.update_state(page2) == [2]
    assert p.has_next_page  # a full page: there may be more
    assert p.update_state([row("d", "2026-11-01T06:00:00")]) == []
    assert p.has_next_page is False  # nothing new


def test_same_srid_with_newer_last_change_is_a_real_change() -> None:
    p = LastChangePaginator("srid", START, full_page_rows=2)
    p.init_request()
    assert p.update_state([row("a", "2026-11-01T04:00:00"), row("b", "2026-11-01T05:00:00")]) == [0, 1]
    assert p.update_state([row("b", "2026-11-01T05:00:00"), row("b", "2026-11-01T07:00:00")]) == [1]


def test_within_a_page_the_latest_state_of_a_key_wins() -> None:
    rows = [row("a", "2026-11-01T09:00:00"), row("a", "2026-11-01T04:00:00"), row("b", "2026-11-01T05:00:00")]
    keep, page_max, raw = select_latest(rows, "srid")
    assert keep == [0, 2]
    assert raw == "2026-11-01T09:00:00"


def test_a_page_of_only_seen_rows_ends_paging_literal_mode() -> None:
    p = LastChangePaginator("srid", START, full_page_rows=None)
    p.init_request()
    page = [row("a", "2026-11-01T04:00:00"), row("b", "2026-11-01T05:00:00")]
    assert p.update_state(page) == [0, 1]
    assert p.has_next_page  # literal mode asks once more
    assert p.update_state([row("b", "2026-11-01T05:00:00")]) == []
    assert p.has_next_page is False


def test_a_page_that_does_not_advance_stops_instead_of_looping() -> None:
    p = LastChangePaginator("srid", START, full_page_rows=2)
    p.init_request()
    same = [row("a", "2026-11-01T03:00:00"), row("b", "2026-11-01T03:00:00")]
    assert p.update_state(same) == [0, 1]
    assert p.has_next_page is False
    assert p.stalled  # a full page at one instant: reported, not looped on


def test_a_full_page_of_boundary_rows_seen_before_is_stalled_too() -> None:
    p = LastChangePaginator("srid", START, full_page_rows=2)
    p.init_request()
    later = [row("a", "2026-11-01T04:00:00"), row("b", "2026-11-01T04:00:00")]
    assert p.update_state(later) == [0, 1] and p.has_next_page and not p.stalled
    # The same two rows again (more share that instant, beyond the cap): nothing new, stuck.
    assert p.update_state(later) == []
    assert p.has_next_page is False and p.stalled
    short = LastChangePaginator("srid", START, full_page_rows=3)
    short.init_request()
    short.update_state(later)
    assert short.update_state(later) == [] and not short.stalled  # a short page: simply the end


def test_empty_page_ends_and_malformed_rows_are_kept_for_the_parser() -> None:
    p = LastChangePaginator("srid", START)
    p.init_request()
    assert p.update_state([row("a", "2026-11-01T04:00:00"), {"srid": "x"}, "junk"]) == [0, 1, 2]
    p2 = LastChangePaginator("srid", START)
    assert p2.update_state([]) == [] and p2.has_next_page is False


def test_feedbacks_restart_by_date_when_skip_would_pass_its_bound() -> None:
    p = FeedbackPaginator(is_answered=False, take=5000, skip=195_000)
    params = p.init_request()
    assert params["isAnswered"] == "false" and params["skip"] == "195000"
    rows = [{"id": f"f{i}"} for i in range(5000)]
    assert len(p.update_state(rows, [1_700_000_000 + i for i in range(5000)])) == 5000
    p.update_request(params)
    assert params["skip"] == "0" and params["dateFrom"] == str(1_700_000_000 + 4999)
    # The restart repeats the last second's reviews: they are dropped by id.
    again = [{"id": "f4999"}, {"id": "new"}]
    assert p.update_state(again, [1_700_004_999, 1_700_005_000]) == [1]
    assert p.has_next_page is False


def test_feedbacks_newest_first_restart_below_the_oldest_date_seen() -> None:
    p = FeedbackPaginator(is_answered=True, take=5000, skip=195_000, order="dateDesc", date_from=1_600_000_000)
    params = p.init_request()
    assert params["order"] == "dateDesc" and params["dateFrom"] == "1600000000" and "dateTo" not in params
    rows = [{"id": f"f{i}"} for i in range(5000)]
    p.update_state(rows, [1_700_010_000 - i for i in range(5000)])
    p.update_request(params)
    assert params["skip"] == "0" and params["dateTo"] == str(1_700_010_000 - 4999)
    assert params["dateFrom"] == "1600000000"  # the lower bound stays


def test_archive_pages_by_skip_and_drops_rows_seen_twice() -> None:
    p = ArchivePaginator(take=3)
    params = p.init_request()
    assert params == {"order": "dateDesc", "take": "3", "skip": "0"}
    assert p.update_state([{"id": "a"}, {"id": "b"}, {"id": "c"}], [3, 2, 1]) == [0, 1, 2]
    p.update_request(params)
    assert params["skip"] == "3" and p.has_next_page
    # A review archived meanwhile pushed "c" down one place: it comes again and is dropped.
    assert p.update_state([{"id": "c"}, {"id": "d"}], [1, 0]) == [1]
    assert p.has_next_page is False
    assert ArchivePaginator(take=9000, nm_id=7).init_request() == {
        "order": "dateDesc",
        "nmId": "7",
        "take": "5000",
        "skip": "0",
    }


def test_cards_cursor_copies_the_response_cursor_and_stops_on_short_total() -> None:
    c = CardsCursor(limit=100)
    assert c.request_body()["settings"]["cursor"] == {"limit": 100}
    c.update_state({"updatedAt": "2026-11-01T00:00:00Z", "nmID": 7, "total": 100})
    assert c.request_body()["settings"]["cursor"] == {"limit": 100, "updatedAt": "2026-11-01T00:00:00Z", "nmID": 7}
    c.update_state({"updatedAt": "2026-11-02T00:00:00Z", "nmID": 9, "total": 3})
    assert c.has_next_page is False


def test_fbs_cursor_follows_next_until_a_short_page() -> None:
    c = FbsOrdersCursor(limit=2)
    c.update_state(55, 2)
    assert c.next == 55 and c.has_next_page
    c.update_state(56, 1)
    assert c.has_next_page is False
