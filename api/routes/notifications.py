"""Notification polling with cursors (at-least-once to the bot), acks, and a batch form."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
import psycopg
from fastapi import APIRouter, Query, Request, Response, Security
from starlette.concurrency import run_in_threadpool

from api.deps import (
    CurrentKeyDep,
    DeliveryDep,
    SessionDep,
    TelegramIdQuery,
    api_key_scheme,
    bad_key,
    no_key,
    require_person,
)
from api.errors import ApiError, database_unavailable, log, not_found
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
from api.services import DeliveredItem, Delivery
from storage import apikeys
from storage.db import driver_cursor
from storage.people import person_ids_of

router = APIRouter(prefix="/notifications", tags=["notifications"])


def item_out(item: DeliveredItem) -> NotificationOut:
    return NotificationOut(
        id=item.id,
        ids=item.ids,
        kind=item.kind,
        shop_id=item.shop_id,
        shop_name=item.shop_name,
        text=item.text,
        image_url=item.image_url,
        created_at=item.created_at,
    )


@router.get(
    "",
    response_model=NotificationPage,
    responses=errors(*AUTHED, 503),
    summary="Notifications for one person after a cursor (default: after their acknowledged cursor)",
)
async def poll(
    request: Request,
    telegram_id: TelegramIdQuery,
    secret: Annotated[str | None, Security(api_key_scheme)],
    after: Annotated[Cursor | None, Query()] = None,
    last_check: Annotated[
        datetime | None, Query(description="for bots built for the old API: a timestamp instead of `after`")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    # Plain polls (most of the traffic) are answered by api.fastpath before they get here; this
    # route validates and answers the rest with the same worker.
    if after is not None and last_check is not None:
        raise ApiError(422, "invalid_request", "send `after` or `last_check`, not both")
    body = await run_in_threadpool(_poll, request.app.state, secret, telegram_id, after, last_check, limit)
    return Response(body, media_type="application/json")


def _poll(
    state: Any,
    secret: str | None,
    telegram_id: int,
    after: int | None,
    last_check: datetime | None,
    limit: int,
    cur: psycopg.Cursor[Any] | None = None,
) -> bytes:
    """The poll behind the route and api.fastpath: the key, the person and their page in one
    statement (Delivery.poll_as), the page encoded straight to JSON (NotificationPage's shape).

    `cur`: the fast path's own (autocommit); without it, one on a read session's connection.
    """
    if not secret:
        raise no_key()
    digest = apikeys.digest_of(secret)
    if digest is None:
        raise bad_key()
    at = None
    if last_check is not None:
        at = last_check if last_check.tzinfo else last_check.replace(tzinfo=UTC)  # old bots sent naive UTC
    try:
        if cur is not None:
            return _poll_on(cur, state.delivery, digest, telegram_id, after, at, limit)
        with (
            state.read_sessionmaker() as session,
            session.begin(),
            driver_cursor(session) as cur,
        ):
            return _poll_on(cur, state.delivery, digest, telegram_id, after, at, limit)
    except psycopg.OperationalError as exc:  # raised by the driver itself: SQLAlchemy never saw it
        log.warning("database unavailable on the poll: %s", type(exc).__name__)
        raise database_unavailable() from exc


def _poll_on(
    cur: psycopg.Cursor[Any],
    delivery: Delivery,
    digest: str,
    telegram_id: int,
    after: int | None,
    at: datetime | None,
    limit: int,
) -> bytes:
    now = datetime.now(UTC)
    found = delivery.poll_as(cur, key_digest=digest, telegram_id=telegram_id, after=after, at=at, limit=limit, now=now)
    if found is None or not apikeys.verify(cur, found.key, digest, now):
        raise bad_key()
    if found.person_id is None:
        raise not_found("person")
    page = found.page
    return orjson.dumps({"items": [_item_json(i) for i in page.items], "next_cursor": page.next_cursor})


def _item_json(item: DeliveredItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "ids": list(item.ids),
        "kind": item.kind,
        "shop_id": item.shop_id,
        "shop_name": item.shop_name,
        "text": item.text,
        "image_url": item.image_url,
        "created_at": item.created_at,
    }


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
