"""Owners pause a shop's notifications and invite people by a one-time code; people accept it."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentKeyDep, OwnerShopDep, PersonDep, SessionDep, require_person
from api.errors import ApiError
from api.routes import AUTHED, errors
from api.routes.shops import shop_out
from api.schemas import MemberOut, ShopOut
from api.schemas_delivery import AcceptInviteIn, InviteOut
from storage import bot_delivery

router = APIRouter(tags=["shops"])


@router.post(
    "/shops/{shop_id}/pause",
    response_model=ShopOut,
    responses=errors(*AUTHED, 403),
    summary="Pause the shop's notifications for everyone (the backup goes on)",
)
def pause(session: SessionDep, found: OwnerShopDep) -> ShopOut:
    bot_delivery.set_paused(session, shop=found.shop, paused=True)
    return shop_out(found)


@router.post("/shops/{shop_id}/resume", response_model=ShopOut, responses=errors(*AUTHED, 403))
def resume(session: SessionDep, found: OwnerShopDep) -> ShopOut:
    bot_delivery.set_paused(session, shop=found.shop, paused=False)
    return shop_out(found)


@router.post(
    "/shops/{shop_id}/invites",
    status_code=201,
    response_model=InviteOut,
    responses=errors(*AUTHED, 403),
    summary="A one-time invite code to the shop (7 days), shown once",
)
def create_invite(session: SessionDep, person: PersonDep, found: OwnerShopDep) -> InviteOut:
    new = bot_delivery.create_invite(session, shop_id=found.shop.id, created_by=person.id)
    return InviteOut(code=new.code, shop_id=found.shop.id, expires_at=new.expires_at)


@router.post(
    "/invites/accept",
    status_code=201,
    response_model=MemberOut,
    responses=errors(401, 404, 422),
    summary="Join a shop with an invite code (as a member)",
)
def accept_invite(body: AcceptInviteIn, session: SessionDep, key: CurrentKeyDep) -> MemberOut:
    person = require_person(session, body.telegram_id)
    try:
        shop_id, role = bot_delivery.accept_invite(session, code=body.code, person_id=person.id)
    except bot_delivery.InviteRefused as exc:
        raise ApiError(404, "invite_not_found", str(exc)) from None
    return MemberOut(shop_id=shop_id, telegram_id=person.telegram_id, role=role)  # type: ignore[arg-type]
