"""Which notifications become one message, and how far a person's delivery cursor may move.

Units and groups
- A unit is one notification, except a WB basket: the new_order rows of one `gNumber` in
  the page (or, seen first by the order feed, of one `basket_key`) are one unit (rendered as
  one message, whatever the grouping setting).
- Grouping off: every unit is a message. Grouping on: units of one (shop, kind) whose first
  notification is at most `group_timeout` seconds after the group's first one join it, up to
  `max_group_size` notifications (a basket is never split, so a big basket may exceed it).
- A group is *held* while it may still grow: not full and its window not yet over (`now`
  before first.created_at + timeout). A burst of 500 new orders therefore becomes
  ceil(500 / max_group_size) messages once each window closes, and every row is in one.

Cursor semantics (the bot polls with `after=<cursor>` and acks the `next_cursor` it got)
- Everything with id <= next_cursor is either delivered in this page or not meant for this
  person (filtered by their settings). Nothing held, and nothing of a held group, is ever
  behind the cursor: the cursor stops just before the first held group, and any group that
  straddles that point is held too.
- An item's id is its group's highest notification id; it also lists all of them. Polling
  again from the same cursor with the same settings and limit gives the same items with the
  same ids, so a redelivered item is recognisable and a person is told once.
- Outbox ids become visible in id order (storage.outbox.add takes a lock to commit in id
  order), so a later poll never finds a new row below a cursor already handed out.

Time: a plan depends on `now` only through the group windows (is a group's window over?), so
the same rows and settings give the same plan until the next window to close (`Plan.until`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sellerpulse.notify.delivery import Preferences, Stored, wants


@dataclass
class Group:
    kind: str
    shop_id: int
    items: list[Stored] = field(default_factory=list)
    basket: bool = False  # one WB basket and nothing else

    @property
    def id(self) -> int:
        return max(i.id for i in self.items)

    @property
    def first_id(self) -> int:
        return min(i.id for i in self.items)

    @property
    def ids(self) -> list[int]:
        return sorted(i.id for i in self.items)


@dataclass
class Plan:
    groups: list[Group]  # to deliver now, in order
    next_cursor: int
    held: int = 0  # notifications waiting for their group to close
    # The same rows, settings and limit give this plan at any moment from `now` until then (the
    # next group window to close: a held group may be ready then); None: at any later moment.
    until: datetime | None = None


def plan(
    rows: Sequence[Stored],
    *,
    pref: Preferences,
    after: int,
    now: datetime,
    limit: int,
    page_full: bool,
) -> Plan:
    """Deliver-now groups and the cursor for one page of outbox rows (in id order)."""
    groups = _groups(_units([r for r in rows if wants(pref, r)]), pref)
    result = _cut(rows, groups, pref=pref, after=after, now=now, limit=limit, page_full=page_full)
    if not result.groups and page_full and result.held:
        # The page ends inside groups that might grow past it; rather than wait for a bigger
        # page, close them as they stand (still consistent: the cursor stops before the rest).
        result = _cut(rows, groups, pref=pref, after=after, now=now, limit=limit, page_full=False)
    result.until = _next_window_end(groups, pref, now)
    return result


def _next_window_end(groups: list[Group], pref: Preferences, now: datetime) -> datetime | None:
    """The first moment after `now` at which a group's window closes (`_may_grow` reads `now`
    only against window ends): what the plan is valid until."""
    if not pref.grouping_enabled:
        return None
    window = timedelta(seconds=pref.group_timeout)
    return min((end for g in groups if (end := g.items[0].created_at + window) > now), default=None)


def _units(rows: list[Stored]) -> list[list[Stored]]:
    """One list per unit, in order of each unit's first id."""
    units: list[list[Stored]] = []
    baskets: dict[tuple[int, str], list[Stored]] = {}
    for row in rows:
        # The order feed knows no gNumber: its new orders carry `basket_key` (see feed_rules).
        payload = row.payload
        basket = (payload.get("basket_id") or payload.get("basket_key")) if row.kind == "new_order" else None
        if not basket:
            units.append([row])
            continue
        unit = baskets.get((row.shop_id, str(basket)))
        if unit is None:
            unit = baskets[(row.shop_id, str(basket))] = []
            units.append(unit)
        unit.append(row)
    return units


def _groups(units: list[list[Stored]], pref: Preferences) -> list[Group]:
    groups: list[Group] = []
    open_by_key: dict[tuple[int, str], Group] = {}
    window = timedelta(seconds=pref.group_timeout)
    for unit in units:
        first = unit[0]
        key = (first.shop_id, first.kind)
        group = open_by_key.get(key) if pref.grouping_enabled else None
        if (
            group is None
            or len(group.items) + len(unit) > pref.max_group_size
            or first.created_at > group.items[0].created_at + window
        ):
            group = Group(first.kind, first.shop_id, basket=len(unit) > 1)
            groups.append(group)
            open_by_key[key] = group
        else:
            group.basket = False
        group.items.extend(unit)
    return groups


def _may_grow(group: Group, pref: Preferences, now: datetime, last: Stored | None) -> bool:
    """Could a notification not yet seen still join this group?"""
    if last is not None and group.basket and any(i.id == last.id for i in group.items):
        return True  # the page ends inside this basket
    if not pref.grouping_enabled or len(group.items) >= pref.max_group_size:
        return False
    window_end = group.items[0].created_at + timedelta(seconds=pref.group_timeout)
    return now < window_end or (last is not None and last.created_at <= window_end)


def _cut(
    rows: Sequence[Stored],
    groups: list[Group],
    *,
    pref: Preferences,
    after: int,
    now: datetime,
    limit: int,
    page_full: bool,
) -> Plan:
    last = rows[-1] if page_full and rows else None
    held = [g for g in groups if _may_grow(g, pref, now, last)]
    ready = sorted((g for g in groups if not _may_grow(g, pref, now, last)), key=lambda g: g.first_id)
    barrier = min((g.first_id for g in held), default=None)
    # A ready group reaching past a held one would be half behind the cursor: hold it too.
    changed = True
    while changed and barrier is not None:
        changed = False
        for g in [g for g in ready if g.id >= barrier]:
            ready.remove(g)
            held.append(g)
            barrier = min(barrier, g.first_id)
            changed = True
    # The limit is soft: groups interleaved with the ones taken are taken too, so the cursor
    # can stop after them (holding them instead could block the page for good).
    taken: list[Group] = []
    top = after
    for g in ready:
        if len(taken) >= limit and g.first_id > top:
            held.extend(ready[len(taken) :])
            barrier = g.first_id if barrier is None else min(barrier, g.first_id)
            break
        taken.append(g)
        top = max(top, g.id)
    ready = taken
    below = [r.id for r in rows if barrier is None or r.id < barrier]
    cursor = max([after, *below])
    return Plan(groups=ready, next_cursor=cursor, held=sum(len(g.items) for g in held))
