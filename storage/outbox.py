"""The notification outbox: storing drafts in the sync's transaction, and delivering them to people.

Keyword-only functions; the caller owns the transaction (nothing here commits).

For the sync (same session and transaction as the writes; call these last, just before
the cursor is set and the transaction commits):
    add(session, *, shop_id: int, drafts: Sequence[Draft]) -> int
        Multi-row INSERT ... ON CONFLICT (dedupe_key) DO NOTHING; returns how many were new.
    notify_changes(session, *, shop: ShopContext, stream: str, changes: Sequence[RowChange], now) -> int
        Runs the stream's rule (wb_orders, allegro_orders, wb_sales, wb_reviews, allegro_returns, wb_feed)
        with catalog names/images, then add().
    notify_stock(session, *, shop: ShopContext, totals: Sequence[TotalChange], now) -> int
        critical_stock (thresholds of the shop's people now) and stock_runout, then add().
    notify_shop_status(session, *, shop: ShopContext, status: str, changed_at, reason=None) -> int
        After a status change: shop_needs_reauth to the owners when it is needs_reauth or broken.
    notify_sync_failing(session, *, shop: ShopContext, stream: str, failing_since, now, after, error=None) -> int
        After a failed stream run: sync_failing to the owners once the streak is longer than `after`.
    shop_context(session, *, shop_id: int, backfill: bool = False) -> ShopContext

For the API (the bot polls with a cursor and acknowledges):
    poll(session, *, person_id: int, after: int | None = None, limit: int = 50, now=None) -> Page
    poll_many(session, *, requests: Sequence[tuple[int, int | None]], limit: int = 50, now=None)
        -> dict[int, Page]   (person_id -> Page; one query for all of them)
    poll_as(cur, *, key_digest: str, telegram_id: int, after=None, at=None, limit=50, now=None)
        -> CallerPage | None
        The bot's poll in one statement on a cursor of the driver (psycopg): the API key
        (to check with storage.apikeys.verify), the person, and their page after `after`, or
        after cursor_at(at), or after their stored cursor. None: no key with that digest.
    ack(session, *, person_id: int, cursor: int) -> int
        Moves the person's stored cursor forward (never backwards; never past the newest id).
    stored_cursor(session, *, person_id: int) -> int
    cursor_at(session, *, at: datetime, person_id: int | None = None) -> int
        The id cursor equivalent to an old-style `last_check` timestamp.
    Delivery(): the same as an object with the API's `Delivery` protocol
        (poll_as, poll_many -> {person_id: (items, next_cursor)}, ack).

`after=None` means "from the stored (acknowledged) cursor". A Page holds `items` (each: `id`
= the highest notification id in it, `notification_ids`, kind, shop, rendered text, image
URL, created_at) and `next_cursor`: ack it once every item is sent. See
sellerpulse/notify/grouping.py for the grouping and cursor semantics, and
sellerpulse/notify/delivery.py for how settings apply. A person only sees notifications of
shops they belong to, created after they joined the shop.

Ordering: `add` takes a transaction-scoped advisory lock before inserting, so outbox rows
commit in id order and a poll can never hand out a cursor past a row that commits later.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import psycopg
from sqlalchemy import text
from sqlalchemy.orm import Session

from connectors.parsing import gc_paused
from sellerpulse.notify import feed_rules, rules
from sellerpulse.notify.delivery import Preferences, Stored
from sellerpulse.notify.drafts import Draft, ProductInfo, ShopContext
from sellerpulse.notify.grouping import Group, plan
from sellerpulse.notify.render import Message, ShopView, language_for, render_many, zone
from storage.apikeys import StoredKey
from storage.changes import RowChange

LOCK_OUTBOX = 71_010  # advisory lock namespace (see storage.sync_state for the others)
MAX_LIMIT = 200
MAX_FETCH = 500


# -- storing --------------------------------------------------------------------------------


def add(session: Session, *, shop_id: int, drafts: Sequence[Draft]) -> int:
    """Store drafts once each (by dedupe key); returns how many were new."""
    unique = list({d.dedupe_key: d for d in drafts}.values())
    if not unique:
        return 0
    # One JSON document as the only parameter: orjson writes it at C speed, where binding
    # three Python lists of 80,000 strings costs more than the whole upsert.
    with gc_paused():  # tens of thousands of small acyclic tuples: GC passes would only cost time
        doc = orjson.dumps([(d.kind, d.dedupe_key, d.payload) for d in unique], default=str).decode()
    conn = session.connection()
    # Held to commit: ids are handed out and committed in the same order (see module docstring).
    conn.execute(text("SELECT pg_advisory_xact_lock(:ns, 0)"), {"ns": LOCK_OUTBOX})
    result = conn.execute(
        text(
            "INSERT INTO notifications (shop_id, kind, dedupe_key, payload, created_at) "
            "SELECT :shop, e->>0, e->>1, e->2, clock_timestamp() "
            "FROM jsonb_array_elements(CAST(:doc AS jsonb)) WITH ORDINALITY AS t(e, i) ORDER BY i "
            "ON CONFLICT (dedupe_key) DO NOTHING"
        ),
        {"shop": shop_id, "doc": doc},
    )
    return result.rowcount


# -- sync entry points ----------------------------------------------------------------------


def shop_context(session: Session, *, shop_id: int, backfill: bool = False) -> ShopContext:
    row = session.execute(
        text("SELECT id, marketplace, name, notify_from, currency, language FROM shops WHERE id = :id"),
        {"id": shop_id},
    ).one()
    return ShopContext(*row, backfill=backfill)


_STREAM_RULES = {
    "wb_orders": rules.for_orders,
    "allegro_orders": rules.for_orders,
    "wb_sales": rules.for_sales,
    "wb_reviews": rules.for_reviews,
    "allegro_returns": rules.for_customer_returns,
    "wb_feed": feed_rules.for_wb_feed,
}


def notify_changes(
    session: Session, *, shop: ShopContext, stream: str, changes: Sequence[RowChange], now: datetime
) -> int:
    """Drafts for one write batch of `stream`, stored in the caller's transaction."""
    rule = _STREAM_RULES.get(stream)
    if rule is None or shop.silent or not changes:
        return 0
    with gc_paused():  # a page's drafts are many small acyclic dicts: GC passes would only cost time
        catalog = catalog_of(session, shop_id=shop.id, skus=_skus(changes))
        return add(session, shop_id=shop.id, drafts=rule(shop, changes, now=now, catalog=catalog))


