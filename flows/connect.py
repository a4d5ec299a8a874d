"""connect-allegro: the OAuth device flow, from "here is your code" to a stored, active shop.

`begin_login` asks Allegro for a device code and hands back what the person must see (the
user code and the verification URL); `complete_login` polls until they approve, refuse or
the code expires, then stores the encrypted token pair and creates the shop, or re-activates
the one being reconnected. The flow does both and logs the code; the CLI and the API call the
two halves themselves so they can show the code while the poll runs.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.context import FlowRunContext
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from connectors.allegro.auth import DeviceAuthorization, TokenPair
from flows.logs import run_logger
from sellerpulse.settings import get_settings
from storage.db import get_engine
from storage.migrate import require_head
from storage.models import Person, Role, Shop, ShopStatus
from storage.shops import (
    account_key,
    add_member,
    create_shop,
    is_paused,
    replace_credentials,
    set_status,
    shop_with_account,
)
from tasks.clients import Clients, make_clients
from tasks.tokens import pair_to_credentials


def _account_of(pair: TokenPair) -> str | None:
    """The Allegro user behind a token, when the token says (real tokens are JWTs with `user_name`)."""
    parts = pair.access_token.get_secret_value().split(".")
    if len(parts) != 3:
        return None
    try:
        claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    account = claims.get("user_name") or claims.get("sub")
    return str(account) if account else None


async def begin_login(clients: Clients) -> DeviceAuthorization:
    return await clients.allegro_auth.start_device_flow()


class LoginRefused(ValueError):
    """The approved login cannot be stored as asked (no owner, or another Allegro account)."""


def owner_person_id(session: Session, owner_telegram_id: int | None) -> int | None:
    """The person who owns a new shop: the Telegram id given, else SELLERPULSE_DEFAULT_OWNER."""
    telegram_id = owner_telegram_id or get_settings().sellerpulse_default_owner
    if telegram_id is None:
        return None
    return session.scalars(select(Person.id).where(Person.telegram_id == telegram_id)).first()


def store_login(
    engine: Engine, *, pair: TokenPair, name: str, owner_telegram_id: int | None = None, shop_id: int | None = None
) -> int:
    """Create the shop (or re-activate `shop_id` / the shop of the same Allegro account) with the new pair.

    A new shop needs an owner (every shop reaches a person); a reconnect must be the same Allegro
    account when both are known (another account's orders would land in this shop). A paused
    shop stays paused: a new login is not a decision to sync it again."""
    credentials = pair_to_credentials(pair)
    account = _account_of(pair)
    with Session(engine) as session, session.begin():
        if shop_id is not None:
            shop = session.get(Shop, shop_id)
            if shop is None or shop.marketplace != "allegro":
                raise LookupError(f"no Allegro shop {shop_id} to reconnect")
            if account and shop.account_key and shop.account_key != account_key("allegro", account):
                raise LoginRefused(f"this login is another Allegro account than shop {shop.name!r}'s: nothing changed")
            paused = is_paused(shop)
            replace_credentials(session, shop_id=shop.id, credentials=credentials, token_expires_at=pair.expires_at)
            if not paused:
                set_status(session, shop=shop, status=ShopStatus.active, reason=None)
            if owner_telegram_id is not None and (owner := owner_person_id(session, owner_telegram_id)):
                add_member(session, shop_id=shop.id, person_id=owner, role=Role.owner)
            return shop.id
        owner = owner_person_id(session, owner_telegram_id)
        if owner is None and shop_with_account(session, marketplace="allegro", account=account) is None:
            raise LoginRefused(
                "a new shop needs an owner: give the Telegram id of a registered person "
                "(owner_telegram_id / --owner) or set SELLERPULSE_DEFAULT_OWNER"
            )
        shop = create_shop(
            session,
            marketplace="allegro",
            name=name,
            credentials=credentials,
            account=account,
            owner_id=owner,
            token_expires_at=pair.expires_at,
        )
        return shop.id


async def complete_login(
    engine: Engine,
    clients: Clients,
    device: DeviceAuthorization,
    *,
    name: str,
    owner_telegram_id: int | None = None,
    shop_id: int | None = None,
) -> int:
    """Poll until the person decides; AccessDenied / DeviceCodeExpired / InvalidDeviceCode end it."""
    pair = await clients.allegro_auth.poll_device_flow(device)
    return store_login(engine, pair=pair, name=name, owner_telegram_id=owner_telegram_id, shop_id=shop_id)


def login_instructions(device: DeviceAuthorization) -> str:
    url = device.verification_uri_complete or device.verification_uri
    return (
        f"Open {url} and enter the code {device.user_code_display} (valid until {device.expires_at:%Y-%m-%d %H:%M} UTC)"
    )


@flow(name="connect-allegro", flow_run_name="connect-allegro-{name}", retries=0)
async def connect_allegro(name: str, owner_telegram_id: int | None = None, shop_id: int | None = None) -> int:
    """Connect an Allegro account: show the code, wait for approval, store the shop. Returns its id."""
    engine = get_engine()
    require_head(engine)
    logger = run_logger()
    if shop_id is None:
        with Session(engine) as session:
            if owner_person_id(session, owner_telegram_id) is None:
                # Before the person is asked to log in, not after.
                raise LoginRefused("a new shop needs an owner: owner_telegram_id of a registered person")
    async with make_clients() as clients:
        device = await begin_login(clients)
        instructions = login_instructions(device)
        logger.info(instructions)
        if FlowRunContext.get() is not None:
            await create_markdown_artifact(
                key="allegro-login",
                markdown=f"# Connect Allegro shop {name}\n\n{instructions}",
                description="the code the person must enter",
            )
        new_id = await complete_login(
            engine, clients, device, name=name, owner_telegram_id=owner_telegram_id, shop_id=shop_id
        )
    logger.info("Allegro shop %s connected (id %s) at %s", name, new_id, datetime.now().isoformat(timespec="seconds"))
    return new_id
