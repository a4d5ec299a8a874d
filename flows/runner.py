"""Start a flow: as a run of its deployment when a Prefect server is configured, else in-process."""

from __future__ import annotations

from typing import Any

from prefect import Flow
from prefect.deployments import run_deployment

from flows.deployments import deployment_name
from flows.prefect_server import configured_api_url


async def run_flow(flow: Flow[..., Any], parameters: dict[str, Any], *, wait: bool = True) -> Any:
    """Returns the flow's result in-process, or the FlowRun of the deployment run."""
    if configured_api_url():
        return await run_deployment(deployment_name(flow), parameters=parameters, timeout=None if wait else 0)
    return await flow(**parameters)
