"""What the bot's delivery loop needs beside the poll: whom to poll, what it already sent
(exactly once across restarts), people who blocked it, and paused shops."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from api.deps import CurrentKeyDep, SessionDep, require_person
from api.routes import errors
from api.schemas import MAX_ID
from api.schemas_delivery import (
    DeliveryRecordOut,
    DeliveryStateOut,
    InactiveIn,
    LookupIn,
    LookupOut,
    PausedShopOut,
    PausedShopsOut,
    RecipientsOut,
    RecordIn,
    RecordOut,
)
from storage import bot_delivery
from storage.models import DeliveryStatus, Person

router = APIRouter(prefix="/delivery", tags=["delivery"])

TelegramPath = Annotated[int, Path(ge=1, le=MAX_ID, description="the person's Telegram user id")]


def state_out(person: Person, *, resumed: bool = False) -> DeliveryStateOut:
    return DeliveryStateOut(
        telegram_id=person.telegram_id,
        active=person.inactive_since is None,
        inactive_since=person.inactive_since,
        inactive_reason=person.inactive_reason,
        resumed=resumed,
    )


@router.get("/recipients", response_model=RecipientsOut, responses=errors(401, 422))
def recipients(
    session: SessionDep,
    key: CurrentKeyDep,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> RecipientsOut:
    """Active people who belong to at least one shop, a page at a time (poll them in batches)."""
    rows = bot_delivery.recipients(session, after=after, limit=limit)
    return RecipientsOut(items=[tid for _, tid in rows], next_after=rows[-1][0] if rows else after)


@router.get("/people/{telegram_id}", response_model=DeliveryStateOut, responses=errors(401, 404, 422))
def person_state(telegram_id: TelegramPath, session: SessionDep, key: CurrentKeyDep) -> DeliveryStateOut:
    return state_out(require_person(session, telegram_id))


@router.post(
    "/people/{telegram_id}/inactive",
    response_model=DeliveryStateOut,
    responses=errors(401, 404, 422),
    summary="Stop delivering to a person (Telegram answered 403: they blocked the bot)",
)
def set_inactive(
    telegram_id: TelegramPath, session: SessionDep, key: CurrentKeyDep, body: InactiveIn | None = None
) -> DeliveryStateOut:
    person = require_person(session, telegram_id)
    bot_delivery.set_inactive(session, person=person, reason=(body or InactiveIn()).reason)
    return state_out(person)


@router.post(
    "/people/{telegram_id}/active",
    response_model=DeliveryStateOut,
    responses=errors(401, 404, 422),
    summary="Deliver to a person again (they came back); the backlog of the blocked time is skipped",
)
def set_active(telegram_id: TelegramPath, session: SessionDep, key: CurrentKeyDep) -> DeliveryStateOut:
    person = require_person(session, telegram_id)
    resumed = bot_delivery.set_active(session, person=person)
    return state_out(person, resumed=resumed)


@router.post(
    "/records/lookup",
    response_model=LookupOut,
    responses=errors(401, 404, 422),
    summary="Which notification ids already have a delivery record for this person",
)
def lookup(body: LookupIn, session: SessionDep, key: CurrentKeyDep) -> LookupOut:
    person = require_person(session, body.telegram_id)
    found = bot_delivery.recorded_ids(session, person_id=person.id, ids=body.ids)
    return LookupOut(recorded=sorted(found))


@router.post(
    "/records",
    response_model=RecordOut,
    responses=errors(401, 404, 422),
    summary="Record what happened to one item (sent, failed for good, skipped); the first record wins",
)
def add_record(body: RecordIn, session: SessionDep, key: CurrentKeyDep) -> RecordOut:
    person = require_person(session, body.telegram_id)
    written = bot_delivery.record(
        session,
        person_id=person.id,
        item_id=body.item_id,
        ids=body.ids,
        status=DeliveryStatus(body.status),
        message_id=body.telegram_message_id,
        detail=body.detail,
        attempts=body.attempts,
    )
    return RecordOut(recorded=written)


@router.get("/records", response_model=list[DeliveryRecordOut], responses=errors(401, 404, 422))
def records(
    session: SessionDep,
    key: CurrentKeyDep,
    telegram_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    status: Literal["sent", "failed", "skipped"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeliveryRecordOut]:
    """The newest records first (operators: what failed, and why)."""
    person_id = require_person(session, telegram_id).id if telegram_id is not None else None
    found = bot_delivery.list_records(
        session, person_id=person_id, status=DeliveryStatus(status) if status else None, limit=limit
    )
    return [
        DeliveryRecordOut(
            telegram_id=tid,
            notification_id=r.notification_id,
            item_id=r.item_id,
            status=r.status,  # type: ignore[arg-type]
            telegram_message_id=r.telegram_message_id,
            detail=r.detail,
            attempts=r.attempts,
            recorded_at=r.recorded_at,
        )
        for r, tid in found
    ]


@router.get("/paused-shops", response_model=PausedShopsOut, responses=errors(401))
def paused_shops(session: SessionDep, key: CurrentKeyDep) -> PausedShopsOut:
    """Shops whose notifications are paused: what they create from `paused_at` on is not sent."""
    found = bot_delivery.paused_shops(session)
    return PausedShopsOut(shops=[PausedShopOut(shop_id=s, paused_at=at) for s, at in found])
