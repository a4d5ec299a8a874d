"""The per-shop lease (storage.leases) on real PostgreSQL: one holder at a time, a killed holder
frees the shop once its lease expires, renewals keep it for as long as the holder lives, and a
commit through the fence after the lease was lost writes nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from storage import leases
from storage.leases import LeaseLost
from storage.shops import create_shop
from storage.sync_state import get_cursor, set_cursor

ROOT = Path(__file__).resolve().parents[2]


def _shop(engine: Engine) -> int:
    with Session(engine) as s, s.begin():
        return create_shop(s, marketplace="wb", name="Leased", credentials={"token": "x"}).id


def _lease_row(engine: Engine, shop_id: int):
    """(taken_at, expires_at) of the shop's sync lease, by the database's clock."""
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT taken_at, expires_at FROM sync_leases WHERE shop_id = :s AND kind = 'sync'"),
            {"s": shop_id},
        ).one()


def test_holders_in_many_threads_never_hold_one_shop_at_once(clean_engine: Engine) -> None:
    """Eight threads each take the shop 10 times and, under the lease, do a read-then-write
    increment through the fence: overlapping holders would lose increments."""
    shop_id = _shop(clean_engine)
    rounds, threads = 10, 8

    def holder(_: int) -> list[int]:
        tokens: list[int] = []
        deadline = time.monotonic() + 60
        while len(tokens) < rounds:
            assert time.monotonic() < deadline, "a thread never got the shop"
            lease = leases.take(clean_engine, shop_id=shop_id, kind="sync", seconds=30)
            if lease is None:
                continue
            fenced = leases.fenced(clean_engine, lease)
            with Session(fenced) as s:
                n = (get_cursor(s, shop_id=shop_id, stream="count") or {"n": 0})["n"]
            with Session(fenced) as s, s.begin():
                set_cursor(s, shop_id=shop_id, stream="count", value={"n": n + 1})
            tokens.append(lease.token)
            leases.release(clean_engine, lease)
        return tokens

    with ThreadPoolExecutor(threads) as pool:
        tokens = [t for got in pool.map(holder, range(threads)) for t in got]
    with Session(clean_engine) as s:
        assert get_cursor(s, shop_id=shop_id, stream="count") == {"n": rounds * threads}
    assert len(set(tokens)) == len(tokens), "every take draws a new fencing token"


def test_a_sync_and_a_backfill_lease_are_separate_and_a_held_one_is_not_taken(clean_engine: Engine) -> None:
    shop_id = _shop(clean_engine)
    sync = leases.take(clean_engine, shop_id=shop_id, kind="sync", seconds=30)
    assert sync is not None
    assert leases.take(clean_engine, shop_id=shop_id, kind="sync", seconds=30) is None
    backfill = leases.take(clean_engine, shop_id=shop_id, kind="backfill", seconds=30)
    assert backfill is not None and backfill.token > sync.token
    leases.release(clean_engine, sync)
    again = leases.take(clean_engine, shop_id=shop_id, kind="sync", seconds=30)
    assert again is not None and again.token > backfill.token
    with pytest.raises(ValueError, match="kind"):
        leases.take(clean_engine, shop_id=shop_id, kind="other", seconds=30)


def test_a_commit_after_the_lease_was_taken_over_writes_nothing(clean_engine: Engine) -> None:
    shop_id = _shop(clean_engine)
    old = leases.take(clean_engine, shop_id=shop_id, kind="sync", seconds=30)
    assert old is not None
    stalled = leases.fenced(clean_engine, old)
    with Session(stalled) as s, s.begin():
        set_cursor(s, shop_id=shop_id, stream="orders", value={"at": "before"})
    with clean_engine.begin() as conn:  # the stalled holder's lease runs out
        conn.execute(text("UPDATE sync_leases SET expires_at = clock_timestamp() - interval '1 second'"))
    # Expired, not yet taken over: already lost (its runs are reaped as dead from now on).
    with pytest.raises(LeaseLost, match="expired or was taken over"), Session(stalled) as s, s.begin():
        set_cursor(s, shop_id=shop_id, stream="orders", value={"at": "expired"})
    assert not leases.renew(clean_engine, old)
    new = leases.take(clean_engine, shop_id=shop_id, kind="sync", seconds=30)
    assert new is not None and new.token > old.token
    with pytest.raises(LeaseLost), stalled.begin() as conn:
        conn.execute(text("DELETE FROM sync_cursors"))
    with Session(leases.fenced(clean_engine, new)) as s, s.begin():
        set_cursor(s, shop_id=shop_id, stream="orders", value={"at": "new"})
    leases.release(clean_engine, old)  # the stalled holder's release leaves the new lease alone
    assert leases.take(clean_engine, shop_id=shop_id, kind="sync", seconds=30) is None
    with Session(clean_engine) as s:
        assert get_cursor(s, shop_id=shop_id, stream="orders") == {"at": "new"}


def test_last_writes_with_the_release_are_fenced_by_it(clean_engine: Engine) -> None:
    """`release_with`: the writes and the release in one transaction, on a fenced engine too;
    a lease lost meanwhile (expired, taken over) writes nothing and stays with its new holder."""
    shop_id = _shop(clean_engine)
    lease = leases.take(clean_engine, shop_id=shop_id, kind="sync", seconds=30)
    assert lease is not None

    def last(value: str):
        return lambda s: set_cursor(s, shop_id=shop_id, stream="orders", value={"at": value})

    leases.release_with(leases.fenced(clean_engine, lease), lease, last("released"))
    assert lease.released and not lease.lost
    with clean_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM sync_leases")).scalar_one() == 0

    stalled = leases.take(clean_engine, shop_id=shop_id, kind="sync", seconds=30)
    assert stalled is not None
    with clean_engine.begin() as conn:  # the stalled holder's lease runs out, and another takes the shop
        conn.execute(text("UPDATE sync_leases SET expires_at = clock_timestamp() - interval '1 second'"))
    new = leases.take(clean_engine, shop_id=shop_id, kind="sync", seconds=30)
    assert new is not None
    with pytest.raises(LeaseLost):
        leases.release_with(leases.fenced(clean_engine, stalled), stalled, last("stalled"))
    assert stalled.lost and not stalled.released
    with Session(clean_engine) as s:
        assert get_cursor(s, shop_id=shop_id, stream="orders") == {"at": "released"}
    assert leases.take(clean_engine, shop_id=shop_id, kind="sync", seconds=30) is None  # still the new holder's


def test_a_living_holder_keeps_the_shop_and_a_killed_one_frees_it_once_the_lease_expires(
    clean_engine: Engine,
) -> None:
    shop_id, seconds = _shop(clean_engine), 2.0
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.storage.lease_holder", str(shop_id), str(seconds)],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = child.stdout.readline() if child.stdout else ""
        assert line.strip().isdigit(), child.stderr.read() if child.stderr else ""
        token = int(line)
        # For more than two lease lengths the child's renewals keep the shop: nobody takes it.
        kept_until = time.monotonic() + 2 * seconds
        while time.monotonic() < kept_until:
            assert leases.take(clean_engine, shop_id=shop_id, kind="sync", seconds=seconds) is None
            assert child.poll() is None
            time.sleep(0.1)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    _, expires_at = _lease_row(clean_engine, shop_id)
    deadline = time.monotonic() + seconds + 10
    while (lease := leases.take(clean_engine, shop_id=shop_id, kind="sync", seconds=seconds)) is None:
        assert time.monotonic() < deadline, "the dead holder's lease never expired"
        time.sleep(0.05)
    # Taken only once the dead holder's last renewal ran out, by the database's clock.
    taken_at, _ = _lease_row(clean_engine, shop_id)
    assert taken_at >= expires_at and lease.token > token
