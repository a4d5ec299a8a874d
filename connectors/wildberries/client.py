"""Wildberries seller API client: statistics, analytics (stocks), feedbacks, content, FBS.

One long-lived :class:`~connectors.http.HostClient` per WB host; the seller's token is
passed to every call (one client serves every shop). Bulk reads are async generators
of pages: write a page, then store its ``cursor``; memory stays at one page.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import httpx
from pydantic import SecretStr

from connectors.errors import BadRequest, PagingStalled, PayloadError
from connectors.http import DEFAULT_RETRY, DEFAULT_TIMEOUTS, Call, HostClient, RetryPolicy, Timeouts, gather_bounded
from connectors.parsing import Page, RowError, RowParser, remap_errors, require
from connectors.ratelimit import DEFAULT_LIMITS, DEFAULT_REGISTRY, BucketBackend, Clock, RateLimits, Sleep, fingerprint
from connectors.timeutil import msk_day_param, parse_utc, to_unix, to_utc_param
from connectors.wildberries import models as m
from connectors.wildberries.paging import (
    ArchivePaginator,
    CardsCursor,
    FbsOrdersCursor,
    FeedbackPaginator,
    LastChangePaginator,
    OffsetPaginator,
    OrderFeedPaginator,
    select_latest,
)

log = logging.getLogger("connectors.wildberries")

Token = str | SecretStr

ORDERS_PATH = "/api/v1/supplier/orders"
SALES_PATH = "/api/v1/supplier/sales"
STOCKS_PATH = "/api/analytics/v1/stocks-report/wb-warehouses"
ORDER_FEED_PATH = "/api/analytics/v1/order-feed"
ORDER_FEED_LIMIT = 10_000
# The feed serves the last 31 days and refuses a period starting earlier; a paged read keeps its
# start while it pages at 1 request/min (and our clock may run ahead): an hour to spare.
ORDER_FEED_WINDOW = timedelta(days=31) - timedelta(hours=1)
FEEDBACKS_PATH = "/api/v1/feedbacks"
FEEDBACKS_ARCHIVE_PATH = "/api/v1/feedbacks/archive"
CARDS_PATH = "/content/v2/get/cards/list"
FBS_NEW_PATH = "/api/v3/orders/new"
FBS_ORDERS_PATH = "/api/v3/orders"
FBS_STATUS_PATH = "/api/v3/orders/status"
STOCKS_MAX_LIMIT = 250_000
FBS_STATUS_CHUNK = 1000
MARKETPLACE_4XX_COST = 10
STATISTICS_PAGE_ITEMS = 10_000  # models per delivered page (a response is split into several)
STATISTICS_PART_BYTES = 2 << 20  # a response is decoded in parts of ~2 MB of JSON (~3,000 rows)


@dataclass(frozen=True)
class WbUrls:
    statistics: str = "https://statistics-api.wildberries.ru"
    analytics: str = "https://seller-analytics-api.wildberries.ru"
    feedbacks: str = "https://feedbacks-api.wildberries.ru"
    content: str = "https://content-api.wildberries.ru"
    marketplace: str = "https://marketplace-api.wildberries.ru"


def _secret(token: Token) -> str:
    return token.get_secret_value() if isinstance(token, SecretStr) else token


def _created_unix(row: Any) -> int | None:
    try:
        return int(parse_utc(row["createdDate"]).timestamp())
    except (KeyError, TypeError, ValueError):
        return None


_feed_shapes_logged: set[str] = set()


def _feed_shape_once(what: str) -> None:
    """An order-feed answer unlike the one we expect: logged once per process, never fatal."""
    if what not in _feed_shapes_logged:
        _feed_shapes_logged.add(what)
        log.warning("order feed: %s", what)


def _note_unknown_shapes(items: list[m.WbFeedOrder]) -> None:
    for item in items:
        if item.status not in m.FEED_STATUSES:
            _feed_shape_once(f"a row with status {str(item.status)[:40]!r} (not in the spec's list)")
        elif item.status_time is None:
            _feed_shape_once(f"a {item.status!r} row without updatedAt")
        if item.cancel_type is not None and item.cancel_type not in m.FEED_CANCEL_TYPES:
            _feed_shape_once(f"cancelType {item.cancel_type[:40]!r} (not in the spec's list)")


def _snapshot(value: str | None) -> datetime | None:
    try:
        return parse_utc(value) if value else None
    except ValueError:
        _feed_shape_once(f"snapshotTime {value[:40]!r} is not a date-time")
        return None


class WildberriesClient:
    """Reads a WB seller account. Use ``async with`` or call :meth:`aclose`."""

    def __init__(
        self,
        urls: WbUrls = WbUrls(),
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        retry: RetryPolicy = DEFAULT_RETRY,
        limits: RateLimits = DEFAULT_LIMITS,
        registry: BucketBackend = DEFAULT_REGISTRY,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        concurrency: int = 4,
        auth_scheme: str | None = None,  # None: raw token (documented); "Bearer" if a host wants it
    ) -> None:
        self.limits = limits
        self.registry = registry
        self.concurrency = concurrency
        self._auth_scheme = auth_scheme
        common: dict[str, Any] = dict(transport=transport, timeouts=timeouts, retry=retry, sleep=sleep, clock=clock)
        self._hosts = {
            "wb_statistics": HostClient(urls.statistics, name="wb-statistics", **common),
            "wb_analytics": HostClient(urls.analytics, name="wb-analytics", **common),
            "wb_feedbacks": HostClient(urls.feedbacks, name="wb-feedbacks", **common),
            "wb_content": HostClient(urls.content, name="wb-content", **common),
            "wb_marketplace": HostClient(urls.marketplace, name="wb-marketplace", **common),
        }

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> WildberriesClient:
        urls = WbUrls(
            statistics=settings.wb_statistics_url,
            analytics=settings.wb_analytics_url,
            feedbacks=settings.wb_feedbacks_url,
            content=settings.wb_content_url,
            marketplace=settings.wb_marketplace_url,
        )
        return cls(urls, **kwargs)

    async def aclose(self) -> None:
        await asyncio.gather(*(h.aclose() for h in self._hosts.values()))

    async def __aenter__(self) -> WildberriesClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- plumbing -------------------------------------------------------------

    def _call(
        self,
        category: str,
        token: Token,
        method: str,
        path: str,
        *,
        bucket_suffix: str = "",
        limit: str | None = None,
        **kw: Any,
    ) -> Call:
        """`limit`: a method limited apart from its host's category (the order feed) has its own
        bucket under that name, with that rate."""
        secret = _secret(token)
        value = f"{self._auth_scheme} {secret}" if self._auth_scheme else secret
        bucket = None
        if not self.limits.disabled:
            # WB limits statistics per method (orders and sales each 1/min): one bucket each.
            key = limit or (f"{category}:{bucket_suffix}" if bucket_suffix else category)
            bucket = self.registry.bucket(secret, key, self.limits.for_category(limit or category))
        return Call(method, path, headers={"Authorization": value}, bucket=bucket, **kw)

    async def _send(
        self,
        category: str,
        token: Token,
        method: str,
        path: str,
        *,
        bucket_suffix: str = "",
        limit: str | None = None,
        **kw: Any,
    ) -> Any:
        call = self._call(category, token, method, path, bucket_suffix=bucket_suffix, limit=limit, **kw)
        try:
            body, _ = await self._hosts[category].send(call)
        except BadRequest:
            if call.bucket is not None and category == "wb_marketplace":
                call.bucket.charge(MARKETPLACE_4XX_COST - 1)  # WB bills a refused request as 10
            raise
        return body

    @staticmethod
    def token_id(token: Token) -> str:
        """A per-process id of a token, safe for logs."""
        return fingerprint(_secret(token))

    # -- statistics -----------------------------------------------------------

    def iter_orders(
        self, token: Token, since: datetime, *, full_page_rows: int | None = None, raise_on_stall: bool = False
    ) -> AsyncIterator[Page[m.WbOrder, datetime | None]]:
        """Orders with lastChangeDate >= `since` (aware), page by page; cursor = max lastChangeDate (UTC).

        Stops on an empty page, a page with nothing new, or one that does not advance
        (an idle account costs one request). `full_page_rows=80_000` also stops on a
        shorter page, saving one 1/min request per read, but only if the host's page
        size really is that: a smaller cap would end the read early (the next read
        continues from the cursor, so nothing is lost, just later). A full page at a single
        lastChangeDate cannot be paged past: logged and the read ends there, or, with
        `raise_on_stall`, :class:`PagingStalled` after its rows were delivered.
        """
        paginator = LastChangePaginator("srid", since, full_page_rows)
        return self._statistics_pages(ORDERS_PATH, token, paginator, m.ORDER_PARSER, raise_on_stall)

    def iter_sales(
        self, token: Token, since: datetime, *, full_page_rows: int | None = None, raise_on_stall: bool = False
    ) -> AsyncIterator[Page[m.WbSale, datetime | None]]:
        """Sales and returns with lastChangeDate >= `since`; same paging as :meth:`iter_orders`."""
        paginator = LastChangePaginator("saleID", since, full_page_rows)
        return self._statistics_pages(SALES_PATH, token, paginator, m.SALE_PARSER, raise_on_stall)

    async def _statistics_pages(
        self,
        path: str,
        token: Token,
        paginator: LastChangePaginator,
        parser: RowParser[Any],
        raise_on_stall: bool = False,
    ) -> AsyncIterator[Page[Any, datetime | None]]:
        params = paginator.init_request()
        while paginator.has_next_page:
            # A response holds up to 80,000 rows (57 MB of JSON): decoded as it arrives, in parts
            # (HostClient.stream_array), each delivered as a page with no cursor; once the body
            # is complete, a last empty page carries the cursor that covers them all.
            call = self._call("wb_statistics", token, "GET", path, params=dict(params), bucket_suffix=path)
            paginator.start_response()
            async for part in self._hosts["wb_statistics"].stream_array(call, part_bytes=STATISTICS_PART_BYTES):
                offset = paginator.response_rows
                keep = paginator.take_part(part)
                for page in parser.pages(part, keep, None, size=STATISTICS_PAGE_ITEMS):
                    page.received, page.requests = 0, 0
                    page.errors = [RowError(e.index + offset, e.message, e.key) for e in page.errors]
                    yield page
                    page = None  # drop our reference before parsing the next one
                part = None
            paginator.end_response()
            if paginator.stalled:
                log.warning("%s: a full page at one lastChangeDate; WB cannot page past it", path)
            if paginator.kept:
                yield Page([], paginator.cursor, received=paginator.response_rows, requests=1)
            if paginator.stalled and raise_on_stall:
                raise PagingStalled("a full page at one lastChangeDate", at=paginator.date_from, path=path)
            paginator.update_request(params)

    async def orders_for_day(self, token: Token, day: date) -> Page[m.WbOrder, date]:
        """`flag=1`: every order whose `date` is on `day` (Moscow calendar day), for backfills."""
        return await self._statistics_day(ORDERS_PATH, token, day, "srid", m.ORDER_PARSER)

    async def sales_for_day(self, token: Token, day: date) -> Page[m.WbSale, date]:
        """`flag=1`: every sale/return whose `date` is on `day`."""
        return await self._statistics_day(SALES_PATH, token, day, "saleID", m.SALE_PARSER)

    async def _statistics_day(
        self, path: str, token: Token, day: date, key: str, parser: RowParser[Any]
    ) -> Page[Any, date]:
        params = {"dateFrom": msk_day_param(day), "flag": "1"}
        rows = await self._send("wb_statistics", token, "GET", path, params=params, bucket_suffix=path) or []
        if not isinstance(rows, list):
            raise PayloadError("statistics response is not a list", path=path)
        # One request holds the whole day; a key twice means two states: keep the latest.
        keep = select_latest(rows, key)[0]
        items, errors = parser.parse([rows[i] for i in keep])
        return Page(items, day, remap_errors(errors, keep), received=len(rows))

    # -- analytics: stocks ----------------------------------------------------

    async def iter_stock_pages(
        self,
        token: Token,
        *,
        nm_ids: Sequence[int] = (),
        chrt_ids: Sequence[int] = (),
        limit: int = STOCKS_MAX_LIMIT,
    ) -> AsyncIterator[Page[m.WbStockRow, int]]:
        """Current stock per size per warehouse; cursor = offset of the next page."""
        paging = OffsetPaginator(limit=min(limit, STOCKS_MAX_LIMIT))
        while paging.has_next_page:
            body = {"nmIds": list(nm_ids), "chrtIds": list(chrt_ids), "limit": paging.limit, "offset": paging.offset}
            data = await self._send("wb_analytics", token, "POST", STOCKS_PATH, json_body=body)
            rows = require(data, "data", "items") or []
            data = None
            paging.update_state(len(rows))
            items, errors = m.STOCK_PARSER.parse(rows)
            yield Page(items, paging.offset, errors, received=len(rows))
            rows = items = None  # type: ignore[assignment]  # one page in memory, not two

    # -- analytics: order feed -------------------------------------------------

    async def iter_order_feed(
        self, token: Token, since: datetime, *, now: datetime, limit: int = ORDER_FEED_LIMIT
    ) -> AsyncIterator[Page[m.WbFeedOrder, datetime | None]]:
        """Units whose current status began at or after `since` (clamped to the feed's 31 days
        before `now`), newest status first; one page per request, pinned to the first answer's
        snapshot. Cursor: that snapshot (aware UTC), on every page, or None when WB sent none.

        Tolerant by design (the response schema is cut off in our spec copy): only `srid` is
        required of a row; an envelope without a list of orders is a PayloadError.
        """
        start = max(since, now - ORDER_FEED_WINDOW)
        paging = OrderFeedPaginator(start=to_utc_param(start), limit=limit)
        while paging.has_next_page:
            body = await self._send(
                "wb_analytics", token, "POST", ORDER_FEED_PATH, json_body=paging.request_body(), limit="wb_order_feed"
            )
            data = body.get("data") if isinstance(body, dict) and isinstance(body.get("data"), dict) else body
            rows = data.get("orders") if isinstance(data, dict) else None
            if rows is None and isinstance(data, dict) and "orders" in data:
                rows = []  # "orders": null on an empty selection
            if not isinstance(rows, list):
                raise PayloadError("order feed: no list of orders in the response", path=ORDER_FEED_PATH)
            raw_snapshot = data.get("snapshotTime") if isinstance(data.get("snapshotTime"), str) else None
            if raw_snapshot is None and paging.offset == 0:
                _feed_shape_once("no snapshotTime in the answer: later pages are not pinned")
            paging.update_state(len(rows), raw_snapshot)
            items, errors = m.FEED_PARSER.parse(rows)
            _note_unknown_shapes(items)
            yield Page(items, _snapshot(paging.snapshot), errors, received=len(rows))
            rows = items = None  # type: ignore[assignment]

    # -- feedbacks ------------------------------------------------------------

    async def iter_feedbacks(
        self,
        token: Token,
        *,
        answered: bool | None = None,
        date_from: datetime | None = None,
        date_to: datetime | None = None,
        take: int = 5000,
        order: str = "dateAsc",
    ) -> AsyncIterator[Page[m.WbFeedback, datetime | None]]:
        """Reviews of `/api/v1/feedbacks` (`answered=None` reads unanswered then answered).

        Not every review is there: see :meth:`iter_feedback_archive`. `date_from`/`date_to`
        filter by createdDate. Cursor: the newest createdDate delivered so far in this pass.
        """
        passes = [False, True] if answered is None else [answered]
        for is_answered in passes:
            paginator = FeedbackPaginator(
                is_answered,
                None if date_from is None else to_unix(date_from),
                None if date_to is None else to_unix(date_to),
                take=take,
                order=order,
            )
            async for page in self._feedback_pages(token, FEEDBACKS_PATH, paginator):
                yield page

    def iter_feedback_archive(
        self, token: Token, *, take: int = 5000, order: str = "dateDesc", nm_id: int | None = None
    ) -> AsyncIterator[Page[m.WbFeedback, datetime | None]]:
        """Archived reviews: answered ones, ones left unanswered for 30 days, and ones with no
        text and no photos (archived at once: a rating-only review is only ever here).
        Newest first by default; cursor as in :meth:`iter_feedbacks`."""
        paginator = ArchivePaginator(take=take, order=order, nm_id=nm_id)
        return self._feedback_pages(token, FEEDBACKS_ARCHIVE_PATH, paginator)

    async def _feedback_pages(
        self, token: Token, path: str, paginator: FeedbackPaginator | ArchivePaginator
    ) -> AsyncIterator[Page[m.WbFeedback, datetime | None]]:
        params = paginator.init_request()
        newest: datetime | None = None
        while paginator.has_next_page:
            body = await self._send("wb_feedbacks", token, "GET", path, params=params)
            if isinstance(body, dict) and body.get("error"):
                raise PayloadError(f"feedbacks error: {body.get('errorText') or 'unknown'}", path=path)
            rows = require(body, "data", "feedbacks") or []
            keep = paginator.update_state(rows, [_created_unix(r) for r in rows])
            items, errors = m.FEEDBACK_PARSER.parse([rows[i] for i in keep])
            for item in items:
                newest = item.created_date if newest is None else max(newest, item.created_date)
            if items or errors:
                yield Page(items, newest, remap_errors(errors, keep), received=len(rows))
            paginator.update_request(params)

    # -- content cards --------------------------------------------------------

    async def iter_cards(self, token: Token, *, limit: int = 100) -> AsyncIterator[Page[m.WbCard, dict[str, Any]]]:
        """All product cards; cursor = {"updatedAt", "nmID"} to continue from."""
        cursor = CardsCursor(limit=limit)
        while cursor.has_next_page:
            body = await self._send("wb_content", token, "POST", CARDS_PATH, json_body=cursor.request_body())
            rows = require(body, "cards") or []
            cursor.update_state(require(body, "cursor"))
            items, errors = m.CARD_PARSER.parse(rows)
            yield Page(items, {"updatedAt": cursor.updated_at, "nmID": cursor.nm_id}, errors, received=len(rows))

    # -- FBS marketplace ------------------------------------------------------

    async def fbs_new_orders(self, token: Token) -> Page[m.WbFbsOrder, None]:
        """Assembly tasks waiting right now."""
        body = await self._send("wb_marketplace", token, "GET", FBS_NEW_PATH)
        rows = require(body, "orders") or []
        items, errors = m.FBS_ORDER_PARSER.parse(rows)
        return Page(items, None, errors, received=len(rows))

    async def iter_fbs_orders(
        self, token: Token, *, date_from: datetime, date_to: datetime, limit: int = 1000, next_value: int = 0
    ) -> AsyncIterator[Page[m.WbFbsOrder, int]]:
        """Assembly tasks created in [date_from, date_to] (<= 30 days); cursor = `next`."""
        cursor = FbsOrdersCursor(limit=limit, next=next_value)
        while cursor.has_next_page:
            params = {
                "limit": str(cursor.limit),
                "next": str(cursor.next),
                "dateFrom": str(to_unix(date_from)),
                "dateTo": str(to_unix(date_to)),
            }
            body = await self._send("wb_marketplace", token, "GET", FBS_ORDERS_PATH, params=params)
            rows = require(body, "orders") or []
            cursor.update_state(body.get("next"), len(rows))
            items, errors = m.FBS_ORDER_PARSER.parse(rows)
            if rows:
                yield Page(items, cursor.next, errors, received=len(rows))

    async def fbs_order_statuses(self, token: Token, order_ids: Iterable[int]) -> Page[m.WbFbsStatus, None]:
        """Statuses of many assembly tasks (chunks of 1000, bounded concurrency)."""
        ids = list(order_ids)
        chunks = [ids[i : i + FBS_STATUS_CHUNK] for i in range(0, len(ids), FBS_STATUS_CHUNK)]

        def fetch(chunk: list[int]) -> Any:
            return lambda: self._send("wb_marketplace", token, "POST", FBS_STATUS_PATH, json_body={"orders": chunk})

        bodies = await gather_bounded(self.concurrency, [fetch(c) for c in chunks])
        items: list[m.WbFbsStatus] = []
        errors: list[RowError] = []
        received = 0
        for body in bodies:
            rows = require(body, "orders") or []
            parsed, errs = m.FBS_STATUS_PARSER.parse(rows)
            errors += [RowError(e.index + received, e.message, e.key) for e in errs]
            items += parsed
            received += len(rows)
        return Page(items, None, errors, received=received)
