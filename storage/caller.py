"""An API caller's request in one statement on a cursor of the driver (psycopg): the API key by
digest, the person by Telegram id, the shop they belong to, and what the request reads (or
the ack it writes), for the API's fast path (api.fastroutes).

    ack_as(cur, *, key_digest, telegram_id, cursor) -> Acked | None
    poll_many_as(cur, *, key_digest, telegram_ids, limit) -> ManyPages | None   (pages made by .page())
    orders_as(cur, *, key_digest, telegram_id, shop_id, status, limit, offset) -> OrdersPage | None
    dashboard_as(cur, *, key_digest, telegram_id, shop_id, windows, since) -> Dashboard | None

Each answers None when no key has the digest; otherwise the key row (to check with
storage.apikeys.verify), and the person and shop only for a key that is not revoked (nothing
else is read for a revoked one). A shop the person does not belong to is `shop_id None`, as
storage.people.member_shop would say. The statements are the same queries as the ORM's
(storage.queries, storage.outbox, storage.settings_repo), with scalar parameters so
PostgreSQL plans each once per connection (psycopg prepares it after a few runs): the ORM
path planned every one of its ~10 statements on every request (0.1-0.6 ms each, more than
most of them took to run).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from storage import order_list
from storage.apikeys import StoredKey
from storage.outbox import ACK_ASYNC, Page, page_bounds, page_of, pages_sql
from storage.queries import PeriodWindows
from storage.reaping import HOLDER_GONE

# The caller: key by digest; person and membership only for a key that is not revoked.
_CALLER = """
FROM api_keys k
LEFT JOIN people p ON k.revoked_at IS NULL AND p.telegram_id = %(telegram_id)s
LEFT JOIN memberships m ON m.person_id = p.id AND m.shop_id = %(shop_id)s
"""
_KEY = "k.id, k.key_hash, k.revoked_at, k.last_used_at"


def _key(row: Sequence[Any]) -> StoredKey:
    return StoredKey(*row[:4])


# -- ack ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Acked:
    key: StoredKey
    person_id: int | None  # None: no such person (nothing written), or a revoked key
    cursor: int | None  # the stored cursor after the ack


# storage.outbox.ack for the person found, in the same statement: never backwards, never past
# the newest notification; its commit does not wait for the WAL flush (storage.outbox.ACK_ASYNC:
# why a cursor may, and what it cost). Local to the statement's own transaction: the fast
# path's connection commits every later write (a key's touch) durably as ever.
_ACK = f"""
WITH caller AS (
    SELECT k.id, k.key_hash, k.revoked_at, k.last_used_at, p.id AS person_id
    FROM api_keys k
    LEFT JOIN people p ON k.revoked_at IS NULL AND p.telegram_id = %(telegram_id)s
    WHERE k.key_hash = %(digest)s
), acked AS (
    INSERT INTO delivery_cursors (person_id, last_notification_id)
    SELECT person_id, LEAST(%(cursor)s::bigint, (SELECT coalesce(max(id), 0) FROM notifications))
    FROM caller WHERE person_id IS NOT NULL
    ON CONFLICT (person_id) DO UPDATE SET
        last_notification_id = GREATEST(delivery_cursors.last_notification_id, EXCLUDED.last_notification_id),
        updated_at = now()
    RETURNING last_notification_id
)
SELECT caller.*, (SELECT last_notification_id FROM acked), {ACK_ASYNC} FROM caller
"""


def ack_as(cur: psycopg.Cursor[Any], *, key_digest: str, telegram_id: int, cursor: int) -> Acked | None:
    params = {"digest": key_digest, "telegram_id": telegram_id, "cursor": max(0, int(cursor))}
    row = cur.execute(_ACK, params).fetchone()
    if row is None:
        return None
    return Acked(key=_key(row), person_id=row[4], cursor=None if row[5] is None else int(row[5]))


# -- batch poll -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ManyPages:
    key: StoredKey
    rows: dict[int, Sequence[Any]]  # telegram id -> what page() makes their page of, for the people found
    limit: int
    fetch: int

    def page(self, telegram_id: int, now: datetime) -> Page:
        """One person's page: the Python part of a batch poll (its CPU), apart from the
        statement, so api.fastpath runs it on the event loop in slices (api.fastroutes)."""
        return page_of(self.rows[telegram_id], limit=self.limit, fetch=self.fetch, now=now)


# The people by Telegram id, each after their stored cursor (storage.outbox.poll_many's query).
_POLL_MANY_AS = f"""
SELECT {_KEY}, page.*
FROM api_keys k
LEFT JOIN LATERAL ({
    pages_sql(
        "unnest(%(telegram_ids)s::bigint[]) AS req(telegram_id) JOIN people p ON p.telegram_id = req.telegram_id",
        requested="NULL::bigint",
    ).replace("SELECT p.id AS person_id,", "SELECT p.telegram_id, p.id AS person_id,", 1)
}) page ON k.revoked_at IS NULL
WHERE k.key_hash = %(digest)s
"""


def poll_many_as(
    cur: psycopg.Cursor[Any], *, key_digest: str, telegram_ids: Sequence[int], limit: int
) -> ManyPages | None:
    limit, fetch = page_bounds(limit)
    rows = cur.execute(
        _POLL_MANY_AS, {"digest": key_digest, "telegram_ids": list(telegram_ids), "fetch": fetch}
    ).fetchall()
    if not rows:
        return None
    found = {row[4]: row[6:] for row in rows if row[4] is not None}
    return ManyPages(key=_key(rows[0]), rows=found, limit=limit, fetch=fetch)


# -- orders ---------------------------------------------------------------------------------

ORDER_COLUMNS = order_list.ORDER_COLUMNS


@dataclass(frozen=True, slots=True)
class OrdersPage:
    key: StoredKey
    person_id: int | None
    shop_id: int | None  # None: not a shop of theirs (or no such shop)
    total: int
    rows: list[tuple[Any, ...]]  # ORDER_COLUMNS, newest first (storage.queries.recent_orders)


def _orders_sql(status: bool) -> str:
    # The route's statement (storage.order_list), for the shop of the membership found: nothing
    # of it is read for a caller who is not a member (or a revoked key).
    page = order_list.page_sql(
        shop="m.shop_id", status="%(status)s" if status else None, limit="%(limit)s", offset="%(offset)s"
    )
    return f"""
