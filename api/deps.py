"""Dependencies, as `Annotated` aliases: a session that owns the request's transaction, the
calling API key, the person a bot request acts for, and a shop that person belongs to.

The pluggable parts (WB token check, Allegro login, sync launcher, notification delivery)
live on `app.state`, set by `create_app`; tests pass in-process sandbox-backed ones. Their
lookups are `async def`: FastAPI runs a plain `def` dependency in a thread, a hop for nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request, Security
from fastapi.security import APIKeyHeader
from sqlalchemy.orm import Session

from api.admission import request_session
from api.errors import ApiError, not_found
from api.schemas import MAX_ID
from api.services import AllegroLoginStarter, Delivery, SyncLauncher, WbTokenVerifier
from storage import apikeys, people
from storage.models import ApiKey, Person, Role
from storage.people import MemberShop

API_KEY_HEADER = "X-API-Key"
api_key_scheme = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    scheme_name="ApiKey",
    description="created with `sellerpulse api-keys create --name NAME`",
)


# One transaction per request, taken in a slot (api.admission). scope="function": commit
# before the response goes out, so a failed commit is never a 200.
SessionDep = Annotated[Session, Depends(request_session, scope="function")]


def no_key() -> ApiError:
    return ApiError(401, "unauthorized", f"send an API key in the {API_KEY_HEADER} header")


def bad_key() -> ApiError:
    return ApiError(401, "unauthorized", "unknown or revoked API key")


def current_key(session: SessionDep, secret: Annotated[str | None, Security(api_key_scheme)]) -> ApiKey:
    if not secret:
        raise no_key()
    key = apikeys.authenticate(session, secret=secret)
    if key is None:
        raise bad_key()
    return key


CurrentKeyDep = Annotated[ApiKey, Depends(current_key)]


def require_person(session: Session, telegram_id: int) -> Person:
    person = people.get_person(session, telegram_id=telegram_id)
    if person is None:
        # Reads never register anyone: the bot must PUT /people/{telegram_id} first.
        raise not_found("person")
    return person


TelegramIdQuery = Annotated[
    int, Query(ge=1, le=MAX_ID, description="the person the request acts for (Telegram user id)", examples=[1])
]


def current_person(session: SessionDep, key: CurrentKeyDep, telegram_id: TelegramIdQuery) -> Person:
    return require_person(session, telegram_id)


PersonDep = Annotated[Person, Depends(current_person)]

ShopId = Annotated[int, Path(ge=1, le=MAX_ID, description="a shop id", examples=[1])]


def member_shop(session: SessionDep, person: PersonDep, shop_id: ShopId) -> MemberShop:
    found = people.member_shop(session, person_id=person.id, shop_id=shop_id)
    if found is None:
        raise not_found("shop")  # also for shops that exist but are someone else's
    return found


MemberShopDep = Annotated[MemberShop, Depends(member_shop)]


def owner_shop(found: MemberShopDep) -> MemberShop:
    if found.role != Role.owner.value:
        raise ApiError(403, "forbidden", "only the shop's owners may do this")
    return found


OwnerShopDep = Annotated[MemberShop, Depends(owner_shop)]


async def wb_verifier(request: Request) -> WbTokenVerifier:
    return request.app.state.wb_verifier


async def allegro_login(request: Request) -> AllegroLoginStarter:
    return request.app.state.allegro_login


async def sync_launcher(request: Request) -> SyncLauncher:
    return request.app.state.sync_launcher


async def delivery(request: Request) -> Delivery:
    return request.app.state.delivery


WbVerifierDep = Annotated[WbTokenVerifier, Depends(wb_verifier)]
AllegroLoginDep = Annotated[AllegroLoginStarter, Depends(allegro_login)]
SyncLauncherDep = Annotated[SyncLauncher, Depends(sync_launcher)]
DeliveryDep = Annotated[Delivery, Depends(delivery)]
