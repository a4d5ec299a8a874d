"""The local cluster (issue 16): `sellerpulse cluster` with 2 workers against the sandbox syncs
20 shops; a worker killed with SIGKILL in the middle of a batch loses and duplicates nothing,
its run is marked Crashed, and the next cycles sync every shop to the marketplace's truth.

Real processes: the Prefect server on PostgreSQL, two `prefect worker`s running the deployments
of prefect.yaml, the API, the bot and the Telegram stand-in. The sandbox's clock is frozen,
then moved 4 hours on (new orders, sales, reviews, stock changes: notifications).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from flows.cluster import wait_for_state
from flows.demo import sandbox_server
from flows.prefect_server import free_port
from sandbox import SandboxConfig
from storage.models import Shop, SyncRun
from tests.cli.conftest import SELLERPULSE, Sandbox, cli_env
from tests.flows.conftest import add_shops
from tests.flows.truth import assert_allegro_matches, assert_wb_matches
from tests.notify.scenario import add_owners, assert_notified_once

# Minutes of real processes (a Prefect server, workers, a zombie window): not in the default run.
pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.flows, pytest.mark.timeout(1200)]

PER_MARKETPLACE = 10
HEARTBEAT, ZOMBIE_AFTER = 30, 90  # a run starting on a busy machine takes ~30 s to its first heartbeat


def _wait_for(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


async def _batch_runs() -> list:
    async with get_client() as client:
        return await client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["sync-batch"])), limit=200
        )


# The streams whose data moves with the clock (cards are re-read hourly, the Allegro history once).
LIVE = {"wb_orders", "wb_sales", "wb_stock", "wb_reviews", "allegro_offers", "allegro_orders", "allegro_returns"}


def _synced_since(engine: Engine, since: datetime) -> set[int]:
    """Shops every live stream of which succeeded in a run started after `since`."""
    with Session(engine) as s:
        rows = s.execute(
            select(SyncRun.shop_id, func.count(func.distinct(SyncRun.stream)))
            .where(SyncRun.kind == "sync", SyncRun.status == "success", SyncRun.started_at > since)
            .where(SyncRun.stream.in_(LIVE))
            .group_by(SyncRun.shop_id)
        ).all()
        markets = dict(s.execute(select(Shop.id, Shop.marketplace)).tuples().all())
    wanted = {"wb": 4, "allegro": 3}
    return {shop for shop, n in rows if n == wanted[markets[shop]]}


def _stop(cluster: subprocess.Popen[bytes], pids: Path) -> None:
    """Stop it as an operator would; whatever it started that is still there is killed."""
    started = [int(p) for p in pids.read_text().split()] if pids.exists() else []
    cluster.send_signal(signal.SIGTERM)
    try:
        cluster.wait(timeout=60)
    except subprocess.TimeoutExpired:
        cluster.kill()
        cluster.wait(timeout=30)
    for pid in started:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def _drop_database(url: str, name: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_two_workers_sync_twenty_shops_and_a_killed_worker_loses_and_duplicates_nothing(
    tmp_path: Path, clean_engine: Engine, database_url: str
) -> None:
    scenario = f"fleet:wb_shops={PER_MARKETPLACE},allegro_shops={PER_MARKETPLACE}"
    # Slow answers now and then: batches last long enough to be killed in the middle.
    # The workers' clients use the wall clock as the marketplaces' "now" (shops' notify_from):
    # the sandbox's frozen clock starts there too.
    start = datetime.now(UTC).replace(microsecond=0)
    config = replace(
        SandboxConfig(rate_limits=False), scenario=scenario, faults="*:slow=0.2", slow_seconds=0.5, start=start
    )
    with sandbox_server(config, free_port()) as (url, world):
        shops = add_shops(clean_engine, world)
        add_owners(clean_engine, world, shops)
        ids = set(shops.values())
        env = cli_env(Sandbox(url, world), tmp_path)  # the test's data dir: its secret key
        env.update(
            SYNC_INTERVAL_SECONDS="30",
            SYNC_BATCH_SIZE="5",  # 2 batches per marketplace, on 2 workers
            SYNC_QUEUE_LIMIT_WB="3",
            SYNC_QUEUE_LIMIT_ALLEGRO="3",
            FLOW_HEARTBEAT_SECONDS=str(HEARTBEAT),
            ZOMBIE_AFTER_SECONDS=str(ZOMBIE_AFTER),
            PREFECT_WORKER_QUERY_SECONDS="2",
            MARKETPLACE_RATE_SCALE="120",  # WB's 1/min is 2/s here: the sandbox's clock does not run
        )
        prefect_db = f"{make_url(database_url).database}_prefect"
        state_file = tmp_path / "state.json"
        log = tmp_path / "cluster.log"
        with log.open("ab") as out:
            cluster = subprocess.Popen(
                [SELLERPULSE, "cluster", "--workers", "2", "--state-file", str(state_file)],
                env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        try:
            state = wait_for_state(state_file, cluster, timeout=420)
            assert len(state.workers()) == 2 and state.prefect_database == prefect_db
            with temporary_settings(updates={PREFECT_API_URL: state.prefect_api}):
                _kill_a_worker_mid_batch_and_check(state, clean_engine, world, shops, ids)
            cluster.send_signal(signal.SIGTERM)
            assert cluster.wait(timeout=90) == 0
            text = log.read_text()
            assert "worker-" in text and "exited with code -9: not restarted" in text and "stopped" in text
            for part in state.parts:  # every process it started, and their children, are gone
                assert not psutil.pid_exists(part.pid) or psutil.Process(part.pid).status() == psutil.STATUS_ZOMBIE
        finally:
            _stop(cluster, state_file.with_suffix(".pids"))
            _drop_database(make_url(database_url).set(drivername="postgresql").render_as_string(False), prefect_db)


def _kill_a_worker_mid_batch_and_check(state, engine: Engine, world, shops: dict[str, int], ids: set[int]) -> None:
    def running_batch():
        """A worker and the batch runs its flow-run processes are running."""
        runs = [r for r in asyncio.run(_batch_runs()) if r.state and r.state.is_running() and r.infrastructure_pid]
        for part in state.workers():
            children = {p.pid for p in psutil.Process(part.pid).children(recursive=True)}
            mine = [r for r in runs if int(str(r.infrastructure_pid).rsplit(":", 1)[-1]) in children]
            if mine:
                return part, mine
        return None

    victim, running = _wait_for("a batch running on a worker", running_batch, 150)
    # The worker and every flow-run process it started (they run in sessions of their own), at
    # once and without a chance to report anything: a machine dying.
    doomed = [psutil.Process(victim.pid), *psutil.Process(victim.pid).children(recursive=True)]
    for proc in doomed:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGKILL)
    killed = {r.id for r in running}

    killed_at, killed_wall = time.monotonic(), datetime.now(UTC)

    # Every shop's first sync ends on the surviving worker (the dead batch's shops in later cycles).
    def first_syncs_done():
        with Session(engine) as s:
            done = s.scalar(select(func.count()).select_from(Shop).where(Shop.notify_from.is_not(None)))
        return done == len(ids)

    _wait_for("every shop's first sync", first_syncs_done, 240)
    world.advance(4 * 3600)  # live activity: orders, sales, reviews, stock changes
    moved = datetime.now(UTC)
    _wait_for("a full sync of every shop after the activity", lambda: _synced_since(engine, moved) == ids, 240)

    for name, shop_id in shops.items():
        (assert_wb_matches if name.startswith("wb") else assert_allegro_matches)(engine, world, name, shop_id)
    assert_notified_once(engine, world, shops)
    # A stream the dead worker was running is not left `running`: reaped (marked failed, crashed)
    # when its shop was next synced. (Whether one was in flight depends on the moment of the kill.)
    with Session(engine) as s:
        stale = s.scalar(
            select(func.count())
            .select_from(SyncRun)
            .where(SyncRun.status == "running", SyncRun.started_at < killed_wall)
        )
    assert stale == 0

    # Its flow runs, silent since, are marked Crashed by the zombie automation (they held slots
    # of their queue meanwhile: the other batches went on in the free ones).
    def crashed():
        runs = {r.id: r for r in asyncio.run(_batch_runs())}
        found = [runs[i] for i in killed if runs[i].state and runs[i].state.is_final()]
        return found if len(found) == len(killed) else None

    dead = _wait_for(
        "the killed batch to be marked Crashed", crashed, max(10, ZOMBIE_AFTER + 120 - (time.monotonic() - killed_at))
    )
    assert all(r.state.is_crashed() and "no heartbeat" in (r.state.message or "") for r in dead), [
        (r.name, r.state.name, r.state.message) for r in dead
    ]
