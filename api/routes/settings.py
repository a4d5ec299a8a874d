"""A person's notification settings (ranges as the schema's CHECK constraints)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import PersonDep, SessionDep
from api.routes import AUTHED, errors
from api.schemas import SettingsIn, SettingsOut
from storage import settings_repo

router = APIRouter(prefix="/settings", tags=["settings"])


@router.get("", response_model=SettingsOut, responses=errors(*AUTHED))
def get_settings(session: SessionDep, person: PersonDep) -> SettingsOut:
    return SettingsOut.model_validate(settings_repo.get_settings(session, person_id=person.id))


@router.put("", response_model=SettingsOut, responses=errors(*AUTHED), summary="Change any subset of the settings")
def put_settings(body: SettingsIn, session: SessionDep, person: PersonDep) -> SettingsOut:
    values = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    row = settings_repo.update_settings(session, person_id=person.id, values=values)
    return SettingsOut.model_validate(row)