def _skus(changes: Iterable[RowChange]) -> set[str]:
    skus: set[str] = set()
    for change in changes:
        if change.new.get("sku"):
            skus.add(str(change.new["sku"]))
        skus.update(str(line["sku"]) for line in change.new.get("lines") or () if line.get("sku"))
        for item in (change.new.get("raw") or {}).get("items") or ():
            if isinstance(item, dict) and item.get("offerId"):
                skus.add(str(item["offerId"]))
    return skus


def notify_stock(session: Session, *, shop: ShopContext, totals: Sequence[Any], now: datetime) -> int:
    """critical_stock and stock_runout for the products whose total changed in one stock merge."""
    if shop.silent or not totals:
        return 0
    thresholds = member_thresholds(session, shop_id=shop.id)
    crossing = [t.sku for t in totals if rules.crosses(t, thresholds)]
    falling = {t.sku: t.new_total for t in totals if t.old_total is None or t.new_total < t.old_total}
    sold = sold_in_last_days(session, shop_id=shop.id, skus=list(falling), now=now)
    runout = {sku: total for sku, total in falling.items() if rules.runs_out(total, sold.get(sku, 0))}
    if not crossing and not runout:
        return 0
    catalog = catalog_of(session, shop_id=shop.id, skus=[*crossing, *runout])
    from storage.stock import warehouses_of  # the stock module owns the stocks table's queries

    per_warehouse = warehouses_of(session, shop_id=shop.id, skus=crossing) if crossing else {}
    drafts = rules.for_stock(shop, totals, thresholds=thresholds, per_warehouse=per_warehouse, at=now, catalog=catalog)
    drafts += rules.for_runout(shop, totals=runout, sold_30d=sold, now=now, catalog=catalog)
    return add(session, shop_id=shop.id, drafts=drafts)


def notify_shop_status(
    session: Session, *, shop: ShopContext, status: str, changed_at: datetime, reason: str | None = None
) -> int:
    """After a status change: shop_needs_reauth to the owners when it is needs_reauth or broken,
    once per change (named by `changed_at`, the shop's status_changed_at)."""
    drafts = rules.for_shop_status(shop, status=status, changed_at=changed_at, reason=reason)
    return add(session, shop_id=shop.id, drafts=drafts)


