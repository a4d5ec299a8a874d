"""WB order feed (`POST /api/analytics/v1/order-feed`), fed by the same order model as statistics.

"Updated in real time": a row shows the unit's status at the moment asked (statistics, by
contrast, serve what their last refresh saw, see `World.statistics_now`). Each unit of
`sandbox.wb.orders` becomes one row, visible from when it is ordered (its statistics `date`),
with its current status and that status's time (`updatedAt`). The 1-3 days by which
statistics list some orders late are the statistics pipeline's ("orders and sales can arrive
1-3 days late"): the feed shows such an order the moment it is placed. Statuses:

* `created` (its time is `createdAt`, the statistics `date`), then one of
* `cancel` 3 h after statistics list the unit, with a `cancelType` (app 55 %, receipt 20 %,
  expire 20 %, other 5 %),
* `buyout` 2 days after that listing, then maybe `return` after 9 days (1 in 4 of them
  `returnDefective`); these are the times statistics show them, so both sources agree.

`selectedPeriod` filters by the current status's time (newest first, ties by srid); only the
last 31 days may be asked for. Paging: `offset`/`limit` over the selection as of
`snapshotTime`; the first answer gives it (the sandbox's now). A later page that sends it is
cut from the same snapshot; one that does not is cut from a fresh one (so rows move between
pages, skipped or doubled, as the facts page warns).

`wb_feed_drift` (config): that share of rows comes with a field missing or a status the spec
does not list, so a client's tolerance can be tested.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sandbox.catalog import SELLER_WAREHOUSE
from sandbox.hashing import h64, u01
from sandbox.timefmt import MSK, utc_z
from sandbox.wb.orders import CANCEL_DELAY, RETURN_DELAY, SALE_DELAY, WbOrderModel

WINDOW_DAYS = 31
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 50
# Orders show in statistics 1 min to 3 days after their `date`: how far past a period's end
# a unit may appear there and still have its `createdAt` (its feed `created` time) inside it.
MAX_LISTING_DELAY = 3 * 86400 + 1800
_CANCEL_TYPES = ((0.55, "app"), (0.75, "receipt"), (0.95, "expire"), (1.0, "other"))
_CITIES = (("Москва", "Центральный"), ("Казань", "Приволжский"), ("Санкт-Петербург", "Северо-Западный"))
_S_CTYPE, _S_DEFECT, _S_DRIFT, _S_DRIFT_KIND, _S_CITY = 40, 41, 42, 43, 44
# What a drifted row loses (or gets wrong): a field each, or an unknown status.
_DRIFTS = ("updatedAt", "status", "nmId", "sellerPrice", "createdAt", "unknown_status")


def _msk(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=MSK).isoformat()


class FeedError(ValueError):
    """A request the feed refuses (400)."""


def status_at(m: WbOrderModel, i: int, t: float) -> tuple[str, float]:
    """The unit's feed status at sandbox time `t` and since when (it must be ordered by `t`)."""
    appear = m.appear(i)
    if m.cancelled(i) and t >= appear + CANCEL_DELAY:
        return "cancel", appear + CANCEL_DELAY
    if m.returned(i) and t >= appear + RETURN_DELAY:
        return ("returnDefective" if u01(m.seed, m.stream, i, _S_DEFECT) < 0.25 else "return"), appear + RETURN_DELAY
    if m.bought_out(i) and t >= appear + SALE_DELAY:
        return "buyout", appear + SALE_DELAY
    return "created", m.order_date(i)


def cancel_type(m: WbOrderModel, i: int) -> str:
    u = u01(m.seed, m.stream, i, _S_CTYPE)
    return next(name for bound, name in _CANCEL_TYPES if u < bound)


def _candidates(m: WbOrderModel, start: float, end: float, t: float) -> set[int]:
    """Units whose status at `t` may have its time in [start, end]: one range per status."""
    hi = min(end, t)
    found: set[int] = set()
    # created: ordered in the period, listed by statistics up to MAX_LISTING_DELAY later (maybe after t)
    found.update(m.orders.indices_appearing(start, hi + MAX_LISTING_DELAY))
    for delay in (CANCEL_DELAY, SALE_DELAY, RETURN_DELAY):
        found.update(m.orders.indices_appearing(start - delay, hi - delay))
    return found


