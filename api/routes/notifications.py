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
    MAX_ID,
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
    return NotificationOut.model_validate(_item_json(item))


@router.get(
    "",
    response_model=NotificationPage,
    responses=errors(*AUTHED),
    summary="Notifications for one person after a cursor (default: after their acknowledged cursor)",
    description="`after` and `last_check` are alternatives: a request with both is refused (422).",
)
async def poll(
    request: Request,
    telegram_id: TelegramIdQuery,
    secret: Annotated[str | None, Security(api_key_scheme)],
    after: Annotated[
        Cursor | None, Query(description="a notification id; not together with `last_check` (422)")
    ] = None,
    last_check: Annotated[
        datetime | None,
        Query(description="for bots built for the old API: a timestamp instead of `after` (both: 422)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    # Plain polls (most of the traffic) are answered by api.fastpath before they get here; this
    # route validates and answers the rest with the same worker.
    if after is not None and last_check is not None:
        raise ApiError(
            422,
            "invalid_request",
            "send `after` or `last_check`, not both",
            [{"loc": ["query", "last_check"], "msg": "not allowed together with `after`", "type": "exclusive"}],
        )
    state = request.app.state
    async with state.db_slots():
        body = await run_in_threadpool(_poll, state, secret, telegram_id, after, last_check, limit)
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
    body = {"items": [_item_json(i) for i in page.items], "next_cursor": page.next_cursor}
    return orjson.dumps(body, option=orjson.OPT_UTC_Z)  # as pydantic writes UTC: ...Z


def _item_json(item: DeliveredItem) -> dict[str, Any]:
    """One item as both polls answer it (the batch through NotificationOut): times in UTC."""
    return {
        "id": item.id,
        "ids": list(item.ids),
        "kind": item.kind,
        "shop_id": item.shop_id,
        "shop_name": item.shop_name,
        "text": item.text,
        "image_url": item.image_url,
        "created_at": item.created_at.astimezone(UTC),
    }


@router.post(
    "/ack",
    response_model=AckOut,
    responses=errors(*AUTHED),
    summary="Acknowledge delivery up to a cursor (the stored cursor never moves backwards)",
    description="The person is named by `telegram_id` in the query, as everywhere else (required). "
    "Bots built for the first version send it in the body instead; that is still accepted (with both, "
    "they must agree).",
)
def ack(
    body: AckIn,
    session: SessionDep,
    key: CurrentKeyDep,
    delivery: DeliveryDep,
    telegram_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="the person the request acts for (Telegram user id)")
    ] = None,
) -> AckOut:
    if telegram_id is None and body.telegram_id is None:
        raise ApiError(422, "invalid_request", "send `telegram_id` in the query", [_missing_telegram_id()])
    if telegram_id is not None and body.telegram_id not in (None, telegram_id):
        raise ApiError(422, "invalid_request", "`telegram_id` differs between the query and the body")
    person = require_person(session, telegram_id or body.telegram_id)  # type: ignore[arg-type]
    stored = delivery.ack(session, person_id=person.id, cursor=body.cursor)
    return AckOut(telegram_id=person.telegram_id, cursor=stored)


def _missing_telegram_id() -> dict[str, Any]:
    return {"loc": ["query", "telegram_id"], "msg": "Field required", "type": "missing"}


@router.post(
    "/poll",
    response_model=BatchPollOut,
    responses=errors(401, 413, 422, 429, 503),
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
