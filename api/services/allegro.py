"""Connecting an Allegro shop through the OAuth device flow.

`start` asks Allegro for a device code and returns what the person must see at once; a
background task in the worker that started it polls until they approve (the shop is stored,
encrypted, with them as owner), refuse, or the code expires. Tickets live in PostgreSQL
(`allegro_logins`), so any worker answers their status; one still pending after its code
expired (its worker stopped) reads as expired.

Every pending login costs a call to Allegro's token endpoint per interval until it ends, so
they are bounded (issue 12: 75 pending logins made 1,126 token calls in 15 minutes):
- the same person asking again for the same shop name gets their pending ticket back (the
  same code; no new call to Allegro), while it has a useful time left;
- past `ALLEGRO_PENDING_LOGINS_PER_PERSON`, a new login supersedes the person's oldest;
- past `ALLEGRO_PENDING_LOGINS_MAX` over the install, a new one is refused (503, Retry-After);
- a poll stops as soon as its ticket is no longer pending: superseded (by any worker: the
  poller checks the ticket every interval), ended, or run out.
Cap decisions are taken under an advisory lock, so workers starting logins at once agree.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol, cast

import anyio
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api.errors import ApiError, is_database_down
from api.services.jwt import claim
from connectors import errors
from connectors.allegro.auth import AllegroAuth, DeviceAuthorization, TokenPair
from storage import logins
from storage.db import session_scope
from storage.models import AllegroLogin, Marketplace, Person
from storage.shops import create_shop

log = logging.getLogger("sellerpulse.api.allegro")

TicketStatus = Literal["pending", "connected", "denied", "expired", "failed", "superseded"]
# A pending ticket with less time left than this is not handed out again: a new one replaces it.
REUSE_MARGIN = timedelta(minutes=2)


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
    async def start(self, session: Session, person: Person, name: str) -> LoginTicket:
        """`session`: the request's; its transaction is ended before Allegro is called."""
        ...

    def status(self, session: Session, id: str) -> LoginTicket | None: ...


@dataclass(frozen=True)
class _Admission:
    reused: LoginTicket | None = None
    superseded: tuple[str, ...] = ()


def too_many_logins(first_expiry: datetime | None, now: datetime) -> ApiError:
    wait = 60 if first_expiry is None else max(1, math.ceil((first_expiry - now).total_seconds()))
    return ApiError(
        503,
        "unavailable",
        "too many Allegro logins are waiting for approval; try again later",
        headers={"Retry-After": str(min(wait, 3600))},
    )


def _credentials(pair: TokenPair) -> dict[str, str]:
    # The same shape the sync pipeline's token refresh reads and writes (tasks.tokens).
    return {
        "access_token": pair.access_token.get_secret_value(),
        "refresh_token": pair.refresh_token.get_secret_value(),
        "expires_at": pair.expires_at.isoformat(),
    }