def select(m: WbOrderModel, start: float, end: float, t: float) -> list[tuple[float, str, int, str]]:
    """(status time, srid, index, status) of the rows in the period at snapshot `t`, newest first."""
    rows = []
    for i in _candidates(m, start, end, t):
        if not m.orders.in_range(i) or m.order_date(i) > t:
            continue
        status, at = status_at(m, i, t)
        if start <= at <= end:
            rows.append((at, m.srid(i), i, status))
    rows.sort(key=lambda r: (-r[0], r[1]))
    return rows


def feed_row(m: WbOrderModel, i: int, status: str, at: float, drift: float) -> dict[str, Any]:
    product, size_ix = m.product(i)
    fbs = m.fbs(i)
    city, district = _CITIES[h64(m.seed, m.stream, i, _S_CITY) % len(_CITIES)]
    row: dict[str, Any] = {
        "srid": m.srid(i),
        "nmId": product.nm_id,
        "chrtId": product.sizes[size_ix].chrt_id,
        "createdAt": _msk(m.order_date(i)),
        "updatedAt": _msk(at),
        "status": status,
        "warehouseName": SELLER_WAREHOUSE[1] if fbs else "Склад WB",
        "warehouseRegion": "",
        "isMp": fbs,
        "destinationCity": city,
        "destinationDistrict": district,
        "sellerPrice": m.seller_price(i),
        "isB2b": False,
    }
    if status == "cancel":
        row["cancelType"] = cancel_type(m, i)
    if drift and u01(m.seed, m.stream, i, _S_DRIFT) < drift:
        what = _DRIFTS[h64(m.seed, m.stream, i, _S_DRIFT_KIND) % len(_DRIFTS)]
        if what == "unknown_status":
            row["status"] = "inTransit"
        else:
            row.pop(what, None)
    return row


def _parse_time(value: Any, what: str) -> float:
    if not isinstance(value, str) or not value.strip():
        raise FeedError(f"{what} must be a date-time")
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise FeedError(f"{what} must be a date-time") from exc
    return (dt if dt.tzinfo else dt.replace(tzinfo=MSK)).timestamp()


def parse_request(body: Any, now: float) -> tuple[float, float, int, int, float | None]:
    """(start, end, offset, limit, snapshot) of a request body, or FeedError."""
    if not isinstance(body, dict) or not isinstance(body.get("selectedPeriod"), dict):
        raise FeedError("selectedPeriod is required")
    period = body["selectedPeriod"]
    start = _parse_time(period.get("start"), "selectedPeriod.start")
    end = _parse_time(period["end"], "selectedPeriod.end") if period.get("end") else now
    if start < now - WINDOW_DAYS * 86400 - 1:
        raise FeedError(f"selectedPeriod.start: no earlier than {WINDOW_DAYS} days ago")
    if end < start:
        raise FeedError("selectedPeriod.start must not be later than end")
    paging = body.get("pagination") or {}
    if not isinstance(paging, dict):
        raise FeedError("pagination must be an object")
    offset, limit = paging.get("offset", 0), paging.get("limit", DEFAULT_LIMIT)
    if not isinstance(offset, int) or offset < 0 or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise FeedError(f"pagination: offset >= 0, limit 1..{MAX_LIMIT}")
    snapshot = _parse_time(paging["snapshotTime"], "pagination.snapshotTime") if paging.get("snapshotTime") else None
    if snapshot is not None and snapshot > now:
        raise FeedError("pagination.snapshotTime is in the future")
    return start, end, offset, limit, snapshot


def page(m: WbOrderModel, body: Any, now: float, drift: float = 0.0) -> dict[str, Any]:
    """The response body for one request (FeedError for a bad one)."""
    start, end, offset, limit, snapshot = parse_request(body, now)
    t = now if snapshot is None else snapshot
    chosen = select(m, start, end, t)[offset : offset + limit]
    orders = [feed_row(m, i, status, at, drift) for at, _srid, i, status in chosen]
    return {"data": {"snapshotTime": utc_z(t), "currency": "RUB", "orders": orders}}


def all_rows(m: WbOrderModel, now: float) -> Iterator[dict[str, Any]]:
    """Ground truth: every row the feed can show now (the last 31 days)."""
    for at, _srid, i, status in select(m, now - WINDOW_DAYS * 86400, now, now):
        yield feed_row(m, i, status, at, 0.0)