def notify_sync_failing(
    session: Session,
    *,
    shop: ShopContext,
    stream: str,
    failing_since: datetime | None,
    now: datetime,
    after: timedelta,
    error: str | None = None,
) -> int:
    """After a failed stream run: sync_failing to the owners once per streak of failures longer
    than `after` (`failing_since` from storage.sync_state.failing_since)."""
    drafts = rules.for_sync_failing(shop, stream=stream, failing_since=failing_since, now=now, after=after, error=error)
    return add(session, shop_id=shop.id, drafts=drafts)


def catalog_of(session: Session, *, shop_id: int, skus: Iterable[str]) -> dict[str, ProductInfo]:
    wanted = sorted(set(skus))
    if not wanted:
        return {}
    rows = session.execute(
        text(
            "SELECT sku, name, image_url FROM products WHERE shop_id = :shop "
            "AND sku IN (SELECT jsonb_array_elements_text(CAST(:skus AS jsonb)))"
        ),
        {"shop": shop_id, "skus": orjson.dumps(wanted).decode()},
    )
    return {sku: ProductInfo(name, image) for sku, name, image in rows}


def member_thresholds(session: Session, *, shop_id: int) -> set[int]:
    """Critical-stock thresholds of the shop's people who want stock alerts (defaults if unset)."""
    rows = session.execute(
        text(
            "SELECT DISTINCT coalesce(s.critical_stock_threshold, 5) FROM memberships m "
            "LEFT JOIN notification_settings s ON s.person_id = m.person_id "
            "WHERE m.shop_id = :shop AND coalesce(s.critical_stocks_enabled, true) "
            "AND coalesce(s.notifications_enabled, true)"
        ),
        {"shop": shop_id},
    )
    return {value for (value,) in rows}


def sold_in_last_days(
    session: Session, *, shop_id: int, skus: Sequence[str], now: datetime, days: int = rules.RUNOUT_DAYS
) -> dict[str, int]:
    """Units ordered per SKU in the last `days` days (cancelled orders excluded)."""
    if not skus:
        return {}
    rows = session.execute(
        text(
            "SELECT l.sku, sum(l.quantity)::int FROM order_lines l JOIN orders o ON o.id = l.order_id "
            "WHERE l.shop_id = :shop AND l.sku = ANY(:skus) AND o.bought_at >= :since AND NOT o.is_cancelled "
            "AND o.merged_into IS NULL "
            "GROUP BY l.sku"
        ),
        {"shop": shop_id, "skus": list(skus), "since": now - timedelta(days=days)},
    )
    return {sku: qty for sku, qty in rows}


# -- delivery -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryItem:
    id: int  # the highest notification id in it: stable across redeliveries
    kind: str
    shop_id: int
    shop_name: str | None
    text: str
    image_url: str | None
    created_at: datetime
    notification_ids: list[int]

    @property
    def ids(self) -> list[int]:
        """Alias of `notification_ids` (the API's DeliveredItem field name)."""
        return self.notification_ids


@dataclass
class Page:
    items: list[DeliveryItem] = field(default_factory=list)
    next_cursor: int = 0
    held: int = 0  # notifications waiting for their group to close (delivered by a later poll)
    # The same row from pages_sql makes this page at any moment until then (grouping.Plan.until);
    # None: at any later moment.
    until: datetime | None = None


_SETTINGS = tuple(f for f in Preferences.__slots__ if f not in {"language", "time_zone"})

# A person's cursor for an old bot's `last_check` time: the newest notification of each of
# their shops created by then (one probe of ix_notifications_shop_created per shop).
_CURSOR_AT = (
    "SELECT coalesce(max(x.id), 0) FROM memberships m CROSS JOIN LATERAL ("
    " SELECT f.id FROM notifications f WHERE f.shop_id = m.shop_id AND f.created_at <= {at}"
    " ORDER BY f.created_at DESC LIMIT 1) x WHERE m.person_id = {person}"
)


