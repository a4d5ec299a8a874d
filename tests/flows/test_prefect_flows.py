"""End to end under Prefect: the flows as deployed run, name their runs, and leave artifacts.

One Prefect test harness for the whole module (it costs ~15 s); the logic below the flows is
tested without Prefect in the other modules.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort
from prefect.testing.utilities import prefect_test_harness
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from connectors.http import Timeouts
from flows.backfill import backfill
from flows.sync import sync_all, sync_batch, sync_shop
from flows.tokens import refresh_tokens
from sandbox.world import World
from storage.models import Shop, SyncRun
from storage.sync_state import database_now
from tasks.clients import set_client_factory
from tests.flows.conftest import clients_for
from tests.flows.truth import assert_allegro_matches, assert_wb_matches


@pytest.fixture(scope="module", autouse=True)
def harness() -> Iterator[None]:
    with prefect_test_harness(server_startup_timeout=60):
        yield


async def _artifact(key: str) -> str:
    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), sort=ArtifactSort.CREATED_DESC
        )
    assert found, f"no artifact {key}"
    return str(found[0].data)


async def test_sync_all_flow_syncs_every_shop_and_summarises(
    clean_engine: Engine, world: World, clients, shops: dict[str, int]
) -> None:
    result = await sync_all(concurrency=2)
    assert result == {shop_id: "ok" for shop_id in shops.values()}
    assert_wb_matches(clean_engine, world, "wb1", shops["wb1"])
    assert_allegro_matches(clean_engine, world, "allegro1", shops["allegro1"])
    summary = await _artifact(f"sync-summary-wb1-{shops['wb1']}")
    assert "| wb_orders | success |" in summary
    assert "**Retries**: none" in summary and "**Notifications created**: 0" in summary  # a silent first sync
    assert "| wb_orders | `{" in summary  # the cursor it reached
    with Session(clean_engine) as s:
        runs = s.scalars(select(SyncRun)).all()
    assert runs and all(r.flow_run_id for r in runs)
    async with get_client() as client:
        flow_run = await client.read_flow_run(runs[0].flow_run_id)
    assert flow_run.name.startswith(("sync-wb-wb1-", "sync-allegro-allegro1-"))


async def test_sync_shop_flow_fails_visibly_when_a_stream_fails(
    clean_engine: Engine, world: World, clients, shops: dict[str, int]
) -> None:
    world.set_faults("wb-feedbacks:5xx=1")
    seq = max((r.seq for r in world.log.entries()), default=0)
    with pytest.raises(RuntimeError, match="reviews"):
        await sync_shop(shops["wb1"])
    summary = await _artifact(f"sync-summary-wb1-{shops['wb1']}")
    assert "| wb_reviews | failed |" in summary and "| wb_orders | success |" in summary
    assert "**Retries**: wb_reviews 3" in summary
    # The stream was retried as a task (3 retries) after each call's own retries (6 attempts).
    feedback_calls = [r for r in world.log.entries(host="wb-feedbacks", since_seq=seq)]
    assert len(feedback_calls) == 4 * 6


async def test_backfill_flow_reports_progress(
    clean_engine: Engine, world: World, clients, shops: dict[str, int]
) -> None:
    today = world.now_dt().date()
    await backfill(shops["allegro1"], today - timedelta(days=5), today)
    async with get_client() as client:
        artifacts = await client.read_artifacts(sort=ArtifactSort.CREATED_DESC)
    progress = [a for a in artifacts if a.type == "progress"]
    assert progress and progress[0].data == 100.0


async def test_refresh_tokens_flow_refreshes_due_tokens(
    clean_engine: Engine, world: World, clients, shops: dict[str, int]
) -> None:
    assert await refresh_tokens(window_seconds=3600) == {}
    result = await refresh_tokens(window_seconds=400 * 86400)
    assert result == {shops["allegro1"]: "ok"}
    with Session(clean_engine) as s:
        assert s.get(Shop, shops["allegro1"]).status == "active"


async def test_the_api_launcher_starts_runs_of_the_served_deployments(shops: dict[str, int]) -> None:
    """The API's sync control against a real Prefect server: a run of the deployment, readable
    by id with its shop; a deployment nobody serves is a 503, not a 500."""
    from datetime import date

    from api.errors import ApiError
    from api.services.sync import PrefectSyncLauncher
    from flows.deployments import build
    from sellerpulse.settings import get_settings

    served = {d.name: d for d in await build(get_settings())}
    await served["sync-shop"].apply()
    launcher = PrefectSyncLauncher()
    run_id = await launcher.start_sync(shops["wb1"])
    state = await launcher.status(run_id)
    assert state is not None and state.run_id == run_id
    assert state.shop_id == shops["wb1"] and state.state == "Scheduled" and not state.finished
    assert await launcher.status("00000000-0000-0000-0000-000000000000") is None
    async with get_client() as client:
        await client.delete_deployment((await client.read_deployment_by_name("sync-shop/sync-shop")).id)
    with pytest.raises(ApiError) as refused:
        await launcher.start_backfill(shops["wb1"], None, date(2026, 11, 1), None)
    assert refused.value.status == 503


async def test_an_unreachable_host_fails_its_stream_within_the_budget_and_the_rest_go_on(
    clean_engine: Engine, sandbox_app, world: World, shops: dict[str, int]
) -> None:
    world.set_faults("wb-feedbacks:down=1")
    set_client_factory(
        lambda: clients_for(sandbox_app, timeouts=Timeouts(connect=0.2), stream_retry_budget_seconds=1.0)
    )
    try:
        result = await sync_all(concurrency=2)
    finally:
        set_client_factory(None)
    assert result == {shops["wb1"]: "failed", shops["allegro1"]: "ok"}
    with Session(clean_engine) as s:
        runs = {r.stream: r for r in s.scalars(select(SyncRun).where(SyncRun.shop_id == shops["wb1"]))}
    assert {k: r.status for k, r in runs.items()} == {
        "wb_cards": "success",
        "wb_feed": "success",
        "wb_orders": "success",
        "wb_sales": "success",
        "wb_stock": "success",
        "wb_reviews": "failed",
    }
    error = runs["wb_reviews"].error
    assert (
        error.startswith("RetryBudgetSpent: gave up after") and "http://sandbox/wb-feedbacks/api/v1/feedbacks" in error
    )
    assert world.wb_token("wb1") not in error and "take=" not in error
    # One request's retries at most: the budget ended it, and its task was not retried again.
    attempts = world.log.entries(host="wb-feedbacks")
    assert 1 <= len(attempts) <= 6 and {r.fault for r in attempts} == {"down"}
    assert_allegro_matches(clean_engine, world, "allegro1", shops["allegro1"])


async def _task_run_names(flow_run_id, want: int) -> list[str]:
    """The names of a flow run's task runs, once `want` of them have ended (the server records
    them from the run's events, a moment later)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = asyncio.get_running_loop().time() + 30
    while True:
        async with get_client() as client:
            runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        if sum(1 for r in runs if r.state and r.state.is_final()) >= want:
            return sorted(r.name for r in runs)
        assert asyncio.get_running_loop().time() < deadline, f"task runs so far: {[r.name for r in runs]}"
        await asyncio.sleep(0.5)