class DeviceFlowLoginStarter:
    def __init__(
        self,
        *,
        engine: Callable[[], Engine],
        auth_factory: Callable[[], AllegroAuth],
        per_person: int = 2,
        overall: int = 50,
        watch_every: float | None = None,
    ) -> None:
        self._engine = engine
        self._auth_factory = auth_factory
        self.per_person, self.overall = per_person, overall
        self._watch_every = watch_every  # None: the device flow's own interval
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def start(self, session: Session, person: Person, name: str) -> LoginTicket:
        person_id = person.id
        # First on the request's own session: a refusal or a reuse costs Allegro nothing. Then
        # its transaction ends, so its connection is free while Allegro answers.
        first = await anyio.to_thread.run_sync(self._admit, session, person_id, name, None)
        await anyio.to_thread.run_sync(session.commit)
        if first.reused is not None:
            return first.reused
        auth = self._auth_factory()
        try:
            device = await auth.start_device_flow()
            ticket = LoginTicket(
                id=secrets.token_urlsafe(16),
                user_code=device.user_code_display,
                verification_uri=device.verification_uri,
                verification_uri_complete=device.verification_uri_complete,
                expires_at=device.expires_at,
                person_id=person_id,
            )
            # Again, under the lock, with the new ticket: another worker may have decided meanwhile.
            admitted = await anyio.to_thread.run_sync(self._add, ticket, name)
        except BaseException:
            await auth.aclose()
            raise
        if admitted.reused is not None:
            await auth.aclose()
            return admitted.reused
        for old in admitted.superseded:
            self._stop(old)
        task = asyncio.create_task(self._complete(ticket.id, auth, device, name, person_id))
        self._tasks[ticket.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(ticket.id, None))
        return ticket

    def status(self, session: Session, id: str) -> LoginTicket | None:
        login = logins.get_login(session, id=id)
        return None if login is None else _ticket(login, now=datetime.now(UTC))

    def polling(self) -> set[str]:
        """Ids of the tickets this worker is polling Allegro for."""
        return {id for id, task in self._tasks.items() if not task.done()}

    async def wait(self, id: str) -> LoginTicket | None:
        """Until the ticket's poll ends, if it runs in this worker (tests, and a clean shutdown)."""
        task = self._tasks.get(id)
        if task is not None:
            await asyncio.gather(asyncio.shield(task), return_exceptions=True)

        def read() -> LoginTicket | None:
            with session_scope(self._engine()) as session:
                return self.status(session, id)

        return await anyio.to_thread.run_sync(read)

    async def aclose(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def _stop(self, id: str) -> None:
        task = self._tasks.get(id)
        if task is not None:
            task.cancel()  # its ticket is already marked; the task only closes its client

    def _admit(self, session: Session, person_id: int, name: str, ticket: LoginTicket | None) -> _Admission:
        """Reuse, refuse, or let `ticket` in (superseding the person's oldest past their cap)."""
        now = datetime.now(UTC)
        logins.lock_logins(session)
        mine = logins.pending_of(session, person_id=person_id, now=now)
        for login in mine:
            if login.shop_name == name and login.expires_at - now >= REUSE_MARGIN:
                return _Admission(reused=_ticket(login, now=now))
        # Ours that are about to run out are replaced whatever the cap; then the oldest past it.
        stale = [login for login in mine if login.expires_at - now < REUSE_MARGIN]
        fresh = [login for login in mine if login not in stale]
        over = fresh[: max(0, len(fresh) - self.per_person + 1)]
        replaced = [login.id for login in (*stale, *over)]
        total, first_expiry = logins.count_pending(session, now=now)
        if total - len(replaced) >= self.overall:
            raise too_many_logins(first_expiry, now)
        if ticket is None:
            return _Admission()
        logins.supersede(session, ids=replaced)
        logins.add_login(
            session,
            id=ticket.id,
            person_id=ticket.person_id,
            user_code=ticket.user_code,
            verification_uri=ticket.verification_uri,
            verification_uri_complete=ticket.verification_uri_complete,
            expires_at=ticket.expires_at,
            shop_name=name,
        )
        return _Admission(superseded=tuple(replaced))

    def _add(self, ticket: LoginTicket, name: str) -> _Admission:
        with session_scope(self._engine()) as session:
            return self._admit(session, ticket.person_id, name, ticket)

    async def _complete(self, id: str, auth: AllegroAuth, device: DeviceAuthorization, name: str, owner: int) -> None:
        poll = asyncio.create_task(auth.poll_device_flow(device))
        try:
            if not await self._watch(id, poll, device):
                return  # superseded or ended elsewhere: nobody waits for this code any more
            pair = poll.result()
            await anyio.to_thread.run_sync(self._store, id, pair, name, owner)
        except errors.AccessDenied:
            await self._set(id, "denied")
        except errors.DeviceFlowError:
            await self._set(id, "expired")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the ticket must end whatever happened
            # The exception type only: connector messages carry no secrets, but be strict in logs.
            log.warning("Allegro login %s failed: %s", id[:6], type(exc).__name__)
            await self._set(id, "failed")
        finally:
            poll.cancel()
            await asyncio.gather(poll, return_exceptions=True)
            await auth.aclose()

    async def _watch(self, id: str, poll: asyncio.Task[TokenPair], device: DeviceAuthorization) -> bool:
        """Until the poll ends (True), or its ticket is no longer pending (False)."""
        every = self._watch_every or max(1.0, device.interval)
        while True:
            done, _ = await asyncio.wait({poll}, timeout=every)
            if done:
                return True
            try:
                pending = await anyio.to_thread.run_sync(self._still_pending, id)
            except Exception as exc:
                if not is_database_down(exc):
                    raise
                continue  # the database is down for a moment: the code is still good, keep polling
            if not pending:
                log.info("Allegro login %s no longer pending: its poll stops", id[:6])
                return False

    def _still_pending(self, id: str) -> bool:
        with session_scope(self._engine()) as session:
            return logins.still_pending(session, id=id, now=datetime.now(UTC))

    async def _set(self, id: str, status: TicketStatus) -> None:
        def finish() -> None:
            with session_scope(self._engine()) as session:
                logins.finish_login(session, id=id, status=status)

        await anyio.to_thread.run_sync(finish)

    def _store(self, id: str, pair: TokenPair, name: str, owner: int) -> None:
        """The shop and the ticket's end in one transaction: never a shop its ticket denies, and
        none for a ticket superseded while Allegro approved it."""
        account = claim(pair.access_token.get_secret_value(), "user_name", "sub")
        with session_scope(self._engine()) as session:
            login = logins.claim_pending(session, id=id)
            if login is None:
                log.info("Allegro login %s approved after it was superseded: no shop", id[:6])
                return
            shop = create_shop(
                session,
                marketplace=Marketplace.allegro.value,
                name=login.shop_name or name,
                credentials=_credentials(pair),
                account=account,
                owner_id=owner,
                token_expires_at=pair.expires_at,
            )
            logins.finish_login(session, id=id, status="connected", shop_id=shop.id)
