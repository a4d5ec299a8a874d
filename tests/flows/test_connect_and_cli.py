"""connect-allegro's two halves against the sandbox (every new shop gets an owner), prefect.yaml."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from connectors.errors import AccessDenied
from flows.connect import LoginRefused, begin_login, complete_login
from sandbox.world import World
from storage.models import Membership, Shop
from storage.people import register_person
from storage.shops import credentials_of
from tests.flows.conftest import clients_for, make_sandbox

ROOT = Path(__file__).resolve().parents[2]


OWNER = 4242


@pytest.fixture
def owner(clean_engine: Engine) -> int:
    with Session(clean_engine) as s, s.begin():
        return register_person(s, telegram_id=OWNER, profile={})[0].id


async def test_device_login_creates_an_active_shop_with_encrypted_tokens(clean_engine: Engine, owner: int) -> None:
    app = make_sandbox(auto_approve=True)
    async with clients_for(app) as clients:
        device = await begin_login(clients)
        assert device.user_code and device.verification_uri
        shop_id = await complete_login(clean_engine, clients, device, name="my allegro", owner_telegram_id=OWNER)
    with Session(clean_engine) as s:
        shop = s.get(Shop, shop_id)
        assert (shop.marketplace, shop.status, shop.name) == ("allegro", "active", "my allegro")
        creds = credentials_of(shop)
        assert creds["access_token"].encode() not in shop.credentials
        assert shop.token_expires_at is not None
        assert s.get(Membership, (shop_id, owner)).role == "owner"


async def test_a_login_that_would_reach_nobody_is_refused(clean_engine: Engine, monkeypatch) -> None:
    """Invariant 8: no owner given, none configured -> no shop (an ownerless one notifies nobody)."""
    monkeypatch.delenv("SELLERPULSE_DEFAULT_OWNER", raising=False)
    app = make_sandbox(auto_approve=True)
    async with clients_for(app) as clients:
        with pytest.raises(LoginRefused, match="owner"):
            await complete_login(clean_engine, clients, await begin_login(clients), name="nobody's")
    with Session(clean_engine) as s:
        assert s.scalars(select(Shop)).all() == []


async def test_a_refused_login_creates_nothing(clean_engine: Engine) -> None:
    app = make_sandbox()
    world: World = app.state.world
    async with clients_for(app) as clients:
        device = await begin_login(clients)
        world.deny_device(device.user_code)
        with pytest.raises(AccessDenied):
            await complete_login(clean_engine, clients, device, name="refused")
    with Session(clean_engine) as s:
        assert s.scalars(select(Shop)).all() == []


async def test_reconnecting_reactivates_the_same_shop(clean_engine: Engine, owner: int) -> None:
    app = make_sandbox(auto_approve=True)
    async with clients_for(app) as clients:
        first = await complete_login(
            clean_engine, clients, await begin_login(clients), name="a", owner_telegram_id=OWNER
        )
        with Session(clean_engine) as s, s.begin():
            s.get(Shop, first).status = "needs_reauth"
        again = await complete_login(clean_engine, clients, await begin_login(clients), name="a", shop_id=first)
    assert again == first
    with Session(clean_engine) as s:
        assert s.get(Shop, first).status == "active"


def test_prefect_yaml_declares_every_deployment_with_a_real_entrypoint() -> None:
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in config["deployments"]}
    assert set(deployments) == {
        "sync-all",
        "sync-batch",
        "read-wb-feeds",
        "refresh-tokens",
        "sync-shop",
        "backfill",
        "connect-allegro",
    }
    for name, d in deployments.items():
        module, _, attr = d["entrypoint"].partition(":")
        flow = getattr(importlib.import_module(module.removesuffix(".py").replace("/", ".")), attr)
        assert flow.name == name
    assert deployments["sync-all"]["schedules"][0]["interval"] == 180
    assert deployments["read-wb-feeds"]["schedules"][0]["interval"] == 60  # WB: 1 feed request/min
    assert deployments["refresh-tokens"]["schedules"][0]["interval"] == 1800
    assert "schedules" not in deployments["backfill"]
    # On workers, sync-all fans out onto the pool (flows.fanout) instead of syncing in its own process.
    assert deployments["sync-all"]["parameters"] == {"fan_out": True}
    # The heartbeat comes from the workers' environment (FLOW_HEARTBEAT_SECONDS, flows.zombies):
    # a fixed one here could disagree with the automation's window and crash live runs.
    for d in deployments.values():
        assert "PREFECT_FLOWS_HEARTBEAT_FREQUENCY" not in d["work_pool"].get("job_variables", {}).get("env", {})


async def test_scheduled_syncs_start_soon_after_serving_then_keep_their_interval() -> None:
    from prefect.server.schemas.schedules import IntervalSchedule

    from flows.deployments import FIRST_RUN_AFTER, every

    now = datetime.now(UTC)
    schedule = every(180, now=now)
    # What Prefect's scheduler makes of it: the first run soon, not a whole interval later.
    first, second = await IntervalSchedule(interval=schedule.interval, anchor_date=schedule.anchor_date).get_dates(
        2, start=now
    )
    assert first - now == FIRST_RUN_AFTER <= timedelta(seconds=30)
    assert second - first == timedelta(seconds=180)