async def test_a_batch_run_syncs_each_shop_as_one_task_run_and_retries_a_stream_inside_it(
    clean_engine: Engine, world: World, clients, sandbox_app, shops: dict[str, int]
) -> None:
    ids = sorted(shops.values())
    set_client_factory(lambda: clients_for(sandbox_app, sync_shop_task_runs=True))  # SYNC_SHOP_TASK_RUNS=true
    state = await sync_batch(ids, concurrency=2, since=database_now(clean_engine), stay_seconds=0, return_state=True)
    assert await state.result() == {str(i): "ok" for i in ids}
    assert_wb_matches(clean_engine, world, "wb1", shops["wb1"])
    assert_allegro_matches(clean_engine, world, "allegro1", shops["allegro1"])
    # One task run per shop, not one per stream (a fifth of the records on the Prefect server).
    names = await _task_run_names(state.state_details.flow_run_id, len(ids))
    assert names == sorted(f"sync-streams-shop-{i}" for i in ids)

    # A stream failing again and again is retried inside its shop's task run as its own task
    # would be (3 retries after each call's own 6 attempts); the other shop is not held up.
    world.set_faults("wb-feedbacks:5xx=1")
    seq = max((r.seq for r in world.log.entries()), default=0)
    state = await sync_batch(ids, concurrency=2, since=database_now(clean_engine), stay_seconds=0, return_state=True)
    assert state.is_failed() and f"[{shops['wb1']}]" in (state.message or "")
    assert len(world.log.entries(host="wb-feedbacks", since_seq=seq)) == 4 * 6
    run_id = str(state.state_details.flow_run_id)
    with Session(clean_engine) as s:
        query = select(SyncRun.status).where(SyncRun.stream == "wb_reviews", SyncRun.flow_run_id == run_id)
        reviews = s.scalars(query).all()
    assert sorted(reviews) == ["failed"] * 4  # a record per try


async def test_a_batch_run_can_sync_its_shops_in_its_body_retried_alike(
    clean_engine: Engine, world: World, sandbox_app, shops: dict[str, int]
) -> None:
    # SYNC_SHOP_TASK_RUNS=false (the default): no task run per shop (nothing for the server to
    # record), the same retries, the same failure verdict, the other shop not held up.
    ids = sorted(shops.values())
    set_client_factory(lambda: clients_for(sandbox_app))
    try:
        world.set_faults("wb-feedbacks:5xx=1")
        state = await sync_batch(
            ids, concurrency=2, since=database_now(clean_engine), stay_seconds=0, return_state=True
        )
        assert state.is_failed() and f"[{shops['wb1']}]" in (state.message or "")
        assert len(world.log.entries(host="wb-feedbacks")) == 4 * 6  # 3 retries after 6 attempts each
        assert_allegro_matches(clean_engine, world, "allegro1", shops["allegro1"])
        in_body = state.state_details.flow_run_id

        # A batch with task runs after it: once the server has recorded its shops' task runs, it
        # has had every event of the first run too.
        world.set_faults(None)
        set_client_factory(lambda: clients_for(sandbox_app, sync_shop_task_runs=True))
        later = await sync_batch(
            ids, concurrency=2, since=database_now(clean_engine), stay_seconds=0, return_state=True
        )
        assert len(await _task_run_names(later.state_details.flow_run_id, len(ids))) == len(ids)
        assert await _task_run_names(in_body, 0) == []
    finally:
        set_client_factory(None)