def pages_sql(people: str, *, requested: str) -> str:
    """SQL for one row per person of `people` (a FROM item that names the person `p`): the
    person, their settings and cursor, then their shops and the page's outbox rows as two JSON
    arrays. `requested` is the SQL of the cursor asked for (NULL: the stored one).

    The arrays are decoded by one orjson call each, where a row per notification repeated the
    person's twenty columns through the driver's per-value loaders. Each shop is one primary
    key probe (a join let the planner scan every shop for a person's two memberships).
    """
    return f"""
SELECT p.id AS person_id, cur.after, p.language, p.time_zone, {", ".join(f"s.{c}" for c in _SETTINGS)},
    (SELECT json_agg(json_build_array(m.shop_id, m.role, (
                SELECT json_build_array(sh.name, sh.marketplace, sh.currency, sh.language)
                FROM shops sh WHERE sh.id = m.shop_id)))
     FROM memberships m WHERE m.person_id = p.id)::text AS shops,
    (SELECT json_agg(json_build_array(x.id, x.shop_id, x.kind, x.payload::text, x.created_at,
                x.payload->>'bought_key' IS NOT NULL AND (EXISTS (
                    SELECT 1 FROM notifications b WHERE b.dedupe_key = x.payload->>'bought_key')
                    -- A merged form's purchases: announced as `bought` under their own forms.
                    OR x.payload ? 'bought_keys' AND EXISTS (
                        SELECT 1 FROM notifications b WHERE b.dedupe_key = ANY(
                            ARRAY(SELECT jsonb_array_elements_text(x.payload->'bought_keys'))))))
            ORDER BY x.id)
     FROM (
        SELECT n.id, n.shop_id, n.kind, n.payload, n.created_at
        FROM memberships m
        -- Where this shop's part of the page starts: after the cursor, and never before the
        -- person joined (one probe of ix_notifications_shop_created, not a scan of the history;
        -- nothing since they joined: past every id).
        CROSS JOIN LATERAL (
            SELECT GREATEST(cur.after, coalesce(
                (SELECT f.id - 1 FROM notifications f WHERE f.shop_id = m.shop_id AND f.created_at >= m.created_at
                 ORDER BY f.created_at LIMIT 1),
                9223372036854775807)) AS lo
        ) b
        CROSS JOIN LATERAL (
            SELECT n.id, n.shop_id, n.kind, n.payload, n.created_at FROM notifications n
            WHERE n.shop_id = m.shop_id AND n.id > b.lo
            ORDER BY n.id LIMIT %(fetch)s
        ) n
        WHERE m.person_id = p.id
        ORDER BY n.id LIMIT %(fetch)s
     ) x)::text AS rows
FROM {people}
LEFT JOIN notification_settings s ON s.person_id = p.id
LEFT JOIN delivery_cursors dc ON dc.person_id = p.id
CROSS JOIN LATERAL (SELECT coalesce({requested}, dc.last_notification_id, 0) AS after) cur
"""


_POLL_MANY = pages_sql(
    "unnest(%(persons)s::bigint[], %(afters)s::bigint[]) AS req(person_id, after)"
    " JOIN people p ON p.id = req.person_id",
    requested="req.after",
)


def _poll_as(requested: str) -> str:
    """The bot's poll in one round trip: the API key with this digest, the person with this
    Telegram id, and their page after `requested`; the page only for a key that is not revoked
    (apikeys.verify still decides)."""
    return f"""
SELECT k.id, k.key_hash, k.revoked_at, k.last_used_at, page.*
FROM api_keys k
LEFT JOIN LATERAL ({pages_sql("people p", requested=requested)} WHERE p.telegram_id = %(telegram_id)s
) page ON k.revoked_at IS NULL
WHERE k.key_hash = %(digest)s
"""


_POLL_AS = _poll_as(requested="%(after)s::bigint")
# Old bots' `last_check`: after the cursor for that time. A statement of its own: as a branch
# of the one above, its unused subqueries cost every poll ~10% of its PostgreSQL time.
_POLL_AS_AT = _poll_as(requested=f"({_CURSOR_AT.format(at='%(at)s::timestamptz', person='p.id')})")


def poll(
    session: Session, *, person_id: int, after: int | None = None, limit: int = 50, now: datetime | None = None
) -> Page:
    """What one person's bot should send next; an unknown person gets an empty page at cursor 0."""
    return poll_many(session, requests=[(person_id, after)], limit=limit, now=now).get(person_id, Page())


