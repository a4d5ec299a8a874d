"""The bot's other frequent requests on the fast path (api.fastpath): the ack, the batch poll, a
shop's dashboard and a page of its orders, each one statement (storage.caller) on the fast
path's own connection, encoded by orjson, without FastAPI, SQLAlchemy or pydantic.

Under 40 bots polling, acking, batch polling and reading dashboards (benchmarks/api, mixed),
these went through the ORM in the thread pool: ~10 statements a dashboard, each planned
afresh, several thread hops, pydantic both ways; a mixed request cost ~7 polls' CPU.

Same rule as the poll: only a plain, valid request is answered here (parameters known, digits
in range, a JSON body of the documented shape, `Content-Type: application/json`); anything
else goes on to the documented route, which validates it and answers in the usual shape, so
the two never disagree on what is valid. A request the route would answer with a write first
(a person without stored settings, a shop with a run to reap) goes on to it too (`FallThrough`).
The answers are the routes' to the byte: same key check and touch, same 401/404, same JSON
(the order of fields, times in UTC as `Z`, amounts as strings).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import orjson
import psycopg
from starlette.types import Scope

from api import pagecache
from api.deps import bad_key, no_key
from api.errors import not_found
from api.schemas import MAX_ID
from storage import apikeys, caller, queries
from storage.apikeys import StoredKey

API = "/api/v1"
ORDER_STATUSES = frozenset(("new", "paid", "processing", "sent", "delivered", "cancelled", "returned"))
OPTIONS = orjson.OPT_UTC_Z  # as pydantic writes UTC: ...Z


class FallThrough(Exception):
    """Not for the fast path after all: the documented route answers this request."""


# An answer's CPU-heavy Python, apart from its statement: None after each step, the body last.
# api.fastpath runs these on the event loop a slice at a time, after the statement. In a
# thread, 50 people's pages held the GIL for milliseconds against the worker's event loop,
# which waited up to the interpreter's switch interval (5 ms) for it at every step of every
# request it served meanwhile (benchmarks/api/README.md, where the tail came from).
Steps = Iterator[bytes | None]


def _decimal(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)  # as pydantic writes a Decimal
    raise TypeError(type(value).__name__)


def dumps(body: Any) -> bytes:
    return orjson.dumps(body, option=OPTIONS, default=_decimal)


# -- what a plain request is ----------------------------------------------------------------

DIGITS = re.compile(r"[0-9]{1,19}")
Bounds = tuple[int, int]


def plain_query(query: bytes, ints: dict[str, Bounds], words: dict[str, frozenset[str]] | None = None) -> dict | None:
    """The parameters when every one is known, given once and valid; None otherwise."""
    try:
        pairs = parse_qsl(query.decode("ascii"), strict_parsing=False)
    except UnicodeDecodeError:
        return None
    values: dict[str, int | str] = {}
    for name, raw in pairs:
        if name in values:
            return None
        bounds = ints.get(name)
        if bounds is not None:
            if not DIGITS.fullmatch(raw) or not bounds[0] <= int(raw) <= bounds[1]:
                return None
            values[name] = int(raw)
        elif words is not None and name in words and raw in words[name]:
            values[name] = raw
        else:
            return None
    return values


def _json_int(value: Any, low: int, high: int) -> bool:
    # JSON integers only, as the schemas' Strict() fields: `true` is not 1, `1.0` is not 1.
    return type(value) is int and low <= value <= high


def json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return value if type(value) is dict else None


def is_json(scope: Scope) -> bool:
    types = [value for name, value in scope["headers"] if name == b"content-type"]
    return len(types) == 1 and types[0].lower() == b"application/json"


TELEGRAM_ID = (1, MAX_ID)


# -- the routes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FastRoute:
    method: str
    path: re.Pattern[str]  # the shop id as its group, if any
    # The request's arguments from (path match, query string, body); None: not a plain one.
    parse: Callable[[re.Match[str], bytes, bytes], dict[str, Any] | None]
    # The answer's body, or the steps that make it (Steps); raises ApiError (401, 404) or FallThrough.
    answer: Callable[..., bytes | Steps]
    has_body: bool = False


def _digest(secret: str | None) -> str:
    """As api.deps.current_key judges the header."""
    if not secret:
        raise no_key()
    digest = apikeys.digest_of(secret)
    if digest is None:
        raise bad_key()
    return digest


def _check(cur: psycopg.Cursor[Any], key: StoredKey | None, digest: str, now: datetime) -> None:
    if not apikeys.verify(cur, key, digest, now):
        raise bad_key()


def _caller(found: Any, cur: psycopg.Cursor[Any], digest: str, now: datetime) -> None:
    _check(cur, None if found is None else found.key, digest, now)
    if found.person_id is None:
        raise not_found("person")


# POST /notifications/ack: `telegram_id` in the query (documented) or in the body (old bots).
def _parse_ack(match: re.Match[str], query: bytes, body: bytes) -> dict[str, Any] | None:
    params, doc = plain_query(query, {"telegram_id": TELEGRAM_ID}), json_object(body)
    if params is None or doc is None or "cursor" not in doc or set(doc) - {"cursor", "telegram_id"}:
        return None
    if not _json_int(doc["cursor"], 0, MAX_ID):
        return None
    in_body = doc.get("telegram_id")
    if in_body is not None and not _json_int(in_body, *TELEGRAM_ID):
        return None
    telegram_id = params.get("telegram_id", in_body)
    if telegram_id is None or in_body not in (None, telegram_id):
        return None  # the route's 422s
    return {"telegram_id": telegram_id, "cursor": doc["cursor"]}


def _ack(cur: psycopg.Cursor[Any], secret: str | None, *, telegram_id: int, cursor: int) -> bytes:
    digest, now = _digest(secret), datetime.now(UTC)
    found = caller.ack_as(cur, key_digest=digest, telegram_id=telegram_id, cursor=cursor)
    _caller(found, cur, digest, now)
    return dumps({"telegram_id": telegram_id, "cursor": found.cursor})


# POST /notifications/poll
def _parse_batch(match: re.Match[str], query: bytes, body: bytes) -> dict[str, Any] | None:
    doc = json_object(body)
    if query or doc is None or "telegram_ids" not in doc or set(doc) - {"telegram_ids", "limit"}:
        return None
    ids, limit = doc["telegram_ids"], doc.get("limit", 50)
    if type(ids) is not list or not 1 <= len(ids) <= 200 or not all(_json_int(t, *TELEGRAM_ID) for t in ids):
        return None
    if not _json_int(limit, 1, 200):
        return None
    return {"telegram_ids": list(dict.fromkeys(ids)), "limit": limit}  # duplicates once, order kept


def _batch(cur: psycopg.Cursor[Any], secret: str | None, *, telegram_ids: list[int], limit: int) -> Steps:
    """The statement and the key's check here; the pages, 50 people's grouping and rendering
    (~0.1 ms of Python each), are the steps it returns (api.fastpath runs them in slices)."""
    digest, now = _digest(secret), datetime.now(UTC)
    found = caller.poll_many_as(cur, key_digest=digest, telegram_ids=telegram_ids, limit=limit)
    _check(cur, None if found is None else found.key, digest, now)
    assert found is not None  # _check refused a missing key
    return _batch_pages(found, telegram_ids, now)


def _batch_pages(found: caller.ManyPages, telegram_ids: list[int], now: datetime) -> Iterator[bytes | None]:
    """The answer, each person's part of it from the worker's PAGES while their row is the same
    (api.pagecache), made and kept otherwise; the parts joined as orjson would write the whole."""
    from api.routes.notifications import _item_json  # the poll's own item shape

    parts = []
    for t in telegram_ids:
        row = found.rows.get(t)
        if row is None:
            continue
        inputs = pagecache.inputs_of(row, found.limit)
        part = PAGES.get(t, inputs, now)
        if part is None:
            page = found.page(t, now)
            items = [_item_json(i) for i in page.items]
            part = dumps({"telegram_id": t, "items": items, "next_cursor": page.next_cursor})
            PAGES.put(t, inputs, now, page.until, part)
            yield None  # a person done: api.fastpath may let the event loop serve others here
        parts.append(part)
    unknown = dumps([t for t in telegram_ids if t not in found.rows])
    yield b'{"results":[' + b",".join(parts) + b'],"unknown":' + unknown + b"}"


# The batch poll's encoded pages, per worker (the event loop's only: no lock).
PAGES = pagecache.PageCache()


def _shop_id(match: re.Match[str]) -> int | None:
    value = int(match.group(1))
    return value if 1 <= value <= MAX_ID else None


# GET /shops/{shop_id}/orders
def _parse_orders(match: re.Match[str], query: bytes, body: bytes) -> dict[str, Any] | None:
    ints = {"telegram_id": TELEGRAM_ID, "limit": (1, 200), "offset": (0, 1_000_000)}
    params, shop_id = plain_query(query, ints, {"status": ORDER_STATUSES}), _shop_id(match)
    if params is None or shop_id is None or "telegram_id" not in params:
        return None
    return {"limit": 50, "offset": 0, "status": None, **params, "shop_id": shop_id}


def _orders(
    cur: psycopg.Cursor[Any],
    secret: str | None,
    *,
    telegram_id: int,
    shop_id: int,
    status: str | None,
    limit: int,
    offset: int,
) -> bytes:
    digest, now = _digest(secret), datetime.now(UTC)
    found = caller.orders_as(
        cur, key_digest=digest, telegram_id=telegram_id, shop_id=shop_id, status=status, limit=limit, offset=offset
    )
    _caller(found, cur, digest, now)
    if found.shop_id is None:
        raise not_found("shop")  # also for shops that exist but are someone else's
    items = [dict(zip(caller.ORDER_COLUMNS, row, strict=True)) for row in found.rows]
    return dumps({"items": items, "total": found.total, "limit": limit, "offset": offset})


# GET /shops/{shop_id}/dashboard
def _parse_dashboard(match: re.Match[str], query: bytes, body: bytes) -> dict[str, Any] | None:
    params, shop_id = plain_query(query, {"telegram_id": TELEGRAM_ID}), _shop_id(match)
    if params is None or shop_id is None or "telegram_id" not in params:
        return None
    return {"telegram_id": params["telegram_id"], "shop_id": shop_id}


# Each person's zone as last read, per worker: the day boundaries of the dashboard's periods
# depend on it, and are parameters of its statement. A guess only: the statement reads the
# zone stored, and a wrong guess (a first dashboard, a changed zone) is read again with it.
_zones: dict[int, str | None] = {}
MAX_ZONES = 100_000


def _dashboard(cur: psycopg.Cursor[Any], secret: str | None, *, telegram_id: int, shop_id: int) -> bytes:
    digest, now = _digest(secret), datetime.now(UTC)
    since = now - timedelta(days=1)
    tz = queries.zone(_zones.get(telegram_id))
    while True:
        windows = queries.period_windows(now, tz)
        found = caller.dashboard_as(
            cur, key_digest=digest, telegram_id=telegram_id, shop_id=shop_id, windows=windows, since=since
        )
        _caller(found, cur, digest, now)
        if found.shop_id is None:
            raise not_found("shop")
        stored = queries.zone(found.time_zone)
        if str(stored) == str(tz):
            break
        if len(_zones) >= MAX_ZONES:
            _zones.clear()
        _zones[telegram_id], tz = found.time_zone, stored
    if not found.has_settings or found.dead_runs:
        raise FallThrough  # the route writes first: default settings, or the reaped runs
    reviews = queries.reviews_of(since, found.reviews)
    periods = [
        {**p.__dict__, "growth": p.growth} for p in queries.periods_of(windows, found.figures)
    ]  # PeriodOut's fields, in its order
    return dumps(
        {
            "shop_id": found.shop_id,
            "currency": found.currency,
            "time_zone": str(tz),
            "periods": periods,
            "critical_stocks": found.critical_stocks,
            "reviews": reviews.__dict__,
            "last_syncs": [dict(zip(caller.SYNC_RUN_COLUMNS, row, strict=True)) for row in found.last_syncs],
        }
    )


ROUTES = (
    # On the loop, both: the ack's commit no longer waits for the WAL flush (storage.outbox.ACK_ASYNC),
    # so it costs what a poll costs; a batch poll's statement is ~4 ms of PostgreSQL for 50 people.
    # In a thread (as before) each waited for a slot, a thread, the GIL (the loop holds it while
    # busy: a batch's statement took 27-35 ms for its ~4 ms), then for the loop again. The loop
    # does wait for the statement: ~16 ms for the bot's own 200-person batches.
    FastRoute("POST", re.compile(rf"{API}/notifications/ack"), _parse_ack, _ack, has_body=True),
    FastRoute("POST", re.compile(rf"{API}/notifications/poll"), _parse_batch, _batch, has_body=True),
    FastRoute("GET", re.compile(rf"{API}/shops/([0-9]{{1,19}})/dashboard"), _parse_dashboard, _dashboard),
    FastRoute("GET", re.compile(rf"{API}/shops/([0-9]{{1,19}})/orders"), _parse_orders, _orders),
)


def route_of(scope: Scope) -> tuple[FastRoute, re.Match[str]] | None:
    method, path = scope["method"], scope["path"]
    for route in ROUTES:
        if route.method == method:
            match = route.path.fullmatch(path)
            if match is not None:
                return route, match
    return None
