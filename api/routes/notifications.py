"""Notification polling with cursors (at-least-once to the bot), acks, and a batch form."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentKeyDep, DeliveryDep, PersonDep, SessionDep, require_person
from api.errors import ApiError
from api.routes import AUTHED, errors
from api.schemas import (
    AckIn,
    AckOut,
    BatchPollIn,
    BatchPollItem,
    BatchPollOut,
    Cursor,
    NotificationOut,
    NotificationPage,
)
from api.services import DeliveredItem
from storage.people import person_ids_of

router = APIRouter(prefix="/notifications", tags=["notifications"])


def item_out(item: DeliveredItem) -> NotificationOut:
    return NotificationOut(
        id=item.id, ids=item.ids, kind=item.kind, shop_id=item.shop_id, shop_name=item.shop_name,
        text=item.text, image_url=item.image_url, created_at=item.created_at,
    )


@router.get(
    "",
    response_model=NotificationPage,
    responses=errors(*AUTHED),
    summary="Notifications for one person after a cursor (default: after their acknowledged cursor)",
)
def poll(
    session: SessionDep,
    person: PersonDep,
    delivery: DeliveryDep,
    after: Annotated[Cursor | None, Query()] = None,
    last_check: Annotated[
        datetime | None, Query(description="for bots built for the old API: a timestamp instead of `after`")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> NotificationPage:
    if after is not None and last_check is not None:
        raise ApiError(422, "invalid_request", "send `after` or `last_check`, not both")
    if last_check is not None:
        at = last_check if last_check.tzinfo else last_check.replace(tzinfo=UTC)  # old bots sent UTC without a zone
        after = delivery.cursor_at(session, person_id=person.id, at=at)
    items, cursor = delivery.poll(session, person_id=person.id, after=after, limit=limit, now=datetime.now(UTC))
    return NotificationPage(items=[item_out(i) for i in items], next_cursor=cursor)


@router.post(
    "/ack",
    response_model=AckOut,
    responses=errors(*AUTHED),
    summary="Acknowledge delivery up to a cursor (the stored cursor never moves backwards)",
)
def ack(body: AckIn, session: SessionDep, key: CurrentKeyDep, delivery: DeliveryDep) -> AckOut:
    person = require_person(session, body.telegram_id)
    stored = delivery.ack(session, person_id=person.id, cursor=body.cursor)
    return AckOut(telegram_id=person.telegram_id, cursor=stored)


@router.post(
    "/poll",
    response_model=BatchPollOut,
    responses=errors(401, 422),
    summary="Poll many people at once, each after their acknowledged cursor",
)
def batch_poll(body: BatchPollIn, session: SessionDep, key: CurrentKeyDep, delivery: DeliveryDep) -> BatchPollOut:
    ids = list(dict.fromkeys(body.telegram_ids))  # duplicates once, order kept
    known = person_ids_of(session, telegram_ids=ids)
    pages = delivery.poll_many(
        session, requests=[(known[t], None) for t in ids if t in known], limit=body.limit, now=datetime.now(UTC)
    )
    results = []
    for telegram_id in ids:
        if telegram_id in known:
            items, cursor = pages.get(known[telegram_id], ([], 0))
            out = [item_out(i) for i in items]
            results.append(BatchPollItem(telegram_id=telegram_id, items=out, next_cursor=cursor))
    return BatchPollOut(results=results, unknown=[t for t in ids if t not in known])