def poll_many(
    session: Session,
    *,
    requests: Sequence[tuple[int, int | None]],
    limit: int = 50,
    now: datetime | None = None,
) -> dict[int, Page]:
    """Poll for many people in one query: {person_id: Page} (unknown people are left out)."""
    if not requests:
        return {}
    limit, fetch = page_bounds(limit)
    rows = session.connection().exec_driver_sql(
        _POLL_MANY,
        {"persons": [p for p, _ in requests], "afters": [a for _, a in requests], "fetch": fetch},
    )
    now = now or datetime.now(UTC)
    return {row[0]: page_of(row[1:], limit=limit, fetch=fetch, now=now) for row in rows}


@dataclass(frozen=True, slots=True)
class CallerPage:
    """What one statement found for an API poll (see poll_as)."""

    key: StoredKey
    person_id: int | None  # None: no such person, or the key is revoked (no page read then)
    page: Page


def poll_as(
    cur: psycopg.Cursor[Any],
    *,
    key_digest: str,
    telegram_id: int,
    after: int | None = None,
    at: datetime | None = None,
    limit: int = 50,
    now: datetime | None = None,
) -> CallerPage | None:
    """The API's poll in one statement: the key, the person by Telegram id, and their page
    after `after`, or after the cursor equivalent to the time `at`, or after their stored cursor.

    None when no key has this digest. Runs on a cursor of the driver (the API's hot path skips
    SQLAlchemy: its per-statement work was a third of the poll's CPU; a cursor used again keeps
    its loaders, another 20% of psycopg's). psycopg prepares the statement after a few runs on
    a connection, so it is planned once per connection.
    """
    if after is not None and at is not None:
        raise ValueError("a poll is after a cursor or after a time, not both")
    limit, fetch = page_bounds(limit)
    params = {"digest": key_digest, "telegram_id": telegram_id, "fetch": fetch}
    if at is None:
        row = cur.execute(_POLL_AS, {**params, "after": after}).fetchone()
    else:
        row = cur.execute(_POLL_AS_AT, {**params, "at": at}).fetchone()
    if row is None:
        return None
    key, person_id = StoredKey(*row[:4]), row[4]
    if person_id is None:
        return CallerPage(key=key, person_id=None, page=Page())
    page = page_of(row[5:], limit=limit, fetch=fetch, now=now or datetime.now(UTC))
    return CallerPage(key=key, person_id=person_id, page=page)


def page_bounds(limit: int) -> tuple[int, int]:
    """The page's limit (in messages) and how many outbox rows to read for it."""
    limit = max(1, min(limit, MAX_LIMIT))
    return limit, min(MAX_FETCH, limit * 5)


def page_of(row: Sequence[Any], *, limit: int, fetch: int, now: datetime) -> Page:
    """One person's page from the row pages_sql gives them (without its leading person id)."""
    after, language, time_zone, *settings, shops_json, rows_json = row
    values = dict(zip(_SETTINGS, settings, strict=True), language=language, time_zone=time_zone)
    pref = Preferences.of(values)
    shops = {
        shop_id: (role, ShopView(shop_id, *view))
        for shop_id, role, view in (orjson.loads(shops_json) if shops_json else ())
    }
    texts: dict[int, str] = {}  # each row's payload as stored: what its rendering depends on
    stored = []
    for id_, shop_id, kind, text_, created_at, bought_notified in orjson.loads(rows_json) if rows_json else ():
        texts[id_] = text_
        payload = orjson.loads(text_)
        stored.append(
            Stored(
                id=id_,
                shop_id=shop_id,
                kind=kind,
                payload=payload or {},
                created_at=datetime.fromisoformat(created_at),
                role=shops[shop_id][0],
                bought_notified=bought_notified,
            )
        )
    result = plan(stored, pref=pref, after=after, now=now, limit=limit, page_full=len(stored) >= fetch)
    tz = zone(pref.time_zone)
    items = [_item(group, texts, shops[group.shop_id][1], pref, tz) for group in result.groups]
    return Page(items=items, next_cursor=result.next_cursor, held=result.held, until=result.until)


def _item(group: Group, texts: Mapping[int, str], shop: ShopView, pref: Preferences, tz: ZoneInfo) -> DeliveryItem:
    lang = language_for(shop, pref.language)
    payloads = tuple(texts[i.id] for i in group.items)
    message = _message(group.kind, payloads, shop, lang, tz, group.basket)
    return DeliveryItem(
        id=group.id,
        kind=group.kind,
        shop_id=group.shop_id,
        shop_name=shop.name,
        text=message.text,
        image_url=message.image_url,
        created_at=max(i.created_at for i in group.items),
        notification_ids=group.ids,
    )


