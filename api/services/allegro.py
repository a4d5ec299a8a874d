"""Connecting an Allegro shop through the OAuth device flow.

`start` asks Allegro for a device code and returns what the person must see at once; a
background task in the worker that started it polls until they approve (the shop is stored,
encrypted, with them as owner), refuse, or the code expires. Tickets live in PostgreSQL
(`allegro_logins`), so any worker answers their status; one still pending after its code
expired (its worker stopped) reads as expired.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol, cast

import anyio
from sqlalchemy import Engine

from api.services.jwt import claim
from connectors import errors
from connectors.allegro.auth import AllegroAuth, DeviceAuthorization, TokenPair
from storage import logins
from storage.db import session_scope
from storage.models import AllegroLogin, Marketplace, Person
from storage.shops import create_shop

log = logging.getLogger("sellerpulse.api.allegro")

TicketStatus = Literal["pending", "connected", "denied", "expired", "failed"]


@dataclass(frozen=True)
class LoginTicket:
    id: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_at: datetime
    person_id: int  # who started it: only they may read it
    status: TicketStatus = "pending"
    shop_id: int | None = None


def _ticket(login: AllegroLogin, *, now: datetime) -> LoginTicket:
    status = cast(TicketStatus, login.status)
    if status == "pending" and login.expires_at < now:
        status = "expired"  # the worker polling it stopped before the code ran out
    return LoginTicket(
        id=login.id,
        user_code=login.user_code,
        verification_uri=login.verification_uri,
        verification_uri_complete=login.verification_uri_complete,
        expires_at=login.expires_at,
        person_id=login.person_id,
        status=status,
        shop_id=login.shop_id,
    )


class AllegroLoginStarter(Protocol):
    async def start(self, person: Person, name: str) -> LoginTicket: ...

    def status(self, id: str) -> LoginTicket | None: ...


def _credentials(pair: TokenPair) -> dict[str, str]:
    # The same shape the sync pipeline's token refresh reads and writes (tasks.tokens).
    return {
        "access_token": pair.access_token.get_secret_value(),
        "refresh_token": pair.refresh_token.get_secret_value(),
        "expires_at": pair.expires_at.isoformat(),
    }


class DeviceFlowLoginStarter:
    def __init__(self, *, engine: Callable[[], Engine], auth_factory: Callable[[], AllegroAuth]) -> None:
        self._engine = engine
        self._auth_factory = auth_factory
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def start(self, person: Person, name: str) -> LoginTicket:
        auth = self._auth_factory()
        try:
            device = await auth.start_device_flow()
            ticket = LoginTicket(
                id=secrets.token_urlsafe(16),
                user_code=device.user_code_display,
                verification_uri=device.verification_uri,
                verification_uri_complete=device.verification_uri_complete,
                expires_at=device.expires_at,
                person_id=person.id,
            )
            await anyio.to_thread.run_sync(self._add, ticket)
        except BaseException:
            await auth.aclose()
            raise
        self._tasks[ticket.id] = asyncio.create_task(self._complete(ticket.id, auth, device, name, person.id))
        return ticket

    def status(self, id: str) -> LoginTicket | None:
        with session_scope(self._engine()) as session:
            login = logins.get_login(session, id=id)
            return None if login is None else _ticket(login, now=datetime.now(UTC))

    async def wait(self, id: str) -> LoginTicket | None:
        """Until the ticket's poll ends, if it runs in this worker (tests, and a clean shutdown)."""
        task = self._tasks.get(id)
        if task is not None:
            await asyncio.shield(task)
        return await anyio.to_thread.run_sync(self.status, id)

    async def aclose(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def _complete(self, id: str, auth: AllegroAuth, device: DeviceAuthorization, name: str, owner: int) -> None:
        try:
            pair = await auth.poll_device_flow(device)
            await anyio.to_thread.run_sync(self._store, id, pair, name, owner)
        except errors.AccessDenied:
            await self._set(id, "denied")
        except errors.DeviceFlowError:
            await self._set(id, "expired")
        except Exception as exc:  # noqa: BLE001 - the ticket must end whatever happened
            # The exception type only: connector messages carry no secrets, but be strict in logs.
            log.warning("Allegro login %s failed: %s", id[:6], type(exc).__name__)
            await self._set(id, "failed")
        finally:
            await auth.aclose()

    async def _set(self, id: str, status: TicketStatus) -> None:
        def finish() -> None:
            with session_scope(self._engine()) as session:
                logins.finish_login(session, id=id, status=status)

        await anyio.to_thread.run_sync(finish)

    def _add(self, ticket: LoginTicket) -> None:
        with session_scope(self._engine()) as session:
            logins.add_login(
                session,
                id=ticket.id,
                person_id=ticket.person_id,
                user_code=ticket.user_code,
                verification_uri=ticket.verification_uri,
                verification_uri_complete=ticket.verification_uri_complete,
                expires_at=ticket.expires_at,
            )

    def _store(self, id: str, pair: TokenPair, name: str, owner: int) -> None:
        """The shop and the ticket's end in one transaction: never a shop its ticket denies."""
        account = claim(pair.access_token.get_secret_value(), "user_name", "sub")
        with session_scope(self._engine()) as session:
            shop = create_shop(
                session,
                marketplace=Marketplace.allegro.value,
                name=name,
                credentials=_credentials(pair),
                account=account,
                owner_id=owner,
                token_expires_at=pair.expires_at,
            )
            logins.finish_login(session, id=id, status="connected", shop_id=shop.id)
