"""Token refresh: one at a time per shop, nothing lost, only invalid_grant means re-login."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from connectors.errors import ReauthRequired, TransientError
from flows.sync import sync_one
from sandbox.world import World
from storage.models import Shop
from storage.shops import credentials_of, pause_shop
from tasks.clients import Clients
from tasks.tokens import refresh_shop_token, shops_due

ALWAYS = timedelta(days=365)  # a refresh window every token falls into


def _refresh_calls(world: World, since: int = 0) -> int:
    return sum(1 for r in world.log.entries(host="allegro-auth", since_seq=since) if r.path == "/auth/oauth/token")


def _shop(engine: Engine, shop_id: int) -> Shop:
    with Session(engine, expire_on_commit=False) as s:
        return s.get(Shop, shop_id)


async def test_twenty_concurrent_refreshes_make_one_call_and_lose_nothing(
    clean_engine: Engine, world: World, clients: Clients, shops: dict[str, int]
) -> None:
    shop_id = shops["allegro1"]
    before = credentials_of(_shop(clean_engine, shop_id))
    results = await asyncio.gather(
        *(refresh_shop_token(clean_engine, clients, shop_id=shop_id, window=ALWAYS) for _ in range(20))
    )
    assert _refresh_calls(world) == 1
    stored = credentials_of(_shop(clean_engine, shop_id))
    assert stored["access_token"] != before["access_token"]
    assert all(r == stored for r in results)
    assert _shop(clean_engine, shop_id).status == "active"
    # The stored pair is the live one: a sync with it succeeds and refreshing again rotates it.
    reports = await sync_one(shop_id, clients=clients)
    assert all(r.status == "success" for r in reports)
    await refresh_shop_token(clean_engine, clients, shop_id=shop_id, window=ALWAYS)
    assert _refresh_calls(world) == 2


async def test_a_fresh_token_is_not_refreshed(
    clean_engine: Engine, world: World, clients: Clients, shops: dict[str, int]
) -> None:
    await refresh_shop_token(clean_engine, clients, shop_id=shops["allegro1"], window=timedelta(minutes=5))
    assert _refresh_calls(world) == 0
    assert shops_due(clean_engine, window=timedelta(minutes=5), now=world.now_dt()) == []
    assert shops_due(clean_engine, window=ALWAYS, now=world.now_dt()) == [shops["allegro1"]]


async def test_invalid_grant_marks_the_shop_needs_reauth(
    clean_engine: Engine, world: World, clients: Clients, shops: dict[str, int]
) -> None:
    secrets = credentials_of(_shop(clean_engine, shops["allegro1"]))
    world.revoke_allegro("allegro1")
    with pytest.raises(ReauthRequired):
        await refresh_shop_token(clean_engine, clients, shop_id=shops["allegro1"], window=ALWAYS)
    shop = _shop(clean_engine, shops["allegro1"])
    assert shop.status == "needs_reauth"
    assert shop.status_reason and all(v not in shop.status_reason for v in secrets.values())


async def test_network_failure_keeps_the_shop_active(
    clean_engine: Engine, world: World, clients: Clients, shops: dict[str, int]
) -> None:
    world.set_faults("allegro-auth:5xx=1")
    before = credentials_of(_shop(clean_engine, shops["allegro1"]))
    with pytest.raises(TransientError):
        await refresh_shop_token(clean_engine, clients, shop_id=shops["allegro1"], window=ALWAYS)
    shop = _shop(clean_engine, shops["allegro1"])
    assert shop.status == "active"
    assert credentials_of(shop) == before


async def test_a_lost_refresh_response_is_recovered_by_the_grace_period(
    clean_engine: Engine, world: World, clients: Clients, shops: dict[str, int]
) -> None:
    world.set_faults("allegro-auth:reuse=0.5")
    await refresh_shop_token(clean_engine, clients, shop_id=shops["allegro1"], window=ALWAYS)
    world.set_faults(None)
    # The first refresh rotated the pair and its answer was lost; the retry spent the old refresh
    # token again inside the grace period, and got the pair that is now stored.
    faults = [r.fault for r in world.log.entries(host="allegro-auth")]
    assert faults[0] == "reuse" and faults[-1] is None
    shop = _shop(clean_engine, shops["allegro1"])
    assert shop.status == "active"
    reports = await sync_one(shops["allegro1"], clients=clients)
    assert all(r.status == "success" for r in reports)


async def test_a_revoked_access_token_mid_sync_is_refreshed_once(
    clean_engine: Engine, world: World, clients: Clients, shops: dict[str, int]
) -> None:
    shop_id = shops["allegro1"]
    # The access token dies early (as after a password change elsewhere), the refresh token lives.
    pair = world.allegro_pair("allegro1")
    pair.access_dead = True
    reports = await sync_one(shop_id, clients=clients)
    assert all(r.status == "success" for r in reports), [(r.stream, r.error) for r in reports]
    assert _refresh_calls(world) == 1


async def test_a_paused_shop_keeps_its_login_alive(
    clean_engine: Engine, world: World, clients: Clients, shops: dict[str, int]
) -> None:
    # A refresh token unused for 3 months dies: a paused Allegro shop is refreshed like an active
    # one, so resuming it needs no new login. A removed one (its token dropped) is not.
    shop_id = shops["allegro1"]
    with Session(clean_engine) as s, s.begin():
        pause_shop(s, shop=s.get(Shop, shop_id), reason="paused by the operator")
    before = credentials_of(_shop(clean_engine, shop_id))
    assert shops_due(clean_engine, window=ALWAYS, now=world.now_dt()) == [shop_id]
    await refresh_shop_token(clean_engine, clients, shop_id=shop_id, window=ALWAYS)
    assert _refresh_calls(world) == 1
    paused = _shop(clean_engine, shop_id)
    assert paused.status == "disabled" and credentials_of(paused)["access_token"] != before["access_token"]
    with Session(clean_engine) as s, s.begin():
        s.get(Shop, shop_id).credentials = None  # removed: `shops remove` drops the token
    assert shops_due(clean_engine, window=ALWAYS, now=world.now_dt()) == []
