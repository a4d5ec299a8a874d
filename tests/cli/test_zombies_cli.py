"""A served run whose process dies is marked Crashed by the heartbeat automation and never blocks
the next scheduled run; with PREFECT_API_URL the CLI runs the deployment (issue 13, points 6
and 9; issue 11, part 6: no telemetry from any process).

Real processes on a real Prefect server (started as sellerpulse starts one): `sellerpulse serve`
is killed with SIGKILL, its whole process group, in the middle of a sync-all run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName, FlowRunFilter
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from flows.prefect_server import free_port, prefect_server
from storage.people import register_person
from storage.shops import create_shop
from tests.cli.conftest import SELLERPULSE, cli_env
from tests.cli.test_demo_cli import _telemetry_of

# Two serve processes, three flow-run processes and a Prefect server, and heartbeats that must
# go missing: two to three minutes on a 2-core machine, so it runs with `-m slow`, not by default.
pytestmark = [pytest.mark.slow, pytest.mark.flows, pytest.mark.timeout(600)]

HEARTBEAT, ZOMBIE_AFTER = 30, 40  # Prefect's shortest heartbeat; the automation's window


async def _sync_all_runs() -> list:
    async with get_client() as client:
        return await client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["sync-all"])),
            flow_run_filter=FlowRunFilter(),
        )


def _wait_for(what: str, check, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = asyncio.run(check())
        if found:
            return found
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def _serve(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [SELLERPULSE, "serve"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its flow runs are in its process group: killed with it
    )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def test_a_killed_worker_leaves_no_zombie_run_blocking_the_schedule(
    sandbox_on_a_port, tmp_path: Path, clean_engine: Engine
) -> None:
    world = sandbox_on_a_port.world
    pair = world.allegro_pair("allegro1")
    with Session(clean_engine) as s, s.begin():
        owner, _ = register_person(s, telegram_id=31, profile={})
        shop_id = create_shop(
            s,
            marketplace="allegro",
            name="AL",
            credentials={"access_token": pair.access_token, "refresh_token": pair.refresh_token},
            owner_id=owner.id,
        ).id
    log = tmp_path / "serve.log"
    serves: list[subprocess.Popen[bytes]] = []
    with prefect_server(tmp_path / "prefect-data", port=free_port()) as api_url:
        env = cli_env(sandbox_on_a_port, tmp_path, PREFECT_API_URL=api_url)
        env.update(FLOW_HEARTBEAT_SECONDS=str(HEARTBEAT), ZOMBIE_AFTER_SECONDS=str(ZOMBIE_AFTER))
        env.update(SYNC_INTERVAL_SECONDS="3600")  # one scheduled sync-all, ~15 s after serving starts
        env.update(WB_FEED_INTERVAL_SECONDS="3600")  # and no feed runs every minute beside it
        env.update(PREFECT_RUNNER_POLL_FREQUENCY="2")  # serve picks up runs sooner than every 10 s
        try:
            setup = subprocess.run([SELLERPULSE, "prefect-setup"], env=env, capture_output=True, text=True)
            assert setup.returncode == 0 and "marked Crashed" in setup.stdout, setup.stderr

            world.set_faults("allegro-api:timeout=1")  # the sync hangs on Allegro: a long run
            serves.append(_serve(env, log))

            async def running():
                return [r for r in await _sync_all_runs() if r.state and r.state.is_running()]

            (victim,) = _wait_for("the scheduled sync-all to run", running, 120)
            time.sleep(3)  # its first heartbeat is on its way
            flow_run_process = psutil.Process(serves[0].pid).children(recursive=True)
            assert flow_run_process, "serve runs each flow run in a child process"
            assert {_telemetry_of(p.pid) for p in flow_run_process} == {("1", "false")}
            _kill(serves[0])
            killed_at = datetime.now(UTC)

            async def crashed():
                async with get_client() as client:
                    run = await client.read_flow_run(victim.id)
                return run if run.state and run.state.is_crashed() else None

            dead = _wait_for("the zombie run to be marked Crashed", crashed, ZOMBIE_AFTER + 60)
            assert "no heartbeat" in (dead.state.message or "")

            world.set_faults(None)
            serves.append(_serve(env, log))

            async def next_run():
                later = [r for r in await _sync_all_runs() if r.created and r.created > killed_at]
                final = [r for r in later if r.state and r.state.is_final()]
                return final or None

            (after,) = _wait_for("the next scheduled sync-all to finish", next_run, 150)
            assert after.state.is_completed(), after.state  # not "Deployment concurrency limit reached"

            # With PREFECT_API_URL, `sellerpulse sync` is a run of the deployment, reported as in-process.
            synced = subprocess.run(
                [SELLERPULSE, "sync", "--shop", "AL", "--json"], env=env, capture_output=True, text=True, timeout=180
            )
            assert synced.returncode == 0, synced.stderr
            assert "started flow run" in synced.stderr
            result = json.loads(synced.stdout)
            assert result["flow_run_state"] == "Completed" and result["flow_run_id"]
            (shop,) = result["shops"]
            assert shop["shop_id"] == shop_id and shop["status"] == "success"
            streams = {s["stream"] for s in shop["streams"]}
            assert streams == {"allegro_offers", "allegro_orders", "allegro_history", "allegro_returns"}

            server = [
                p for p in psutil.Process().children() if "server" in p.cmdline() and "prefect" in str(p.cmdline())
            ]
            assert server and _telemetry_of(server[0].pid) == ("1", "false")
        finally:
            world.set_faults(None)
            for proc in serves:
                _kill(proc)
            print(log.read_text(errors="replace")[-4000:])
