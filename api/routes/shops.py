"""Shops of a person: connect (WB token, Allegro device login), list, rename, remove, share, leave."""

from __future__ import annotations

import logging
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from api.deps import (
    AllegroLoginDep,
    MemberShopDep,
    OwnerShopDep,
    PersonDep,
    SessionDep,
    WbVerifierDep,
    require_person,
)
from api.errors import ApiError, not_found
from api.routes import AUTHED, errors
from api.schemas import (
    AllegroLoginIn,
    InviteIn,
    LoginTicketOut,
    MemberOut,
    Page,
    RenameIn,
    ShopOut,
    WbShopIn,
)
from api.services import LoginTicket
from connectors import errors as connector_errors
from storage import people
from storage.models import Marketplace, Role
from storage.people import MemberShop
from storage.shops import create_shop

log = logging.getLogger("sellerpulse.api.shops")
router = APIRouter(prefix="/shops", tags=["shops"])

Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
TicketId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


def shop_out(found: MemberShop) -> ShopOut:
    s = found.shop
    return ShopOut(
        id=s.id,
        marketplace=s.marketplace,
        name=s.name,
        status=s.status,
        status_reason=s.status_reason,  # type: ignore[arg-type]
        role=found.role,
        currency=s.currency,
        language=s.language,
        created_at=s.created_at,  # type: ignore[arg-type]
        history_complete=found.history_complete,
        paused=s.paused_at is not None,
        limited_until=found.limited_until,
    )


def ticket_out(ticket: LoginTicket) -> LoginTicketOut:
    return LoginTicketOut(
        id=ticket.id,
        status=ticket.status,
        user_code=ticket.user_code,
        verification_uri=ticket.verification_uri,
        verification_uri_complete=ticket.verification_uri_complete,
        expires_at=ticket.expires_at,
        shop_id=ticket.shop_id,
    )


@router.get("", response_model=Page[ShopOut], responses=errors(*AUTHED))
def list_shops(session: SessionDep, person: PersonDep, limit: Limit = 50, offset: Offset = 0) -> Page[ShopOut]:
    found, total = people.member_shops(session, person_id=person.id, limit=limit, offset=offset)
    return Page[ShopOut](items=[shop_out(f) for f in found], total=total, limit=limit, offset=offset)


@router.post(
    "/wb",
    status_code=201,
    response_model=ShopOut,
    responses=errors(*AUTHED, 503),
    summary="Connect a WB shop (the token is checked with one cheap call, then stored encrypted)",
)
async def connect_wb(body: WbShopIn, session: SessionDep, person: PersonDep, verifier: WbVerifierDep) -> ShopOut:
    try:
        account = await verifier.verify(body.token)
    except connector_errors.CredentialsRejected:
        raise ApiError(422, "invalid_token", "WB rejected this token (401): check it and its categories") from None
    except connector_errors.ConnectorError as exc:
        # Timeouts, 5xx, 429 and anything else odd say nothing about the token.
        log.info("WB token check inconclusive: %s", type(exc).__name__)
        raise ApiError(503, "unverified", "could not verify the token with WB; try again") from None
    store = partial(
        create_shop,
        session,
        marketplace=Marketplace.wb.value,
        name=body.name,
        credentials={"token": body.token.get_secret_value()},
        account=account.seller_id,
        owner_id=person.id,
    )
    shop = await run_in_threadpool(store)  # blocking database work: never on the event loop
    return shop_out(MemberShop(shop=shop, role=Role.owner.value))


@router.post(
    "/allegro/login",
    status_code=202,
    response_model=LoginTicketOut,
    responses=errors(*AUTHED, 503),
    summary="Start an Allegro device login; show the user code and URL, then poll the ticket",
    description="The same person asking again for the same shop name gets their pending ticket back. "
    "A person has at most `ALLEGRO_PENDING_LOGINS_PER_PERSON` pending logins: a newer one supersedes the "
    "oldest (its status becomes `superseded`). Past `ALLEGRO_PENDING_LOGINS_MAX` pending logins over the "
    "install, a new one is refused with 503 and Retry-After.",
)
async def start_allegro_login(
    body: AllegroLoginIn, session: SessionDep, person: PersonDep, starter: AllegroLoginDep
) -> LoginTicketOut:
    try:
        ticket = await starter.start(session, person, body.name)
    except connector_errors.ConnectorError as exc:
        log.info("Allegro device login could not start: %s", type(exc).__name__)
        raise ApiError(503, "unavailable", "Allegro did not start the login; try again") from None
    return ticket_out(ticket)


@router.get("/allegro/login/{ticket_id}", response_model=LoginTicketOut, responses=errors(*AUTHED))
def allegro_login_status(
    ticket_id: TicketId, session: SessionDep, person: PersonDep, starter: AllegroLoginDep
) -> LoginTicketOut:
    ticket = starter.status(session, ticket_id)
    if ticket is None or ticket.person_id != person.id:
        raise not_found("login")
    return ticket_out(ticket)


@router.get("/{shop_id:int}", response_model=ShopOut, responses=errors(*AUTHED))
def get_shop(found: MemberShopDep) -> ShopOut:
    return shop_out(found)


@router.patch("/{shop_id:int}", response_model=ShopOut, responses=errors(*AUTHED, 403))
def rename_shop(body: RenameIn, session: SessionDep, found: OwnerShopDep) -> ShopOut:
    people.rename_shop(session, shop=found.shop, name=body.name)
    return shop_out(found)


@router.delete(
    "/{shop_id:int}",
    status_code=204,
    response_class=Response,
    responses=errors(*AUTHED, 403),
    summary="Remove a shop: syncing stops and its token is dropped; purge=true also deletes its data",
)
def remove_shop(
    session: SessionDep,
    found: OwnerShopDep,
    purge: Annotated[bool, Query(description="delete every order, review... of the shop")] = False,
) -> Response:
    people.remove_shop(session, shop=found.shop, purge=purge)
    return Response(status_code=204)


@router.post(
    "/{shop_id:int}/members",
    status_code=201,
    response_model=MemberOut,
    responses=errors(*AUTHED, 403),
    summary="Share a shop with another registered person (as a member)",
)
def invite(body: InviteIn, session: SessionDep, found: OwnerShopDep) -> MemberOut:
    invitee = require_person(session, body.telegram_id)
    member = people.invite(session, shop_id=found.shop.id, person_id=invitee.id)
    return MemberOut(shop_id=found.shop.id, telegram_id=invitee.telegram_id, role=member.role)  # type: ignore[arg-type]


@router.delete(
    "/{shop_id:int}/members/me",
    status_code=204,
    response_class=Response,
    responses=errors(*AUTHED),
    summary="Leave a shop (the last owner leaving promotes the longest-standing member)",
)
def leave(session: SessionDep, person: PersonDep, found: MemberShopDep) -> Response:
    people.leave_shop(session, shop=found.shop, person_id=person.id)
    return Response(status_code=204)
