"""Zombie runs: a flow run whose worker died is marked Crashed, so it never blocks the schedule.

Prefect's own mechanism (docs: "How to detect and respond to zombie flows"): every flow run
sends a `prefect.flow-run.heartbeat` event every PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds,
and an automation on the server moves a run that has sent a heartbeat and then nothing (no
heartbeat, no final state) for `zombie_after_seconds` to Crashed; so is a run that went Pending
or Running and then sent nothing (its worker died while it started). A crashed run releases its
deployment concurrency slot, so the next scheduled sync-all runs instead of being cancelled
with "Deployment concurrency limit reached".

`sellerpulse serve` and the demo set the heartbeat for the runs they serve and create the
automation; a worker install runs `sellerpulse prefect-setup` once, and its workers' environment
gives their runs the heartbeat (PREFECT_FLOWS_HEARTBEAT_FREQUENCY = FLOW_HEARTBEAT_SECONDS,
deployments/README.md): every run must send one, or the automation takes it for dead.
"""

from __future__ import annotations

import os
from datetime import timedelta

from prefect.automations import Automation
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification

from sellerpulse.settings import Settings

AUTOMATION_NAME = "sellerpulse: crash zombie flow runs"
HEARTBEAT_ENV = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"
FINAL_EVENTS = {f"prefect.flow-run.{state}" for state in ("Completed", "Failed", "Cancelled", "Crashed")}
# A run whose worker dies while it starts (the pull step, the imports) has sent no heartbeat
# yet: from Pending or Running on, a heartbeat (the engine sends one as it begins) or a final
# state is expected within the window too, or such a run would hold its slots for ever.
STARTED_EVENTS = {f"prefect.flow-run.{state}" for state in ("Pending", "Running")}


def heartbeat_env(settings: Settings) -> dict[str, str]:
    """What the processes that run flows need in their environment to send heartbeats."""
    return {HEARTBEAT_ENV: str(settings.flow_heartbeat_seconds)}


def set_heartbeat(settings: Settings) -> None:
    """For flow runs started from this process (`serve` runs each in a child that inherits it)."""
    os.environ.update(heartbeat_env(settings))


def zombie_automation(settings: Settings) -> Automation:
    return Automation(
        name=AUTOMATION_NAME,
        description=(
            f"A flow run that started or sent a heartbeat (every {settings.flow_heartbeat_seconds} s) and then "
            f"nothing for {settings.zombie_after_seconds} s lost its worker: mark it Crashed so it no longer "
            "holds its slot."
        ),
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat", *STARTED_EVENTS},
            expect={"prefect.flow-run.heartbeat", *STARTED_EVENTS, *FINAL_EVENTS},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=settings.zombie_after_seconds),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"no heartbeat for {settings.zombie_after_seconds} s: its worker or machine died",
            )
        ],
    )


async def ensure_zombie_automation(settings: Settings) -> str:
    """Create the automation on the configured server, or bring an existing one up to date."""
    wanted = zombie_automation(settings)
    try:
        existing = await Automation.aread(name=AUTOMATION_NAME)
    except ValueError:  # not found
        await wanted.acreate()
        return AUTOMATION_NAME
    wanted.id = existing.id
    await wanted.aupdate()
    return AUTOMATION_NAME
