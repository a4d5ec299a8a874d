"""The summary artifact a sync leaves in Prefect: what each stream did, how many attempts it
took (task retries), where its cursor now stands, and how many notifications it created.

Keyed by the shop's name and id (`sync-summary-<name>-<id>`): the Prefect UI's artifact search
finds a shop by name, and two shops of one name still get their own.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from flows.common import slug, summary_markdown
from storage.models import Notification, SyncCursor, SyncRun
from tasks.context import StreamReport

CURSOR_SHOWN = 120  # characters of a cursor's JSON in the table


def summary_key(kind: str, shop_id: int, name: str) -> str:
    return f"{kind}-summary-{slug(name)}-{shop_id}"


def attempts_by_stream(engine: Engine, *, flow_run_id: str | None, shop_id: int) -> dict[str, int]:
    """Run records per stream in this flow run: a task retry leaves one record per attempt."""
    if flow_run_id is None:
        return {}
    with Session(engine) as session:
        rows = session.execute(
            select(SyncRun.stream, func.count())
            .where(SyncRun.flow_run_id == flow_run_id, SyncRun.shop_id == shop_id)
            .group_by(SyncRun.stream)
        )
        return dict(rows.tuples().all())


def cursors(engine: Engine, *, shop_id: int) -> list[tuple[str, dict[str, Any], datetime]]:
    with Session(engine) as session:
        rows = session.execute(
            select(SyncCursor.stream, SyncCursor.value, SyncCursor.updated_at)
            .where(SyncCursor.shop_id == shop_id)
            .order_by(SyncCursor.stream)
        )
        return [(stream, value, updated) for stream, value, updated in rows]


def notifications_since(engine: Engine, *, shop_id: int, since: datetime) -> int:
    with Session(engine) as session:
        query = select(func.count()).where(Notification.shop_id == shop_id, Notification.created_at >= since)
        return session.scalar(query) or 0


def sync_summary(
    engine: Engine, *, shop_id: int, title: str, reports: list[StreamReport], flow_run_id: str | None, since: datetime
) -> str:
    attempts = attempts_by_stream(engine, flow_run_id=flow_run_id, shop_id=shop_id)
    lines = [summary_markdown(title, reports), ""]
    retried = [f"{stream} {n - 1}" for stream, n in sorted(attempts.items()) if n > 1]
    lines.append(f"**Retries**: {', '.join(retried) if retried else 'none'}")
    lines.append(f"**Notifications created**: {notifications_since(engine, shop_id=shop_id, since=since)}")
    lines += ["", "| cursor | reached | updated |", "|---|---|---|"]
    for stream, value, updated in cursors(engine, shop_id=shop_id):
        shown = json.dumps(value, separators=(",", ":"), default=str)
        if len(shown) > CURSOR_SHOWN:
            shown = shown[: CURSOR_SHOWN - 1] + "…"
        lines.append(f"| {stream} | `{shown}` | {updated.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC |")
    return "\n".join(lines)
