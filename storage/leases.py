"""One sync (or backfill) of a shop at a time: a lease row in PostgreSQL, with a fencing token.

A lease is a row of `sync_leases` (shop, kind): who holds it, a token drawn from a sequence
(every take a larger one), and when it expires, by the database's clock (one clock for every
machine). It is taken with one statement: insert it, or take over one that has expired. The
holder renews it while it works (`hold`: a heartbeat every third of the lease) and deletes it
at the end. No connection is held between statements: a shop being synced costs the
database nothing but its row, so a thousand shops in flight need no thousand connections.

A process killed with -9 renews nothing: its shop is free once the lease expires
(SYNC_LEASE_SECONDS). A process that stalls (a long pause, a machine that froze) may wake
after its lease was taken over: it must not write. Fencing: every transaction committed
through a fenced engine (`fenced`) first reads its lease row `FOR SHARE` in that same
transaction and refuses to commit unless the row still carries its token and has not
expired (LeaseLost). The row lock makes the check and the commit one step: a takeover (an
update of that row) waits for the commit, so a write is either before the takeover, and the
next holder sees it, or refused. A lease that has expired is lost even if nobody took it
over yet: its renewal is refused too, and storage.reaping treats its runs as dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import anyio
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

KINDS = ("sync", "backfill")
T = TypeVar("T")

_TAKE = text(
    """
    INSERT INTO sync_leases AS l (shop_id, kind, holder, token, taken_at, expires_at)
    VALUES (:shop, :kind, :holder, nextval('sync_lease_tokens'), clock_timestamp(),
            clock_timestamp() + make_interval(secs => :seconds))
    ON CONFLICT (shop_id, kind) DO UPDATE
      SET holder = excluded.holder, token = excluded.token,
          taken_at = excluded.taken_at, expires_at = excluded.expires_at
      WHERE l.expires_at <= clock_timestamp()
    RETURNING l.token
    """
)
_RENEW = text(
    """
    UPDATE sync_leases SET expires_at = clock_timestamp() + make_interval(secs => :seconds)
    WHERE shop_id = :shop AND kind = :kind AND token = :token AND expires_at > clock_timestamp()
    RETURNING token
    """
)
_RELEASE = text("DELETE FROM sync_leases WHERE shop_id = :shop AND kind = :kind AND token = :token")
# The release that is also the fence (`release_with`): only a lease still held and unexpired.
_RELEASE_HELD = text(
    "DELETE FROM sync_leases WHERE shop_id = :shop AND kind = :kind AND token = :token "
    "AND expires_at > clock_timestamp() RETURNING token"
)
# Run on the DBAPI cursor inside the transaction being committed (psycopg placeholders).
_FENCE = (
    "SELECT 1 FROM sync_leases WHERE shop_id = %s AND kind = %s AND token = %s "
    "AND expires_at > clock_timestamp() FOR SHARE"
)
_OPTION = "sellerpulse_lease"


class LeaseBusy(RuntimeError):
    """Another process holds the shop's lease."""


class LeaseLost(RuntimeError):
    """The lease expired or was taken over: this holder may no longer write the shop's data."""


@dataclass
class Lease:
    shop_id: int
    kind: str
    token: int
    holder: str
    seconds: float
    lost: bool = field(default=False, compare=False)
    # `release_with` is releasing it (a renewal refused meanwhile is no loss) / has released it.
    releasing: bool = field(default=False, compare=False)
    released: bool = field(default=False, compare=False)

    def lost_error(self) -> LeaseLost:
        return LeaseLost(
            f"the {self.kind} lease of shop {self.shop_id} (token {self.token}) expired or was taken over "
            "by another process: this one stops and writes nothing more"
        )


def holder_name() -> str:
    """Who holds a lease, for people reading the table: host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


def take(engine: Engine, *, shop_id: int, kind: str, seconds: float, holder: str | None = None) -> Lease | None:
    """The shop's lease if it is free (or expired), else None. One statement."""
    if kind not in KINDS:
        raise ValueError(f"unknown lease kind {kind!r}")
    who = holder or holder_name()
    params = {"shop": shop_id, "kind": kind, "holder": who, "seconds": float(seconds)}
    with engine.begin() as conn:
        token = conn.execute(_TAKE, params).scalar()
    return None if token is None else Lease(shop_id, kind, int(token), who, float(seconds))


