"""Runs that die: a sync killed with SIGKILL leaves its run `running`; once its lease expires
it is reaped (marked failed, with the reason), shows so in the API, and counts towards sync_failing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session

from api.app import create_app
from flows.sync import sync_one
from sandbox.world import World
from storage import apikeys, leases, reaping
from storage.db import session_scope
from storage.models import Membership, Notification, Person, SyncRun
from storage.sync_state import failing_since, start_run
from tasks.clients import Clients
from tests.api.conftest import Bot, RecordingLauncher

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 90.0  # seconds: the child imports Prefect and the app before it syncs


def _runs(engine: Engine, shop_id: int) -> dict[str, SyncRun]:
    with Session(engine) as s:
        return {r.stream: r for r in s.scalars(select(SyncRun).where(SyncRun.shop_id == shop_id).order_by(SyncRun.id))}


def _wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _add_owner(engine: Engine, shop_id: int) -> int:
    with Session(engine) as s, s.begin():
        owner = Person(telegram_id=555_001, language="en")
        s.add(owner)
        s.flush()
        s.add(Membership(shop_id=shop_id, person_id=owner.id, role="owner"))
        return owner.id


LEASE_SECONDS = 3  # the child's SYNC_LEASE_SECONDS: its shop is free this long after it dies


def _live_lease_token(engine: Engine, shop_id: int) -> int | None:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT token FROM sync_leases WHERE shop_id = :shop AND kind = 'sync' "
                "AND expires_at > clock_timestamp()"
            ),
            {"shop": shop_id},
        ).scalar()


async def test_a_sync_killed_with_sigkill_is_reaped_shown_failed_and_counted(
    clean_engine: Engine, world: World, clients: Clients, shops: dict[str, int]
) -> None:
    shop_id = shops["wb1"]
    _add_owner(clean_engine, shop_id)
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.flows.hanging_sync", str(shop_id)],
        cwd=ROOT,
        env={**os.environ, "SYNC_LEASE_SECONDS": str(LEASE_SECONDS)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(lambda: "wb_orders" in _runs(clean_engine, shop_id) or child.poll() is not None, "the child's run")
        assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
        alive = _runs(clean_engine, shop_id)["wb_orders"]
        assert alive.status == "running" and alive.lease_token == _live_lease_token(clean_engine, shop_id)
        # While its process lives, nobody reaps it.
        assert reaping.reap(clean_engine, failing_after=timedelta(hours=1)) == []
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    # Nothing renews the dead process's lease: it expires; the run record still says `running`
    # (nothing finished it). Say it died two hours ago, unnoticed until now.
    _wait_for(lambda: _live_lease_token(clean_engine, shop_id) is None, "the dead process's lease to expire")
    with Session(clean_engine) as s, s.begin():
        s.execute(update(SyncRun).values(started_at=SyncRun.started_at - timedelta(hours=2)))
    assert _runs(clean_engine, shop_id)["wb_orders"].status == "running"

    # The API shows it as the failure it is.
    with session_scope(clean_engine) as s:
        secret = apikeys.create_key(s, name="bot").secret
    app = create_app(engine=clean_engine, sync_launcher=RecordingLauncher())
    with TestClient(app) as http:
        runs = Bot(http, secret).get(f"/shops/{shop_id}/sync-runs", params={"telegram_id": 555_001}).json()["items"]
    crashed = [r for r in runs if r["stream"] == "wb_orders"]
    assert [r["status"] for r in crashed] == ["failed"] and crashed[0]["finished_at"]
    assert crashed[0]["error"].startswith("crashed:") and "lease" in crashed[0]["error"]
    # And it counts: the stream has been failing for two hours, the owners are told once.
    with Session(clean_engine) as s:
        assert (
            failing_since(s, shop_id=shop_id, stream="wb_orders")
            == _runs(clean_engine, shop_id)["wb_orders"].started_at
        )
        told = s.scalars(select(Notification).where(Notification.kind == "sync_failing")).all()
    assert [n.payload["stream"] for n in told] == ["wb_orders"]
    assert told[0].payload["error"].startswith("crashed:")
    # The next sync of the shop runs normally (the lease expired) and finds nothing left to reap.
    reports = await sync_one(shop_id, clients=clients)
    assert all(r.status == "success" for r in reports), [(r.stream, r.error) for r in reports]
    assert _runs(clean_engine, shop_id)["wb_orders"].status == "success"


async def test_a_sync_reaps_its_shops_dead_runs_when_it_takes_the_lease(
    clean_engine: Engine, world: World, clients: Clients, shops: dict[str, int]
) -> None:
    shop_id = shops["wb1"]
    # A run made under a lease that then expired unrenewed (as a killed process's does).
    lease = leases.take(clean_engine, shop_id=shop_id, kind="sync", seconds=600)
    assert lease is not None
    dead = start_run(clean_engine, shop_id=shop_id, stream="wb_stock", lease_token=lease.token)
    with clean_engine.begin() as conn:
        conn.execute(text("UPDATE sync_leases SET expires_at = clock_timestamp() - interval '1 second'"))
    # And one recorded before runs named their lease (no token), with no sync running now.
    legacy = start_run(clean_engine, shop_id=shop_id, stream="wb_cards")
    busy = leases.take(clean_engine, shop_id=shops["allegro1"], kind="sync", seconds=600)
    assert busy is not None
    other = start_run(clean_engine, shop_id=shops["allegro1"], stream="allegro_orders", lease_token=busy.token)
    reports = await sync_one(shop_id, clients=clients)
    with Session(clean_engine) as s:
        status = {r.id: (r.status, r.error) for r in s.scalars(select(SyncRun))}
    assert all(r.status == "success" for r in reports)
    assert status[dead][0] == status[legacy][0] == "failed" and status[dead][1].startswith("crashed:")
    # Another shop's run is left alone by this shop's sync, and by a reap of every shop: its
    # lease is alive.
    assert status[other] == ("running", None)
    assert reaping.reap(clean_engine, failing_after=timedelta(hours=1)) == []
