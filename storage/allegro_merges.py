"""Allegro order merges: which stored checkout forms live on under a newer one.

A buyer who pays several purchases together gets them merged into a NEW checkout-form id; the
old ids answer 404 from then on and nothing names them in the new form: the shared `lineItem.id`s
are the only link (allegro-api issues 762, 1111, 2829, 8006, 10406). So after a batch of forms
is written, every stored form whose line ids are a strict subset of another stored form's is
linked to it (`orders.merged_into`, the biggest such form: a form merged twice names the last).
The old row keeps its data: it is the backup of what the seller saw.

Runs in the sync's transaction, after the upsert and before the notification rules, which then
see each form's links (`annotate`). Idempotent: a link already made is not made again, so
overlapping runs agree (the UPDATE's row locks order them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from storage.changes import RowChange
from storage.db import driver_cursor

# Marketplace line ids only (see migration 0015): the partial index's predicate, repeated in the
# statements so the planner uses it.
LINE_ID = "length({}.line_key) >= 16"

# Every step is an index probe per row of the batch, fenced (OFFSET 0) so that the planner
# cannot turn it into a scan of the shop's lines: during a backfill the tables grow faster than
# their statistics, and a plan made for a small table once read every line for every form of a
# batch (a 60,000-form history took minutes per batch instead of milliseconds).
_LINK_SQL = f"""
WITH batch AS (
    SELECT o.id AS order_id, b.line_key
    FROM unnest(%(ids)s::text[]) AS k(external_id)
    JOIN LATERAL (
        SELECT o.id FROM orders o WHERE o.shop_id = %(shop)s AND o.external_id = k.external_id OFFSET 0
    ) o ON true
    JOIN LATERAL (
        SELECT b.line_key FROM order_lines b WHERE b.order_id = o.id AND {LINE_ID.format("b")} OFFSET 0
    ) b ON true
), shared AS (
    -- Other stored forms with one of the batch's line ids: nothing at all in the usual case.
    SELECT DISTINCT b.order_id AS mine, l.order_id AS other
    FROM batch b
    JOIN LATERAL (
        SELECT l.order_id FROM order_lines l
        WHERE l.shop_id = %(shop)s AND l.line_key = b.line_key AND {LINE_ID.format("l")} AND l.order_id <> b.order_id
        OFFSET 0
    ) l ON true
), candidates AS (
    SELECT mine AS a, other AS b FROM shared UNION SELECT other, mine FROM shared
), sets AS (
    SELECT c.id, s.keys, s.n
    FROM (SELECT DISTINCT a AS id FROM candidates) c
    JOIN LATERAL (
        SELECT array_agg(l.line_key) AS keys, count(*) AS n FROM order_lines l
        WHERE l.order_id = c.id AND {LINE_ID.format("l")}
    ) s ON true
), pairs AS (
    SELECT DISTINCT ON (c.a) c.a AS id, c.b AS into_id
    FROM candidates c JOIN sets sa ON sa.id = c.a JOIN sets sb ON sb.id = c.b
    WHERE sa.n < sb.n AND sa.keys <@ sb.keys
    ORDER BY c.a, sb.n DESC, sb.id DESC
)
UPDATE orders o SET merged_into = n.external_id, updated_at = now()
FROM pairs p JOIN orders n ON n.id = p.into_id
WHERE o.id = p.id AND o.merged_into IS DISTINCT FROM n.external_id
RETURNING o.external_id, n.external_id
"""

# Two index-driven halves (the forms merged into these; these forms, if merged; a row in both
# once) rather than one OR, which PostgreSQL answers by reading every order of the shop.
_LINKS_SQL = """
SELECT external_id, merged_into, status, marketplace_status FROM orders
WHERE shop_id = %(shop)s AND merged_into = ANY(%(ids)s)
UNION
SELECT external_id, merged_into, status, marketplace_status FROM orders
WHERE shop_id = %(shop)s AND external_id = ANY(%(ids)s) AND merged_into IS NOT NULL
"""

PAID_STATUSES = frozenset({"paid", "processing", "sent", "delivered", "returned"})


@dataclass
class Links:
    into: dict[str, str] = field(default_factory=dict)  # old id -> the form it lives on under
    parts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # new id -> its old forms


def link(session: Session, *, shop_id: int, external_ids: Sequence[str]) -> dict[str, str]:
    """Link the stored forms sharing line ids with these (just written) ones; returns the links
    made now, {old id: new id}."""
    if not external_ids:
        return {}
    rows = driver_cursor(session).execute(_LINK_SQL, {"shop": shop_id, "ids": list(external_ids)})
    return dict(rows.fetchall())


def links_of(session: Session, *, shop_id: int, external_ids: Sequence[str]) -> Links:
    """For these forms: the form each one was merged into, and the forms merged into each."""
    out = Links()
    if not external_ids:
        return out
    rows = driver_cursor(session).execute(_LINKS_SQL, {"shop": shop_id, "ids": list(external_ids)})
    for old, new, status, marketplace_status in rows:
        out.into[old] = new
        paid = status in PAID_STATUSES or marketplace_status == "READY_FOR_PROCESSING"
        out.parts.setdefault(new, []).append({"id": old, "paid": paid})
    for parts in out.parts.values():
        parts.sort(key=lambda p: p["id"])
    return out


def annotate(changes: Sequence[RowChange], links: Links) -> list[RowChange]:
    """The changes with `merged_into` / `merged_from` in their new side, for the rules."""
    out = []
    for change in changes:
        extra: dict[str, Any] = {}
        if change.key in links.into:
            extra["merged_into"] = links.into[change.key]
        if change.key in links.parts:
            extra["merged_from"] = links.parts[change.key]
        out.append(RowChange(change.key, change.old, {**change.new, **extra}) if extra else change)
    return out