def renew(engine: Engine, lease: Lease) -> bool:
    """Push the expiry a lease further; False if the lease was lost (expired or taken over)."""
    with engine.begin() as conn:
        row = conn.execute(_RENEW, _key(lease) | {"seconds": lease.seconds}).scalar()
    return row is not None


def release(engine: Engine, lease: Lease) -> None:
    """Free the shop now (a lease already taken over by someone else is left alone)."""
    with engine.begin() as conn:
        conn.execute(_RELEASE, _key(lease))


def release_with(engine: Engine, lease: Lease, work: Callable[[Session], T]) -> T:
    """`work` (a sync's last writes) and the lease's release in one transaction. The release is
    the fence: its DELETE finds the row only while it carries the token and has not expired,
    and locks it until the commit, as the fence's `FOR SHARE` would (a takeover waits); else
    LeaseLost and nothing of `work` is written. One commit and one round trip fewer than the
    writes fenced, then the release."""
    unfenced = engine.execution_options(**{_OPTION: None})  # the fence's row is the one deleted
    lease.releasing = True
    try:
        with Session(unfenced, expire_on_commit=False) as session, session.begin():
            out = work(session)
            if session.execute(_RELEASE_HELD, _key(lease)).scalar() is None:
                lease.lost = True
                raise lease.lost_error()
    except BaseException:
        lease.releasing = False
        raise
    lease.released = True
    return out


def _key(lease: Lease) -> dict[str, Any]:
    return {"shop": lease.shop_id, "kind": lease.kind, "token": lease.token}


def _check_fence(conn: Connection) -> None:
    lease: Lease | None = conn.get_execution_options().get(_OPTION)
    if lease is None:
        return
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(_FENCE, (lease.shop_id, lease.kind, lease.token))
        held = cursor.fetchone() is not None
    finally:
        cursor.close()
    if not held:
        lease.lost = True
        raise lease.lost_error()


def fenced(engine: Engine, lease: Lease) -> Engine:
    """The same engine (and pool) whose every commit checks `lease` first, in the same
    transaction: a commit after the lease was lost raises LeaseLost and writes nothing."""
    if not event.contains(engine, "commit", _check_fence):
        event.listen(engine, "commit", _check_fence)
    return engine.execution_options(**{_OPTION: lease})


async def _heartbeat(engine: Engine, lease: Lease) -> None:
    """Renew every third of the lease until cancelled; a refused renewal marks the lease lost.
    A failed renewal (database briefly away) is tried again at the next beat."""
    while not lease.lost:
        await asyncio.sleep(lease.seconds / 3)
        try:
            if not await anyio.to_thread.run_sync(renew, engine, lease):
                if lease.releasing:  # gone because the holder released it (release_with)
                    return
                lease.lost = True
                log.error("%s", lease.lost_error())
        except Exception as exc:  # noqa: BLE001 - the next beat tries again; the fence guards writes
            log.warning("renewing the lease of shop %s failed: %s", lease.shop_id, exc)


@asynccontextmanager
async def hold(
    engine: Engine, *, shop_id: int, kind: str, seconds: float, wait_seconds: float = 0.0
) -> AsyncIterator[Lease]:
    """Take the shop's lease (trying again until `wait_seconds`, else LeaseBusy), keep it renewed
    while the block runs, release it at the end."""
    deadline = time.monotonic() + wait_seconds
    attempt = partial(take, engine, shop_id=shop_id, kind=kind, seconds=seconds)
    while (lease := await anyio.to_thread.run_sync(attempt)) is None:
        if time.monotonic() >= deadline:
            raise LeaseBusy(f"the {kind} lease of shop {shop_id} is held by another process")
        await asyncio.sleep(0.2)
    beat = asyncio.create_task(_heartbeat(engine, lease), name=f"lease-{kind}-{shop_id}")
    try:
        yield lease
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
        if not lease.lost and not lease.released:
            try:
                await anyio.to_thread.run_sync(release, engine, lease)
            except Exception as exc:  # noqa: BLE001 - it expires by itself; the block's own error matters more
                log.warning("releasing the lease of shop %s failed (it expires by itself): %s", lease.shop_id, exc)