SELECT {_KEY}, p.id, m.shop_id, page.*
{_CALLER}
LEFT JOIN LATERAL ({page}) page ON m.shop_id IS NOT NULL
WHERE k.key_hash = %(digest)s
"""


# Two statements, not one with `status IS NULL OR`: each keeps a plan that uses its index.
_ORDERS = {False: _orders_sql(status=False), True: _orders_sql(status=True)}


def orders_as(
    cur: psycopg.Cursor[Any],
    *,
    key_digest: str,
    telegram_id: int,
    shop_id: int,
    status: str | None,
    limit: int,
    offset: int,
) -> OrdersPage | None:
    params = {
        "digest": key_digest,
        "telegram_id": telegram_id,
        "shop_id": shop_id,
        "status": status,
        "limit": limit,
        "offset": offset,
    }
    # Filtered: planned for its own shop and status each time (not prepared). Its pass reads all
    # of the shop's orders, so planning is nothing beside it, and the generic plan (any shop, any
    # status) cost PostgreSQL 1.9-2.2x the route's CPU per request (benchmarks/orders/README.md).
    filtered = status is not None
    rows = cur.execute(_ORDERS[filtered], params, prepare=False if filtered else None).fetchall()
    if not rows:
        return None
    first = rows[0]
    found = [row[7:] for row in rows if row[7] is not None]
    return OrdersPage(key=_key(first), person_id=first[4], shop_id=first[5], total=int(first[6] or 0), rows=found)


# -- dashboard ------------------------------------------------------------------------------

SYNC_RUN_COLUMNS = (
    "id",
    "stream",
    "kind",
    "status",
    "started_at",
    "finished_at",
    "fetched",
    "inserted",
    "updated",
    "unchanged",
    "stale_refused",
    "requests",
    "error",
    "flow_run_id",
)
RANGES = 8  # storage.queries.period_windows: four periods, each with its previous one


@dataclass(frozen=True, slots=True)
class Dashboard:
    key: StoredKey
    person_id: int | None
    time_zone: str | None  # the person's, as stored
    shop_id: int | None
    currency: str | None
    has_settings: bool  # False: the route inserts the defaults (storage.settings_repo.ensure_settings)
    dead_runs: bool  # a `running` run whose process is gone: the route reaps it before showing runs
    figures: tuple[Any, ...]  # an order count and amount per range of the windows
    critical_stocks: int
    reviews: tuple[Any, ...]  # new, unanswered, negative, average (recent), average (all), total
    last_syncs: list[tuple[Any, ...]]  # SYNC_RUN_COLUMNS, the latest run of each stream


def _dashboard_sql() -> str:
    counted = "o.is_cancelled IS false AND o.merged_into IS NULL"
    figures = []
    for i in range(RANGES):
        inside = f"o.bought_at >= %(lo{i})s AND o.bought_at < %(hi{i})s AND {counted}"
        figures += [f"count(*) FILTER (WHERE {inside})", f"coalesce(sum(o.total_amount) FILTER (WHERE {inside}), 0)"]
    recent = "v.created_at_source >= %(since)s"
    runs = ", ".join(f"r.{c}" for c in SYNC_RUN_COLUMNS)
    return f"""
