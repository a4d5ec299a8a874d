"""Allegro token refresh: one refresh per shop at a time, the new pair stored in the same transaction.

The shop's row is locked (`SELECT ... FOR UPDATE`) for the whole refresh, network call
included. A second refresher waits on that lock, then finds the token already fresh (or
already replaced, when it was answering a 401) and does nothing. Refresh tokens rotate, so
two refreshers each spending the same refresh token is exactly how accounts get lost.

Only `ReauthRequired` (invalid_grant, revoked) marks the shop `needs_reauth`; a network or
server failure leaves it active and is retried by the caller.

`ShopTokens` is what a sync hands the Allegro client (connectors.allegro.tokens.TokenSource):
on a 401 the client asks it to renew the rejected token, and it takes the shop's current pair
from the database if another process already rotated it, or refreshes it under the lock.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

import anyio
import anyio.from_thread
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from connectors.allegro.auth import TokenPair
from connectors.errors import ReauthRequired
from storage.models import Shop, ShopStatus
from storage.shops import credentials_of, is_paused, replace_credentials, set_status
from tasks.clients import Clients
from tasks.notifying import notify_shop_status

log = logging.getLogger("sellerpulse.tokens")


def pair_to_credentials(pair: TokenPair) -> dict[str, Any]:
    return {
        "access_token": pair.access_token.get_secret_value(),
        "refresh_token": pair.refresh_token.get_secret_value(),
        "expires_at": pair.expires_at.isoformat(),
    }


def _needs_refresh(
    shop: Shop, creds: dict[str, Any], *, seen: str | None, window: timedelta | None, now: datetime
) -> bool:
    if creds.get("access_token") != seen:
        # Someone refreshed between our decision and our turn at the lock: their pair is the live one.
        return False
    if window is None:  # forced: the token was rejected
        return True
    expires = shop.token_expires_at
    return expires is None or expires <= now + window


def _refresh_locked(
    engine: Engine, clients: Clients, shop_id: int, seen: str | None, window: timedelta | None
) -> tuple[dict[str, Any], bool]:
    """Runs in a worker thread; the network call goes back to the event loop while the row stays locked."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        shop = session.scalars(select(Shop).where(Shop.id == shop_id).with_for_update()).one()
        creds = credentials_of(shop)
        due = _needs_refresh(shop, creds, seen=seen, window=window, now=clients.now())
        if not (shop.status == ShopStatus.active.value or is_paused(shop)) or not due:
            return creds, False
        try:
            pair = anyio.from_thread.run(clients.allegro_auth.refresh, creds["refresh_token"])
        except ReauthRequired as exc:
            if set_status(session, shop=shop, status=ShopStatus.needs_reauth, reason=str(exc)):
                notify_shop_status(session, shop=shop, kind="shop_needs_reauth")
            log.warning("shop %s needs to be connected again: %s", shop.name, exc)
            return creds, True
        new_creds = pair_to_credentials(pair)
        replace_credentials(session, shop_id=shop.id, credentials=new_creds, token_expires_at=pair.expires_at)
        log.info("refreshed the Allegro token of shop %s (valid until %s)", shop.name, pair.expires_at.isoformat())
        return new_creds, False


async def refresh_shop_token(
    engine: Engine,
    clients: Clients,
    *,
    shop_id: int,
    force: bool = False,
    window: timedelta | None = None,
    rejected_token: str | None = None,
) -> dict[str, Any]:
    """Refresh a shop's token if it expires within `window` (`force`: regardless, the API
    rejected it); return the current credentials. Raises ReauthRequired after marking the
    shop when the person must log in again.

    The access token seen before waiting for the lock is compared inside it, so of many
    concurrent callers only the first refreshes; the others get its pair."""
    if window is None:
        window = timedelta(seconds=clients.settings.token_refresh_window_seconds)
    seen = rejected_token
    if seen is None:
        with Session(engine) as session:
            shop = session.get(Shop, shop_id)
            seen = credentials_of(shop).get("access_token") if shop else None
    creds, reauth = await anyio.to_thread.run_sync(
        _refresh_locked, engine, clients, shop_id, seen, None if force else window
    )
    if reauth:
        raise ReauthRequired("the Allegro refresh token was refused: connect the shop again")
    return creds


def shops_due(engine: Engine, *, window: timedelta, now: datetime) -> list[int]:
    """Allegro shops whose access token expires within `window` of `now` (the clients' clock):
    active ones, and paused ones (their login is kept alive, so resuming needs no new login:
    a refresh token unused for 3 months is gone)."""
    horizon = now + window
    paused = (Shop.status == ShopStatus.disabled.value) & Shop.credentials.is_not(None)
    with Session(engine) as session:
        query = select(Shop.id).where(
            Shop.marketplace == "allegro",
            (Shop.status == ShopStatus.active.value) | paused,
            (Shop.token_expires_at.is_(None)) | (Shop.token_expires_at <= horizon),
        )
        return list(session.scalars(query.order_by(Shop.id)))


class ShopTokens:
    """The access token of one Allegro shop for the client, renewed when the API rejects it.

    Many requests of a run can meet the same dead token at once: one of them renews it (an
    asyncio lock in the process, the shop's row lock across processes), the others get its
    result. Every renewal is logged; the count is in `renewals`."""

    def __init__(self, engine: Engine, clients: Clients, *, shop_id: int, credentials: dict[str, Any]) -> None:
        self._engine, self._clients, self._shop_id = engine, clients, shop_id
        self.credentials = credentials
        self.renewals = 0
        self._lock = asyncio.Lock()

    async def current(self) -> str:
        return str(self.credentials["access_token"])

    async def renew(self, rejected: str) -> str:
        async with self._lock:
            if self.credentials.get("access_token") != rejected:
                return await self.current()  # another request of this run renewed it meanwhile
            # Inside the shop's row lock: the stored pair if another process already rotated it
            # (no refresh), else a refresh of it. ReauthRequired when the login is gone.
            creds = await refresh_shop_token(
                self._engine, self._clients, shop_id=self._shop_id, force=True, rejected_token=rejected
            )
            if creds.get("access_token") == rejected:
                raise ReauthRequired(f"the shop is {_status(self._engine, self._shop_id)}: its token is not renewed")
            self.credentials = creds
            self.renewals += 1
            log.info("shop %s: the rejected access token was replaced (%d this run)", self._shop_id, self.renewals)
            return await self.current()


def _status(engine: Engine, shop_id: int) -> str:
    with Session(engine) as session:
        shop = session.get(Shop, shop_id)
        return shop.status if shop else "gone"
