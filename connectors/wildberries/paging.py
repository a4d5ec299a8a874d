"""Paging state for WB reads, in the style of dlt's paginators: a small object with
``init_request`` / ``update_state`` / ``update_request`` / ``has_next_page``, driven by
one generator loop in the client. Pure logic: no HTTP, tested directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.timeutil import msk_to_utc, utc_to_msk_param

STATISTICS_PAGE_ROWS = 80_000
FEEDBACK_MAX_TAKE = 5_000
FEEDBACK_MAX_SKIP = 199_990


def _lcd(row: Any) -> datetime | None:
    try:
        return msk_to_utc(row["lastChangeDate"])
    except (KeyError, TypeError, ValueError):
        return None


@dataclass
class LastChangePaginator:
    """Statistics `flag=0` paging by `lastChangeDate`.

    WB returns rows with ``lastChangeDate >= dateFrom``; the next page starts at the
    last row's lastChangeDate, so the rows at that instant come back again. We drop
    rows already seen *with the same lastChangeDate* (a row whose key returns with a
    newer lastChangeDate is a real change and is kept), and stop when a page is empty,
    brings nothing new, does not move past `dateFrom`, or (when `full_page_rows` is
    set) is shorter than a full page.
    """

    key: str
    date_from: datetime  # aware; where the next request starts
    full_page_rows: int | None = None
    has_next_page: bool = True
    cursor: datetime | None = None  # max lastChangeDate delivered so far (aware UTC)
    stalled: bool = False  # a full page at one instant: WB cannot page past it
    _date_from_param: str = ""
    _boundary: set[tuple[Any, str]] = field(default_factory=set)

    def init_request(self) -> dict[str, str]:
        self._date_from_param = utc_to_msk_param(self.date_from)
        return {"dateFrom": self._date_from_param, "flag": "0"}

    def update_request(self, params: dict[str, str]) -> None:
        params["dateFrom"] = self._date_from_param

    def update_state(self, rows: list[Any]) -> list[int]:
        """Take a decoded page; return the positions of rows to deliver (new, latest per key)."""
        self.start_response()
        keep = self.take_part(rows)
        self.end_response()
        return keep

    # A response streamed in parts (connectors.http.HostClient.stream_array): start_response,
    # take_part for each part as it is decoded, end_response once the body is complete.

    def start_response(self) -> None:
        self._rows, self._kept, self._max_raw = 0, 0, ""
        self._page_max: datetime | None = None
        self._at_max: set[Any] = set()

    def take_part(self, rows: list[Any]) -> list[int]:
        """Positions in `rows` (one part of a response) to deliver: new, the latest per key
        within the part. A key that comes back in a later part of the same response is
        delivered again: the store keeps the newest state of a row (an older one is refused as
        stale, the same one changes nothing), and remembering every key of an 80,000-row
        response would cost ~20 MB."""
        fresh, part_max, max_raw = self._select(rows)
        if max_raw and max_raw >= self._max_raw:
            if max_raw > self._max_raw:
                self._max_raw, self._page_max, self._at_max = max_raw, part_max, set()
            key = self.key
            self._at_max |= {r.get(key) for r in rows if isinstance(r, dict) and r.get("lastChangeDate") == max_raw}
        self._rows += len(rows)
        self._kept += len(fresh)
        return fresh

    def end_response(self) -> None:
        """The response is complete: where the next request starts, or that there is none."""
        page_max, rows = self._page_max, self._rows
        if not rows:
            self.has_next_page = False
            return
        if not self._kept or page_max is None or page_max <= self.date_from:
            # Nothing new, or a page that did not advance: another request repeats it. With a
            # known page size, a full page that did not advance is stuck (rows at that instant
            # may lie beyond it), whether or not it brought new rows.
            full = rows >= self.full_page_rows if self.full_page_rows is not None else bool(self._kept)
            self.stalled = page_max is not None and page_max <= self.date_from and full
            self.has_next_page = False
            return
        self._boundary = {(key, self._max_raw) for key in self._at_max}
        self.date_from = page_max
        self._date_from_param = self._max_raw  # send WB's own string back, to the digit
        self.cursor = page_max if self.cursor is None else max(self.cursor, page_max)
        if self.full_page_rows is not None and rows < self.full_page_rows:
            self.has_next_page = False

    @property
    def response_rows(self) -> int:
        return self._rows

    @property
    def kept(self) -> int:
        """Rows of the current response delivered."""
        return self._kept

    def _select(self, rows: list[Any]) -> tuple[list[int], datetime | None, str]:
        return select_latest(rows, self.key, self._boundary)


def select_latest(
    rows: list[Any], key: str, skip: set[tuple[Any, str]] | frozenset[tuple[Any, str]] = frozenset()
) -> tuple[list[int], datetime | None, str]:
    """Positions to deliver: the latest row per key, minus (key, lastChangeDate) pairs in
    `skip`; malformed rows are kept so the parser reports them with their position.
    Also returns the page's max lastChangeDate (aware UTC) and WB's string for it.

    Compares WB's own ISO strings (fixed-width fields sort as text; a longer fraction
    sorts after its prefix): parsing 80,000 dates here would cost a third of a page's
    parse time. Only the maximum is parsed; if it is not a date, fall back to parsing all.
    """
    chosen: dict[Any, tuple[int, str]] = {}
    unkeyed: list[int] = []
    max_raw = ""
    for i, row in enumerate(rows):
        try:
            value, lcd = row[key], row["lastChangeDate"]
        except (KeyError, TypeError, IndexError):
            unkeyed.append(i)
            continue
        if value is None or not isinstance(lcd, str) or len(lcd) < 19:
            unkeyed.append(i)
            continue
        if lcd > max_raw:
            max_raw = lcd
        if (value, lcd) in skip:
            continue
        seen = chosen.get(value)
        if seen is None or lcd >= seen[1]:
            chosen[value] = (i, lcd)  # the same key twice: keep the latest state
    if not max_raw:
        return sorted(unkeyed), None, ""
    try:
        page_max = msk_to_utc(max_raw)
    except ValueError:
        return _select_latest_parsing(rows, key, skip)
    return sorted([i for i, _ in chosen.values()] + unkeyed), page_max, max_raw


def _select_latest_parsing(
    rows: list[Any], key: str, skip: set[tuple[Any, str]] | frozenset[tuple[Any, str]]
) -> tuple[list[int], datetime | None, str]:
    """Slow path for pages with unparseable lastChangeDate strings: those rows count as malformed."""
    good = [i for i, row in enumerate(rows) if _lcd(row) is not None]
    keep, page_max, max_raw = select_latest([rows[i] for i in good], key, skip)
    bad = set(range(len(rows))) - set(good)
    return sorted([good[i] for i in keep] + list(bad)), page_max, max_raw


@dataclass
class OffsetPaginator:
    """Offset/limit paging that stops on a short page (stocks report, offers, returns)."""

    limit: int
    offset: int = 0
    has_next_page: bool = True

    def update_state(self, count: int) -> None:
        self.offset += count
        if count < self.limit:
            self.has_next_page = False


@dataclass
class OrderFeedPaginator:
    """Order-feed paging: offset/limit within one snapshot of the data.

    The first request (offset 0) sends no `snapshotTime`; every later one sends the first
    answer's, else WB cuts the pages from newer data and rows are skipped or doubled. Stops
    on a short page. An answer without `snapshotTime` leaves later pages unpinned (logged by
    the caller; srid dedupe and the next read's look-back absorb what that moves).
    """

    start: str
    end: str | None = None
    limit: int = 10_000
    offset: int = 0
    snapshot: str | None = None
    has_next_page: bool = True

    def request_body(self) -> dict[str, Any]:
        period = {"start": self.start, **({"end": self.end} if self.end else {})}
        paging: dict[str, Any] = {"limit": self.limit, "offset": self.offset}
        if self.offset and self.snapshot:
            paging["snapshotTime"] = self.snapshot
        return {
            "selectedPeriod": period,
            "nmIds": [],
            "brandNames": [],
            "subjectIds": [],
            "tagIds": [],
            "pagination": paging,
        }

    def update_state(self, count: int, snapshot: str | None) -> None:
        if self.offset == 0:
            self.snapshot = snapshot
        self.offset += count
        if count < self.limit:
            self.has_next_page = False


@dataclass
class FeedbackPaginator:
    """`/api/v1/feedbacks` take/skip paging within WB's bounds (take <= 5000, skip <= 199990).

    When the next skip would pass the bound, restart at the last createdDate seen (unix
    seconds) with skip 0: `dateFrom` when reading oldest first, `dateTo` newest first. Ids
    already delivered are dropped.
    """

    is_answered: bool
    date_from: int | None = None  # unix seconds
    date_to: int | None = None
    take: int = FEEDBACK_MAX_TAKE
    order: str = "dateAsc"  # or "dateDesc"
    skip: int = 0
    has_next_page: bool = True
    _seen: set[str] = field(default_factory=set)
    _edge: int | None = None  # newest (asc) / oldest (desc) createdDate delivered

    def init_request(self) -> dict[str, str]:
        params = {"isAnswered": "true" if self.is_answered else "false", "order": self.order}
        self.take = min(self.take, FEEDBACK_MAX_TAKE)
        self.update_request(params)
        return params

    def update_request(self, params: dict[str, str]) -> None:
        params["take"], params["skip"] = str(self.take), str(self.skip)
        for name, value in (("dateFrom", self.date_from), ("dateTo", self.date_to)):
            if value is not None:
                params[name] = str(value)

    def update_state(self, rows: list[Any], created: list[int | None]) -> list[int]:
        """`created` holds each row's createdDate in unix seconds (None if unreadable)."""
        keep = _unseen(rows, self._seen)
        stamps = [c for c in created if c is not None]
        if stamps:
            self._edge = max(stamps) if self.order == "dateAsc" else min(stamps)
        if len(rows) < self.take:
            self.has_next_page = False
        elif self.skip + self.take <= FEEDBACK_MAX_SKIP:
            self.skip += self.take
        else:
            self._restart_at_edge(rows_were_new=bool(keep))
        return keep

    def _restart_at_edge(self, rows_were_new: bool) -> None:
        bound = self.date_from if self.order == "dateAsc" else self.date_to
        if self._edge is None or not rows_were_new or self._edge == bound:
            # More than skip+take reviews in one second, or nothing moves: give up rather than loop.
            self.has_next_page = False
            return
        if self.order == "dateAsc":
            self.date_from = self._edge
        else:
            self.date_to = self._edge
        self.skip = 0


@dataclass
class ArchivePaginator:
    """`/api/v1/feedbacks/archive` take/skip paging (take <= 5000; no date filters, no skip
    bound in its spec). Reviews keep arriving while we page, so a row can show up twice: ids
    already delivered are dropped."""

    take: int = FEEDBACK_MAX_TAKE
    order: str = "dateDesc"
    nm_id: int | None = None
    skip: int = 0
    has_next_page: bool = True
    _seen: set[str] = field(default_factory=set)

    def init_request(self) -> dict[str, str]:
        self.take = min(self.take, FEEDBACK_MAX_TAKE)
        params = {"order": self.order}
        if self.nm_id is not None:
            params["nmId"] = str(self.nm_id)
        self.update_request(params)
        return params

    def update_request(self, params: dict[str, str]) -> None:
        params["take"], params["skip"] = str(self.take), str(self.skip)

    def update_state(self, rows: list[Any], created: list[int | None]) -> list[int]:
        keep = _unseen(rows, self._seen)
        self.skip += len(rows)
        if len(rows) < self.take:
            self.has_next_page = False
        return keep


def _unseen(rows: list[Any], seen: set[str]) -> list[int]:
    """Positions of rows whose id was not delivered before (rows without an id are kept)."""
    keep = []
    for i, row in enumerate(rows):
        fid = row.get("id") if isinstance(row, dict) else None
        if fid is not None and fid in seen:
            continue
        if fid is not None:
            seen.add(fid)
        keep.append(i)
    return keep


@dataclass
class CardsCursor:
    """Content cards cursor: copy `updatedAt` and `nmID` from each response; stop when total < limit."""

    limit: int = 100
    updated_at: str | None = None
    nm_id: int | None = None
    has_next_page: bool = True

    def request_body(self) -> dict[str, Any]:
        cursor: dict[str, Any] = {"limit": self.limit}
        if self.updated_at is not None:
            cursor["updatedAt"], cursor["nmID"] = self.updated_at, self.nm_id
        return {"settings": {"cursor": cursor, "filter": {"withPhoto": -1}}}

    def update_state(self, cursor: dict[str, Any]) -> None:
        self.updated_at, self.nm_id = cursor.get("updatedAt"), cursor.get("nmID")
        if int(cursor.get("total") or 0) < self.limit or self.updated_at is None:
            self.has_next_page = False


@dataclass
class FbsOrdersCursor:
    """`/api/v3/orders` paging with the `next` token; stop on an empty or short page."""

    limit: int = 1000
    next: int = 0
    has_next_page: bool = True

    def update_state(self, next_value: int | None, count: int) -> None:
        if next_value is not None:
            self.next = int(next_value)
        if count < self.limit or next_value is None:
            self.has_next_page = False
