"""The sync -> outbox bridge the scenario tests run with.

tasks/notifying.py (the sync's side, not ours) is where the sync calls the notification
rules. Until it calls storage.outbox itself, the scenario tests install this bridge in its
place; once it does, they test its wiring as it is.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from sqlalchemy.orm import Session

from sellerpulse.notify.drafts import ShopContext
from storage import outbox


def shop_of(ctx: Any) -> ShopContext:
    s = ctx.shop
    return ShopContext(
        s.id, s.marketplace, s.name, s.notify_from, s.currency, s.language, backfill=ctx.kind == "backfill"
    )


def notify_changes(session: Session, *, ctx: Any, stream: str, result: Any) -> int:
    if ctx.silent or not result.changes:
        return 0
    return outbox.notify_changes(session, shop=shop_of(ctx), stream=stream, changes=result.changes, now=ctx.now())


def notify_stock(session: Session, *, ctx: Any, result: Any) -> int:
    if ctx.silent or not result.totals:
        return 0
    return outbox.notify_stock(session, shop=shop_of(ctx), totals=result.totals, now=ctx.now())


def notify_shop_status(session: Session, *, shop: Any, kind: str) -> int:
    view = outbox.shop_context(session, shop_id=shop.id)
    return outbox.notify_shop_status(
        session, shop=view, status=shop.status, changed_at=shop.status_changed_at, reason=shop.status_reason
    )


def install(monkeypatch: pytest.MonkeyPatch) -> bool:
    """Put the bridge in place where the sync still calls stubs; True when it did."""
    import tasks.notifying

    if "outbox" in inspect.getsource(tasks.notifying):
        return False
    import flows.sync
    import tasks.allegro_streams
    import tasks.tokens
    import tasks.wb_streams

    for module in (tasks.wb_streams, tasks.allegro_streams, tasks.notifying):
        monkeypatch.setattr(module, "notify_changes", notify_changes)
        monkeypatch.setattr(module, "notify_stock", notify_stock)
    for module in (tasks.notifying, tasks.tokens, flows.sync):
        monkeypatch.setattr(module, "notify_shop_status", notify_shop_status)
    return True
