"""Allegro REST API reads: order journal, checkout forms, offers, offer events, returns.

One long-lived client for the API host serves every account: the access token is
passed to each call, as a plain token or as a :class:`~connectors.allegro.tokens.TokenSource`.
With a source, a 401 renews the token and sends the same request again (see
connectors/allegro/tokens.py); with a plain token it raises
:class:`~connectors.errors.CredentialsRejected`. The per-client-id limit (9000/min) is one
bucket keyed by the app's client id.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import httpx

from connectors import errors
from connectors.allegro import models as m
from connectors.allegro.paging import JOURNAL_LIMIT, LISTING_LIMIT, EventJournalPaginator, ListingPlan, Window
from connectors.allegro.tokens import Token, with_token
from connectors.http import DEFAULT_RETRY, DEFAULT_TIMEOUTS, Call, HostClient, RetryPolicy, Timeouts, gather_bounded
from connectors.parsing import Page, RowError, RowParser, remap_errors, require
from connectors.ratelimit import DEFAULT_LIMITS, DEFAULT_REGISTRY, BucketBackend, Clock, RateLimits, Sleep
from connectors.timeutil import parse_utc, to_utc_param

PUBLIC_V1 = "application/vnd.allegro.public.v1+json"
BETA_V1 = "application/vnd.allegro.beta.v1+json"

ListingField = Literal["lineItems.boughtAt", "updatedAt"]

READS_PER_WINDOW = 3


@dataclass
class WindowRead:
    """What one pass over a listing window has seen."""

    total: int  # the largest totalCount any page reported
    ids: set[str] = field(default_factory=set)
    totals: set[int] = field(default_factory=set)

    @property
    def steady(self) -> bool:
        """Every page saw the same totalCount: nothing entered or left the window meanwhile."""
        return len(self.totals) <= 1


@dataclass(frozen=True)
class EventStats:
    latest_event_id: str | None
    occurred_at: datetime | None


@dataclass
class EventBatch:
    """All events after the cursor, oldest first; store `last_event_id` once they are processed."""

    events: list[m.OrderEvent]
    last_event_id: str | None
    errors: list[RowError] = field(default_factory=list)


@dataclass
class CheckoutFormBatch:
    forms: list[m.CheckoutForm]
    missing: list[str]  # 404: older than 365 days, merged away, or never existed
    errors: list[RowError] = field(default_factory=list)


class AllegroClient:
    """Reads from ``api.allegro.pl`` (or the sandbox). Use ``async with`` or :meth:`aclose`."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        retry: RetryPolicy = DEFAULT_RETRY,
        limits: RateLimits = DEFAULT_LIMITS,
        registry: BucketBackend = DEFAULT_REGISTRY,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        concurrency: int = 8,
    ) -> None:
        self.client_id = client_id
        self.concurrency = concurrency
        self._limits, self._registry = limits, registry
        self._host = HostClient(
            base_url,
            name="allegro-api",
            transport=transport,
            timeouts=timeouts,
            retry=retry,
            sleep=sleep,
            clock=clock,
            default_headers={"Accept": PUBLIC_V1},
        )

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> AllegroClient:
        url = getattr(settings, "allegro_api_url", None) or "https://api.allegro.pl"
        return cls(url, settings.allegro_client_id, **kwargs)

    async def aclose(self) -> None:
        await self._host.aclose()

    async def __aenter__(self) -> AllegroClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _get(self, token: Token, path: str, params: dict[str, Any] | None = None, *, beta: bool = False) -> Any:
        bucket = None
        if not self._limits.disabled:
            # 9000/min is per client id, whichever account the token belongs to.
            bucket = self._registry.bucket(self.client_id, "allegro_api", self._limits.for_category("allegro_api"))

        async def send(access_token: str) -> Any:
            headers = {"Authorization": f"Bearer {access_token}"}
            if beta:
                headers["Accept"] = BETA_V1
            body, _ = await self._host.send(Call("GET", path, params=params, headers=headers, bucket=bucket))
            return body

        return await with_token(token, send)

    # -- order event journal --------------------------------------------------

    async def iter_order_event_pages(
        self, token: Token, from_id: str | None, *, types: Iterable[str] = (), limit: int = JOURNAL_LIMIT
    ) -> AsyncIterator[Page[m.OrderEvent, str | None]]:
        """Events strictly after `from_id` (None: oldest retained), page by page; cursor = last event id."""
        async for page in self._journal_pages(
            token, "/order/events", "events", m.ORDER_EVENT_PARSER, from_id, types, limit
        ):
            yield page

    async def order_events(self, token: Token, from_id: str | None, *, types: Iterable[str] = ()) -> EventBatch:
        """Every event after `from_id`, until caught up."""
        events: list[m.OrderEvent] = []
        errs: list[RowError] = []
        last = from_id
        async for page in self.iter_order_event_pages(token, from_id, types=types):
            events += page.items
            errs += page.errors
            last = page.cursor
        return EventBatch(events, last, errs)

    async def event_stats(self, token: Token) -> EventStats:
        """The newest event in the journal. Not a cursor: keep the id of the last event processed."""
        body = await self._get(token, "/order/event-stats")
        latest = require(body, "latestEvent")
        if latest is None:
            return EventStats(None, None)
        occurred = latest.get("occurredAt")
        return EventStats(str(latest.get("id")), parse_utc(occurred) if occurred else None)

    async def iter_offer_event_pages(
        self, token: Token, from_id: str | None, *, types: Iterable[str] = (), limit: int = JOURNAL_LIMIT
    ) -> AsyncIterator[Page[m.OfferEvent, str | None]]:
        """Offer events (kept only 24 h) after `from_id`; cursor = last event id."""
        async for page in self._journal_pages(
            token, "/sale/offer-events", "offerEvents", m.OFFER_EVENT_PARSER, from_id, types, limit
        ):
            yield page

    async def _journal_pages(
        self,
        token: Token,
        path: str,
        key: str,
        parser: RowParser[Any],
        from_id: str | None,
        types: Iterable[str],
        limit: int,
    ) -> AsyncIterator[Page[Any, str | None]]:
        paginator = EventJournalPaginator(from_id, limit)
        params: dict[str, Any] = paginator.init_request()
        if types:
            params["type"] = list(types)
        while paginator.has_next_page:
            body = await self._get(token, path, params)
            rows = require(body, key) or []
            keep = paginator.update_state(rows)
            items, errs = parser.parse([rows[i] for i in keep])
            if rows:
                yield Page(items, paginator.from_id, remap_errors(errs, keep), received=len(rows))
            paginator.update_request(params)

    # -- checkout forms -------------------------------------------------------

    async def checkout_form(self, token: Token, form_id: str) -> m.CheckoutForm:
        body = await self._get(token, f"/order/checkout-forms/{form_id}")
        items, errs = m.CHECKOUT_FORM_PARSER.parse([body])
        if errs:
            message = f"checkout form did not parse: {errs[0].message}"
            raise errors.PayloadError(message, path="/order/checkout-forms/{id}")
        return items[0]

    async def checkout_forms(self, token: Token, form_ids: Iterable[str]) -> CheckoutFormBatch:
        """Many orders at once (at most `concurrency` in flight); 404s are listed in `missing`."""
        ids = list(dict.fromkeys(form_ids))

        async def fetch(form_id: str) -> Any:
            try:
                return await self._get(token, f"/order/checkout-forms/{form_id}")
            except errors.NotFound:
                return None

        bodies = await gather_bounded(self.concurrency, [lambda i=i: fetch(i) for i in ids])
        found = [(i, b) for i, (fid, b) in enumerate(zip(ids, bodies, strict=True)) if b is not None]
        items, errs = m.CHECKOUT_FORM_PARSER.parse([b for _, b in found])
        missing = [fid for fid, b in zip(ids, bodies, strict=True) if b is None]
        return CheckoutFormBatch(items, missing, remap_errors(errs, [i for i, _ in found]))

    async def iter_checkout_form_pages(
        self,
        token: Token,
        since: datetime,
        until: datetime,
        *,
        by: ListingField = "lineItems.boughtAt",
        status: str | None = None,
        fulfillment_status: str | None = None,
        window: timedelta | None = None,
    ) -> AsyncIterator[Page[m.CheckoutForm, datetime]]:
        """Every order with `by` in [since, until], each exactly once, splitting the window
        whenever it holds more than the 10,000 the listing can page through; `window`: read
        the range as consecutive windows at most that wide (finer resume points).

        Cursor: a resume point. Every order with `by` before it has been delivered. When a
        window is done, an empty page says so with the window's end as its cursor.
        """
        plan = ListingPlan.over(since, until, LISTING_LIMIT, max_width=window)
        extra = {k: v for k, v in (("status", status), ("fulfillment.status", fulfillment_status)) if v}
        while (current := plan.next_window()) is not None:
            splits = plan.splits
            async for page in self._read_window(token, plan, current, by, extra):
                yield page
            if plan.splits == splits:  # read through, not replaced by smaller windows
                yield Page([], current.until, received=0, requests=0)

    async def list_checkout_forms(
        self, token: Token, since: datetime, until: datetime, *, by: ListingField = "lineItems.boughtAt"
    ) -> CheckoutFormBatch:
        """All of :meth:`iter_checkout_form_pages` in memory (small windows only)."""
        forms: list[m.CheckoutForm] = []
        errs: list[RowError] = []
        async for page in self.iter_checkout_form_pages(token, since, until, by=by):
            forms += page.items
            errs += page.errors
        return CheckoutFormBatch(forms, [], errs)

    async def _listing(self, token: Token, window: Window, by: str, offset: int, extra: dict[str, str]) -> Any:
        params = {
            f"{by}.gte": to_utc_param(window.since),
            f"{by}.lte": to_utc_param(window.until),
            "sort": by,
            "limit": str(LISTING_LIMIT),
            "offset": str(offset),
            **extra,
        }
        body = await self._get(token, "/order/checkout-forms", params)
        require(body, "checkoutForms")
        return body

    async def _read_window(
        self, token: Token, plan: ListingPlan, window: Window, by: str, extra: dict[str, str]
    ) -> AsyncIterator[Page[m.CheckoutForm, datetime]]:
        for _attempt in range(READS_PER_WINDOW):
            first = await self._listing(token, window, by, 0, extra)
            read = WindowRead(total=int(first.get("totalCount") or 0))
            read.totals.add(read.total)
            if not plan.fits(read.total):
                plan.split(window, read.total)
                return
            async for page in self._window_pages(token, plan, window, by, extra, first, read):
                yield page
            if not plan.fits(read.total):
                plan.split(window, read.total)  # it grew past the cap while we read: split the rest
                return
            # Orders move between pages while they change (an order updated past `until` leaves
            # the window and shifts its neighbours one place up, across a page boundary). If the
            # window changed while we read it, or gave fewer ids than it holds, read it again:
            # dedupe drops the repeats.
            if read.steady and len(read.ids) >= read.total:
                return

    async def _window_pages(
        self,
        token: Token,
        plan: ListingPlan,
        window: Window,
        by: str,
        extra: dict[str, str],
        first: Any,
        read: WindowRead,
    ) -> AsyncIterator[Page[m.CheckoutForm, datetime]]:
        for page in self._listing_page(plan, window, first, read):
            yield page
        offsets = plan.offsets(read.total)[1:]
        for start in range(0, len(offsets), self.concurrency):
            chunk = offsets[start : start + self.concurrency]
            bodies = await gather_bounded(
                self.concurrency, [lambda o=o: self._listing(token, window, by, o, extra) for o in chunk]
            )
            for body in bodies:
                for page in self._listing_page(plan, window, body, read):
                    yield page

    @staticmethod
    def _listing_page(
        plan: ListingPlan, window: Window, body: Any, read: WindowRead
    ) -> list[Page[m.CheckoutForm, datetime]]:
        rows = body["checkoutForms"] or []
        total = int(body.get("totalCount") or 0)
        read.totals.add(total)
        read.total = max(read.total, total)
        read.ids.update(r["id"] for r in rows if isinstance(r, dict) and "id" in r)
        keep = plan.take_new(rows)
        items, errs = m.CHECKOUT_FORM_PARSER.parse([rows[i] for i in keep])
        return [Page(items, window.since, remap_errors(errs, keep), received=len(rows))] if rows else []

    # -- offers and returns ---------------------------------------------------

    async def iter_offer_pages(
        self, token: Token, *, publication_status: str | None = None, limit: int = 1000
    ) -> AsyncIterator[Page[m.Offer, int]]:
        """Offers with stock, `limit` at a time; cursor = offset of the next page. No
        `publication_status` means every status (INACTIVE, ACTIVATING, ACTIVE, ENDED): a backup
        wants ENDED offers too, old orders point at them."""
        offset = 0
        while True:
            params: dict[str, Any] = {"offset": str(offset), "limit": str(limit)}
            if publication_status:
                params["publication.status"] = publication_status
            body = await self._get(token, "/sale/offers", params)
            rows = require(body, "offers") or []
            items, errs = m.OFFER_PARSER.parse(rows)
            offset += len(rows)
            if rows:
                yield Page(items, offset, errs, received=len(rows))
            total = body.get("totalCount")
            if len(rows) < limit or (total is not None and offset >= int(total)):
                return

    async def iter_customer_return_pages(
        self,
        token: Token,
        *,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        limit: int = 1000,
    ) -> AsyncIterator[Page[m.CustomerReturn, int]]:
        """Customer returns (beta resource); cursor = offset of the next page."""
        offset = 0
        while True:
            params: dict[str, Any] = {"offset": str(offset), "limit": str(limit)}
            if created_from is not None:
                params["createdAt.gte"] = to_utc_param(created_from)
            if created_to is not None:
                params["createdAt.lte"] = to_utc_param(created_to)
            body = await self._get(token, "/order/customer-returns", params, beta=True)
            rows = require(body, "customerReturns") or []
            items, errs = m.CUSTOMER_RETURN_PARSER.parse(rows)
            offset += len(rows)
            if rows:
                yield Page(items, offset, errs, received=len(rows))
            if len(rows) < limit:
                return