SELECT {_KEY}, p.id, p.time_zone, sh.id, sh.currency, s.person_id IS NOT NULL,
    EXISTS (SELECT 1 FROM sync_runs r WHERE r.shop_id = sh.id AND r.status = 'running' AND {HOLDER_GONE}),
    fig.*, crit.n, rev.*, last.*
{_CALLER}
LEFT JOIN shops sh ON sh.id = m.shop_id
LEFT JOIN notification_settings s ON s.person_id = p.id
LEFT JOIN LATERAL (
    SELECT {", ".join(figures)} FROM order_statuses o WHERE o.shop_id = sh.id AND o.bought_at >= %(earliest)s
) fig ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS n FROM (
        SELECT 1 FROM stocks st WHERE st.shop_id = sh.id GROUP BY st.sku
        HAVING sum(st.quantity) <= s.critical_stock_threshold) x
) crit ON true
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE {recent}), count(*) FILTER (WHERE v.is_answered IS false),
        count(*) FILTER (WHERE {recent} AND v.stars <= s.review_rating_threshold),
        avg(v.stars) FILTER (WHERE {recent}), avg(v.stars), count(*)
    FROM reviews v WHERE v.shop_id = sh.id
) rev ON true
LEFT JOIN LATERAL (
    SELECT DISTINCT ON (r.stream) {runs} FROM sync_runs r WHERE r.shop_id = sh.id
    ORDER BY r.stream, r.started_at DESC, r.id DESC
) last ON true
WHERE k.key_hash = %(digest)s
ORDER BY last.stream
"""


_DASHBOARD = _dashboard_sql()
_FIXED = 10  # key (4), person, zone, shop, currency, settings, dead runs


def dashboard_as(
    cur: psycopg.Cursor[Any],
    *,
    key_digest: str,
    telegram_id: int,
    shop_id: int,
    windows: PeriodWindows,
    since: datetime,
) -> Dashboard | None:
    """`windows`: for the person's zone (the caller's guess: the answer names the zone stored;
    figures for another zone are of no use); `since`: what counts as a new review."""
    params: dict[str, Any] = {"digest": key_digest, "telegram_id": telegram_id, "shop_id": shop_id}
    params.update({"since": since, "earliest": windows.earliest})
    for i, (lo, hi) in enumerate(windows.ranges):
        params[f"lo{i}"], params[f"hi{i}"] = lo, hi
    rows = cur.execute(_DASHBOARD, params).fetchall()
    if not rows:
        return None
    first = rows[0]
    figures_end = _FIXED + 2 * RANGES
    reviews = first[figures_end + 1 : figures_end + 7]
    runs = [row[figures_end + 7 :] for row in rows if row[figures_end + 7] is not None]
    return Dashboard(
        key=_key(first),
        person_id=first[4],
        time_zone=first[5],
        shop_id=first[6],
        currency=first[7],
        has_settings=bool(first[8]),
        dead_runs=bool(first[9]),
        figures=tuple(first[_FIXED:figures_end]),
        critical_stocks=int(first[figures_end] or 0),
        reviews=tuple(reviews),
        last_syncs=runs,
    )
