"""Sync control: start a sync or a backfill of a shop, read a run's status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import MemberShopDep, SessionDep, SyncLauncherDep
from api.errors import ApiError, not_found
from api.routes import AUTHED, errors
from api.routes.data import reap_before_showing
from api.schemas import BackfillIn, SyncRunOut, SyncStartedOut, SyncStatusOut
from connectors.timeutil import MSK
from connectors.wildberries.retention import history_window
from storage import queries
from storage.models import ShopStatus
from storage.people import MemberShop

router = APIRouter(prefix="/shops/{shop_id:int}/sync", tags=["sync"])

RunId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]


def _require_active(found: MemberShop) -> None:
    if found.shop.status != ShopStatus.active.value:
        raise ApiError(409, "shop_not_active", f"the shop is {found.shop.status}; reconnect it first")


@router.post("", status_code=202, response_model=SyncStartedOut, responses=errors(*AUTHED, 409, 503))
async def start_sync(found: MemberShopDep, launcher: SyncLauncherDep) -> SyncStartedOut:
    _require_active(found)
    return SyncStartedOut(run_id=await launcher.start_sync(found.shop.id), kind="sync")


@router.post("/backfill", status_code=202, response_model=SyncStartedOut, responses=errors(*AUTHED, 409, 503))
async def start_backfill(body: BackfillIn, found: MemberShopDep, launcher: SyncLauncherDep) -> SyncStartedOut:
    if body.until is not None and body.until < body.since:
        raise ApiError(422, "invalid_request", "`until` is before `since`")
    _require_active(found)
    run_id = await launcher.start_backfill(found.shop.id, body.streams, body.since, body.until)
    return SyncStartedOut(run_id=run_id, kind="backfill", notes=_backfill_notes(found, body))


def _backfill_notes(found: MemberShop, body: BackfillIn) -> list[str]:
    """WB statistics go back 90 days: a backfill asking for more reads less, and says so."""
    if found.shop.marketplace != "wb" or (body.streams and "orders" not in body.streams):
        return []
    now = datetime.now(UTC)
    note = history_window(body.since, body.until or now.astimezone(MSK).date(), now).note
    return [note] if note else []


@router.get("/{run_id}", response_model=SyncStatusOut, responses=errors(*AUTHED, 503))
async def run_status(
    run_id: RunId, session: SessionDep, found: MemberShopDep, launcher: SyncLauncherDep
) -> SyncStatusOut:
    reap_before_showing(session, found.shop.id)
    streams = queries.sync_runs_of_flow(session, shop_id=found.shop.id, flow_run_id=run_id)
    state = await launcher.status(run_id)
    if state is not None and state.shop_id not in (None, found.shop.id):
        state = None  # another shop's run: as if it did not exist
    if state is None and not streams:
        raise not_found("run")
    finished = state.finished if state else all(s.status != "running" for s in streams)
    return SyncStatusOut(
        run_id=run_id,
        state=state.state if state else None,
        finished=finished,
        streams=[SyncRunOut.model_validate(s) for s in streams],
    )
