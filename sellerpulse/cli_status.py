"""`sellerpulse shops list`: every shop's freshness at a glance.

Per shop: status (and why), whether its history backup is complete, who it notifies, per
stream when its last successful sync finished and how long ago, and which streams the
marketplace limits for this token until when (a WB Base token).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from sellerpulse.cli_support import age, print_json, print_table
from storage.backoff import backoffs
from storage.history import history_status
from storage.shops import last_successes, list_shops, members_of
from storage.stream_limits import limits_of


def shop_rows(engine: Engine, *, now: datetime | None = None) -> list[dict[str, Any]]:
    with Session(engine) as session:
        shops = list_shops(session)
        ids = [s.id for s in shops]
        members = members_of(session, shop_ids=ids)
        synced = last_successes(session, shop_ids=ids)
        history = history_status(session, shop_ids=ids)
        waiting = backoffs(session, shop_ids=ids)
        limited = limits_of(session, shop_ids=ids, now=now or datetime.now(UTC))
        return [
            {
                "id": s.id,
                "name": s.name,
                "marketplace": s.marketplace,
                "status": s.status,
                "status_reason": s.status_reason,
                "history_complete": history[s.id],
                "notifies_from": s.notify_from,
                "owners": [m.telegram_id for m in members[s.id] if m.role == "owner"],
                "members": [
                    {"telegram_id": m.telegram_id, "username": m.username, "role": m.role} for m in members[s.id]
                ],
                # Its syncs keep failing: the scheduled sync-all waits until next_attempt_at.
                "backoff": asdict(waiting[s.id]) if s.id in waiting else None,
                # Streams the marketplace limits this token on (a WB Base token: statistics and
                # the feed 1 request per 2-3 hours): not read again before these times.
                "limited_until": {
                    stream.removeprefix(f"{s.marketplace}_"): at for stream, at in sorted(limited[s.id].items())
                },
                "last_success": {
                    stream.removeprefix(f"{s.marketplace}_"): at for stream, at in sorted(synced[s.id].items())
                },
            }
            for s in shops
        ]


def show_shops(engine: Engine, *, as_json: bool) -> int:
    rows = shop_rows(engine)
    if as_json:
        print_json(rows)
        return 0
    if not rows:
        print("no shops yet: `sellerpulse shops add-wb` or `sellerpulse shops connect-allegro`")
        return 0
    now = datetime.now(UTC)
    print_table(
        ["id", "name", "market", "status", "history", "owners", "last successful sync"],
        [
            [
                r["id"],
                r["name"],
                r["marketplace"],
                r["status"]
                + (f" ({r['status_reason']})" if r["status_reason"] and r["status"] != "active" else "")
                + _backoff(r["backoff"], now=now)
                + _limited(r["limited_until"]),
                "complete" if r["history_complete"] else "incomplete",
                _people(r["members"]),
                ", ".join(f"{stream} {age(at, now=now)}" for stream, at in r["last_success"].items()) or "never",
            ]
            for r in rows
        ],
    )
    return 0


def _backoff(backoff: dict[str, Any] | None, *, now: datetime) -> str:
    if backoff is None:
        return ""
    failures, at = backoff["failures"], backoff["next_attempt_at"]
    when = "next cycle" if at <= now else f"not before {at.astimezone(UTC):%H:%M} UTC"
    return f", {failures} failed sync(s) in a row: {when}"


def _limited(limited: dict[str, datetime]) -> str:
    if not limited:
        return ""
    shown = ", ".join(f"{stream} until {at.astimezone(UTC):%H:%M} UTC" for stream, at in limited.items())
    return f", limited by the marketplace for this token: {shown}"


def _people(members: list[dict[str, Any]]) -> str:
    owners = [m for m in members if m["role"] == "owner"]
    shown = ", ".join(str(m["telegram_id"]) + (f" @{m['username']}" if m["username"] else "") for m in owners)
    others = len(members) - len(owners)
    return (shown or "NOBODY") + (f" +{others} member(s)" if others else "")
