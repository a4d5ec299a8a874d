"""A page of a shop's order list and its total, in one statement: the SQL both the route
(storage.queries.recent_orders) and the fast path (storage.caller.orders_as) run, so the two
cannot disagree on which orders a page holds.

The list is the view `order_list` (migration 0019): every stored order with its status as of
now, and the WB units only the order feed shows yet (`in_statistics` false). Newest first.

- Unfiltered: the page's ids come from walking the two lists' indexes in order (stored orders,
  feed-only units, merged), reading no status; the total is a count of both, reading none
  either. Only the page's own rows are then read with their status.
- Filtered by status: the status is computed for every order of the shop, so every order is
  read once, by hash joins (`order_list_scan`), into the ids that match; the total is their
  count and the page their newest, from the same pass (it used to be two passes, each probing
  the sales report once per order).

The total stays exact: the bot shows "1-8 of N" and offers a next page while offset + limit < N.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

# What a page shows of each order (api.schemas.OrderOut, in its order).
ORDER_COLUMNS = (
    "id",
    "external_id",
    "basket_id",
    "status",
    "marketplace_status",
    "fulfillment_status",
    "is_cancelled",
    "total_amount",
    "currency",
    "bought_at",
    "cancelled_at",
    "updated_at",
    "merged_into",
    "in_statistics",
)
NEWEST_FIRST = "bought_at DESC NULLS LAST, id DESC"
_STORED = ", ".join(f"o.{c}" for c in ORDER_COLUMNS[:-1]) + ", true AS in_statistics"
_FEED_ONLY = ", ".join(f"o.{c}" for c in ORDER_COLUMNS)


def _ids_unfiltered(shop: str, limit: str, offset: str) -> tuple[str, str, str]:
    """The newest limit + offset stored orders by their index; the feed-only units only as far
    back as the last of those (older ones cannot be on the page), by theirs."""
    head = f"""WITH stored AS MATERIALIZED (
    SELECT id, bought_at FROM orders WHERE shop_id = {shop} ORDER BY {NEWEST_FIRST} LIMIT {limit} + {offset}
), reach AS (
    SELECT CASE WHEN count(*) < {limit} + {offset} OR count(bought_at) < count(*) THEN '-infinity'
        ELSE min(bought_at) END AS since FROM stored
) """
    total = (
        f"SELECT (SELECT count(*) FROM orders WHERE shop_id = {shop})"
        f" + (SELECT count(*) FROM order_feed_only WHERE shop_id = {shop}) AS total"
    )
    ids = (
        "SELECT id, bought_at, true AS in_statistics FROM stored UNION ALL "
        f"SELECT id, bought_at, false FROM order_feed_only WHERE shop_id = {shop}"
        " AND bought_at >= (SELECT since FROM reach)"
    )
    return head, total, ids


def _ids_by_status(shop: str, status: str) -> tuple[str, str, str]:
    head = (
        "WITH matched AS MATERIALIZED (SELECT id, bought_at, in_statistics FROM order_list_scan"
        f" WHERE shop_id = {shop} AND status = {status}) "
    )
    return head, "SELECT count(*) AS total FROM matched", "SELECT id, bought_at, in_statistics FROM matched"


def page_sql(*, shop: str, status: str | None, limit: str, offset: str) -> str:
    """Rows (total, *ORDER_COLUMNS) of one page, newest first; always at least one row: past
    the end, the total with NULL columns. Arguments are SQL expressions (bind parameters, or a
    column of an enclosing query); `status` None: every status."""
    head, total, ids = _ids_unfiltered(shop, limit, offset) if status is None else _ids_by_status(shop, status)
    newest = ", ".join(f"p.{term}" for term in NEWEST_FIRST.split(", "))
    # Each row of the page from its own view by id (an index probe): a join of the union
    # `order_list` by id would compute all of it first.
    return f"""{head}SELECT t.total, o.*
FROM ({total}) t
LEFT JOIN ({ids} ORDER BY {NEWEST_FIRST} LIMIT {limit} OFFSET {offset}) p ON true
LEFT JOIN LATERAL (
    SELECT {_STORED} FROM order_statuses o WHERE p.in_statistics AND o.id = p.id
    UNION ALL
    SELECT {_FEED_ONLY} FROM order_feed_only o WHERE NOT p.in_statistics AND o.id = p.id
) o ON true
ORDER BY {newest}"""


_MARK_LISTED = text(
    "UPDATE wb_feed_orders f SET listed = true WHERE f.shop_id = :shop AND NOT f.listed"
    " AND EXISTS (SELECT 1 FROM orders x WHERE x.shop_id = f.shop_id AND x.external_id = f.srid)"
)


def mark_listed(session: Session, *, shop_id: int) -> int:
    """Mark the shop's feed rows statistics now list (`wb_feed_orders.listed`, 0019): only the
    unmarked ones are read (a partial index), a few per feed read. How many were marked."""
    return session.execute(_MARK_LISTED, {"shop": shop_id}).rowcount
