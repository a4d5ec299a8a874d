"""People: the bot registers (or updates) a Telegram user before acting for them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from api.deps import CurrentKeyDep, SessionDep, require_person
from api.routes import errors
from api.schemas import MAX_ID, PersonIn, PersonOut
from storage.people import register_person

router = APIRouter(prefix="/people", tags=["people"])

TelegramPath = Annotated[int, Path(ge=1, le=MAX_ID, description="the person's Telegram user id", examples=[1])]


@router.put(
    "/{telegram_id:int}",
    response_model=PersonOut,
    responses={201: {"model": PersonOut, "description": "registered"}, **errors(401, 422, 429, 503)},
    summary="Register or update a person",
)
def put_person(
    telegram_id: TelegramPath, body: PersonIn, session: SessionDep, key: CurrentKeyDep, response: Response
) -> PersonOut:
    person, created = register_person(session, telegram_id=telegram_id, profile=body.model_dump(exclude_unset=True))
    if created:
        response.status_code = 201
    return PersonOut.model_validate(person)


@router.get("/{telegram_id:int}", response_model=PersonOut, responses=errors(401, 404, 422, 429, 503))
def get_person(telegram_id: TelegramPath, session: SessionDep, key: CurrentKeyDep) -> PersonOut:
    return PersonOut.model_validate(require_person(session, telegram_id))
