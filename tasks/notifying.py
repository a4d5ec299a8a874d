"""Where the sync's writes meet the notification rules: same session, same transaction.

Thin glue around storage.outbox: it builds the rules' view of the shop from the sync context.
A shop's first sync creates nothing but the owner alerts. Every other run, a backfill as much as
a sync, hands its changes to the rules, which judge each by when it happened: history (before
the notify-from point) stays silent, a live change notifies whichever run writes it first.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from sellerpulse.notify.drafts import ShopContext
from storage import outbox
from storage.models import Shop
from storage.sync_state import failing_since

if TYPE_CHECKING:
    from tasks.context import SyncContext


def shop_view(ctx: SyncContext) -> ShopContext:
    s = ctx.shop
    return ShopContext(
        s.id,
        s.marketplace,
        s.name,
        s.notify_from,
        s.currency,
        s.language,
        backfill=ctx.kind == "backfill",
        history_complete=s.history_complete,
    )


def notify_changes(session: Session, *, ctx: SyncContext, stream: str, result: Any) -> int:
    if ctx.silent or not result.changes:
        return 0
    return outbox.notify_changes(session, shop=shop_view(ctx), stream=stream, changes=result.changes, now=ctx.now())


def notify_stock(session: Session, *, ctx: SyncContext, result: Any) -> int:
    if ctx.silent or not result.totals:
        return 0
    return outbox.notify_stock(session, shop=shop_view(ctx), totals=result.totals, now=ctx.now())


def notify_shop_status(session: Session, *, shop: Shop, kind: str) -> int:
    """The shop lost its connection (needs_reauth, broken): its owners hear it, even mid first sync."""
    view = outbox.shop_context(session, shop_id=shop.id)
    return outbox.notify_shop_status(
        session, shop=view, status=shop.status, changed_at=shop.status_changed_at, reason=shop.status_reason
    )


def notify_if_failing(session: Session, *, ctx: SyncContext, stream: str, error: str | None) -> int:
    """sync_failing once a stream has failed for longer than the setting (our clock, not the marketplace's)."""
    since = failing_since(session, shop_id=ctx.shop.id, stream=stream)
    after = timedelta(seconds=ctx.settings.sync_failing_after_seconds)
    return outbox.notify_sync_failing(
        session,
        shop=outbox.shop_context(session, shop_id=ctx.shop.id),
        stream=stream,
        failing_since=since,
        now=datetime.now(UTC),
        after=after,
        error=error,
    )
