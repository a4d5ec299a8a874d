"""Where the sync's writes meet the notification rules: same session, same transaction.

Silent syncs (a shop's first sync, every backfill) create nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from storage.models import Shop

if TYPE_CHECKING:
    from tasks.context import SyncContext


def notify_changes(session: Session, *, ctx: SyncContext, stream: str, result: Any) -> int:
    if ctx.silent or not result.changes:
        return 0
    return 0


def notify_stock(session: Session, *, ctx: SyncContext, result: Any) -> int:
    if ctx.silent or not result.totals:
        return 0
    return 0


def notify_shop_status(session: Session, *, shop: Shop, kind: str) -> int:
    return 0
