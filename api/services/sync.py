"""Starting syncs and backfills: flow runs of the Prefect deployments, when a server is configured."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol
from uuid import UUID

from api.errors import ApiError

log = logging.getLogger("sellerpulse.api.sync")

SYNC_DEPLOYMENT = "sync-shop/sync-shop"
BACKFILL_DEPLOYMENT = "backfill/backfill"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@dataclass(frozen=True)
class RunState:
    run_id: str
    shop_id: int | None  # from the run's parameters: scopes status reads
    state: str | None
    finished: bool


class SyncLauncher(Protocol):
    async def start_sync(self, shop_id: int) -> str: ...

    async def start_backfill(self, shop_id: int, streams: list[str] | None, since: date, until: date | None) -> str: ...

    async def status(self, run_id: str) -> RunState | None: ...


def _unavailable(message: str) -> ApiError:
    return ApiError(503, "unavailable", message)


def prefect_api_url() -> str | None:
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


class PrefectSyncLauncher:
    """Creates flow runs of the deployments (`timeout=0`: return at once, workers run them)."""

    def _require_server(self) -> None:
        if not prefect_api_url():
            raise _unavailable("no Prefect server configured (set PREFECT_API_URL)")

    async def _run(self, name: str, parameters: dict[str, Any]) -> str:
        self._require_server()
        from prefect.deployments import run_deployment

        try:
            run = await run_deployment(name=name, parameters=parameters, timeout=0)
        except Exception as exc:  # noqa: BLE001 - unreachable server, unknown deployment: the same to the caller
            log.warning("could not start %s: %s", name, type(exc).__name__)
            raise _unavailable("could not start the run; is the deployment served?") from None
        return str(run.id)

    async def start_sync(self, shop_id: int) -> str:
        return await self._run(SYNC_DEPLOYMENT, {"shop_id": shop_id})

    async def start_backfill(self, shop_id: int, streams: list[str] | None, since: date, until: date | None) -> str:
        params: dict[str, Any] = {"shop_id": shop_id, "since": since.isoformat()}
        if until is not None:
            params["until"] = until.isoformat()
        if streams:
            params["streams"] = streams
        return await self._run(BACKFILL_DEPLOYMENT, params)

    async def status(self, run_id: str) -> RunState | None:
        try:
            uuid = UUID(run_id)
        except ValueError:
            return None
        if not prefect_api_url():
            return None  # the sync_runs table still answers
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        try:
            async with get_client() as client:
                run = await client.read_flow_run(uuid)
        except ObjectNotFound:
            return None
        except Exception as exc:  # noqa: BLE001
            log.warning("could not read flow run: %s", type(exc).__name__)
            raise _unavailable("could not reach the Prefect server") from None
        state = run.state.type.value if run.state else None
        shop = run.parameters.get("shop_id")
        return RunState(run_id, int(shop) if shop is not None else None, run.state_name, state in TERMINAL)