@lru_cache(maxsize=4096)
def _message(kind: str, payloads: tuple[str, ...], shop: ShopView, lang: str, tz: ZoneInfo, basket: bool) -> Message:
    """A message rendered once per worker for everyone who gets it in one language and zone: a
    shop's notifications go to each of its members (a third of a poll's CPU was rendering them
    again). The payloads as stored are part of the key, so the text depends on nothing else."""
    return render_many(kind, [orjson.loads(p) or {} for p in payloads], shop=shop, lang=lang, tz=tz, basket=basket)


# An ack's commit does not wait for its WAL record to reach the disk (synchronous_commit off for
# the ack's transaction only). Delivery is at-least-once to the bot: a cursor lost when
# PostgreSQL itself crashes within a fraction of a second of the ack (the WAL writer flushes
# within 3 x wal_writer_delay) only means the bot is handed those items again, and it recognises
# a redelivered item (the architecture's invariant 3). Nothing is ever half-written. Under the
# mixed load of benchmarks/api (a shared machine) an ack cost 0.3 ms of CPU and waited for the
# flush (wait events LWLock:WALWrite, IO:WALSync) 16 ms at the median, 91 ms at the 99th
# percentile, holding a database slot and a thread meanwhile (benchmarks/api/README.md).
ACK_ASYNC = "set_config('synchronous_commit', 'off', true)"


def ack(session: Session, *, person_id: int, cursor: int) -> int:
    """Move the stored cursor to `cursor` (never backwards, never past the newest notification);
    the caller's transaction then commits without waiting for the flush (ACK_ASYNC)."""
    row = session.execute(
        text(
            "WITH acked AS (INSERT INTO delivery_cursors (person_id, last_notification_id) "
            "VALUES (:person, LEAST(:cursor, (SELECT coalesce(max(id), 0) FROM notifications))) "
            "ON CONFLICT (person_id) DO UPDATE SET "
            "last_notification_id = GREATEST(delivery_cursors.last_notification_id, EXCLUDED.last_notification_id), "
            "updated_at = now() "
            f"RETURNING last_notification_id) SELECT last_notification_id, {ACK_ASYNC} FROM acked"
        ),
        {"person": person_id, "cursor": max(0, int(cursor))},
    )
    return int(row.one()[0])


class Delivery:
    """The API's `Delivery` protocol (api/services/delivery.py) on top of this module."""

    def poll_many(
        self, session: Session, *, requests: Sequence[tuple[int, int | None]], limit: int, now: datetime
    ) -> dict[int, tuple[list[DeliveryItem], int]]:
        pages = poll_many(session, requests=requests, limit=limit, now=now)
        return {person: (page.items, page.next_cursor) for person, page in pages.items()}

    def poll_as(
        self,
        cur: psycopg.Cursor[Any],
        *,
        key_digest: str,
        telegram_id: int,
        after: int | None,
        at: datetime | None,
        limit: int,
        now: datetime,
    ) -> CallerPage | None:
        return poll_as(cur, key_digest=key_digest, telegram_id=telegram_id, after=after, at=at, limit=limit, now=now)

    def ack(self, session: Session, *, person_id: int, cursor: int) -> int:
        return ack(session, person_id=person_id, cursor=cursor)


def stored_cursor(session: Session, *, person_id: int) -> int:
    value = session.execute(
        text("SELECT last_notification_id FROM delivery_cursors WHERE person_id = :p"), {"p": person_id}
    ).scalar()
    return int(value or 0)


def cursor_at(session: Session, *, at: datetime, person_id: int | None = None) -> int:
    """The cursor meaning "everything created after `at`" (old bots send a `last_check` time).

    Ids and created_at rise together (see add). With a person: one index probe per shop of
    theirs (ix_notifications_shop_created); without: the newest id overall created by then.
    """
    if person_id is not None:
        sql = _CURSOR_AT.format(at=":at", person=":person")
        return int(session.execute(text(sql), {"at": at, "person": person_id}).scalar_one())
    value = session.execute(
        text("SELECT id FROM notifications WHERE created_at <= :at ORDER BY id DESC LIMIT 1"), {"at": at}
    ).scalar()
    return int(value or 0)
