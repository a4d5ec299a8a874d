"""Fault spec parsing, determinism, and the effect of every fault kind."""

from __future__ import annotations

import json

import httpx
import pytest

from sandbox.faults import FaultSpecError, parse_faults
from tests.sandbox.conftest import allegro_headers, client_for, wb_headers

ORDERS = "/wb-statistics/api/v1/supplier/orders"
FEEDBACKS = "/wb-feedbacks/api/v1/feedbacks"
FB_PARAMS = {"isAnswered": "false", "take": 10, "skip": 0}


def test_parse_spec_and_host_override() -> None:
    plan = parse_faults("wb-statistics:429=0.2,5xx=0.1;allegro-api:reset=0.05,truncate=0.05;*:slow=0.1,5xx=0.3")
    assert plan.value("wb-statistics", "429") == 0.2
    assert plan.value("wb-statistics", "5xx") == 0.1  # own entry beats *
    assert plan.value("wb-content", "5xx") == 0.3 and plan.value("allegro-api", "slow") == 0.1
    assert plan.value("wb-content", "reset") == 0.0
    assert parse_faults(plan.to_spec()) == plan
    assert parse_faults("allegro-api:gap=3600").value("allegro-api", "gap") == 3600


@pytest.mark.parametrize(
    "spec",
    [
        "nohost:429=0.1",
        "wb-content:boom=0.1",
        "wb-content:429=2",
        "wb-content:429",
        "wb-content:dup=0.1",
        "allegro-api:gap=0",
        "wb-statistics",
    ],
)
def test_bad_specs(spec: str) -> None:
    with pytest.raises(FaultSpecError):
        parse_faults(spec)


async def statuses(app, n: int) -> list[int]:
    world = app.state.world
    async with client_for(app) as c:
        return [(await c.get(FEEDBACKS, params=FB_PARAMS, headers=wb_headers(world))).status_code for _ in range(n)]


async def test_faults_are_deterministic_under_the_seed(make_app) -> None:
    spec = "wb-feedbacks:429=0.3,5xx=0.2"
    a = await statuses(make_app(faults=spec, rate_limits=False, seed=7), 40)
    b = await statuses(make_app(faults=spec, rate_limits=False, seed=7), 40)
    c = await statuses(make_app(faults=spec, rate_limits=False, seed=8), 40)
    assert a == b and a != c
    assert {429, 503, 200} <= set(a)


async def test_faults_are_per_host_and_switchable(make_app) -> None:
    app = make_app(faults="wb-statistics:5xx=1", rate_limits=False)
    world = app.state.world
    async with client_for(app) as c:
        assert (await c.get(ORDERS, params={"dateFrom": "2026-11-01"}, headers=wb_headers(world))).status_code == 503
        assert (await c.get(FEEDBACKS, params=FB_PARAMS, headers=wb_headers(world))).status_code == 200
        assert (await c.get("/_sandbox/info")).status_code == 200  # operator endpoints never fault
        r = await c.put("/_sandbox/faults", json={"spec": ""})
        assert r.json() == {"spec": ""}
        assert (await c.get(ORDERS, params={"dateFrom": "2026-11-01"}, headers=wb_headers(world))).status_code == 200
        assert (await c.put("/_sandbox/faults", json={"spec": "x:1"})).status_code == 400
    faults = [e.fault for e in world.log.entries(host="wb-statistics")]
    assert faults == ["5xx", None]


async def test_429_and_5xx_shapes(make_app) -> None:
    app = make_app(faults="wb-feedbacks:429=1;allegro-api:5xx=1")
    world = app.state.world
    async with client_for(app) as c:
        r = await c.get(FEEDBACKS, params=FB_PARAMS, headers=wb_headers(world))
        assert r.status_code == 429 and r.json()["title"] == "too many requests"
        assert all(r.headers.get(k) == "1" for k in ("X-Ratelimit-Retry", "X-Ratelimit-Limit", "X-Ratelimit-Reset"))
        a = await c.get("/allegro-api/order/event-stats", headers=allegro_headers(world))
        assert a.status_code == 503 and a.json()["errors"]


async def test_reset_truncate_timeout_slow(make_app) -> None:
    app = make_app(
        faults="wb-feedbacks:reset=1;wb-content:truncate=1;wb-statistics:timeout=1;wb-analytics:slow=1",
        timeout_seconds=0.2,
        slow_seconds=0.01,
        rate_limits=False,
    )
    world = app.state.world
    h = wb_headers(world)
    async with client_for(app) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            await c.get(FEEDBACKS, params=FB_PARAMS, headers=h)
        r = await c.post(
            "/wb-content/content/v2/get/cards/list", json={"settings": {"cursor": {"limit": 10}}}, headers=h
        )
        assert r.status_code == 200 and len(r.content) > 0
        with pytest.raises(json.JSONDecodeError):
            json.loads(r.content)
        with pytest.raises(httpx.ReadTimeout):
            await c.get(ORDERS, params={"dateFrom": "2026-11-01"}, headers=h, timeout=httpx.Timeout(5.0, read=0.02))
        slow = await c.post("/wb-analytics/api/analytics/v1/stocks-report/wb-warehouses", json={"limit": 5}, headers=h)
        assert slow.status_code == 200 and len(slow.json()["data"]["items"]) == 5
    log = {e.host: e.fault for e in world.log.entries()}
    assert log == {
        "wb-feedbacks": "reset",
        "wb-content": "truncate",
        "wb-statistics": "timeout",
        "wb-analytics": "slow",
    }


async def test_truncated_streaming_page(make_app) -> None:
    app = make_app(faults="wb-statistics:truncate=1", rate_limits=False)
    world = app.state.world
    async with client_for(app) as c:
        r = await c.get(ORDERS, params={"dateFrom": "2020-01-01"}, headers=wb_headers(world))
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content)


async def test_revoke_mid_run(make_app) -> None:
    app = make_app(faults="allegro-api:revoke=1")
    world = app.state.world
    pair = world.allegro_pair("allegro1")
    async with client_for(app) as c:
        r = await c.get("/allegro-api/order/event-stats", headers=allegro_headers(world))
        assert r.status_code == 401 and r.json()["error"] == "invalid_token"
        ref = await c.post(
            "/allegro-auth/auth/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": pair.refresh_token},
            auth=(world.client_id, world.client_secret),
        )
        assert ref.json()["error"] == "invalid_grant"


async def test_reuse_fault_loses_the_refresh_answer(make_app) -> None:
    app = make_app(faults="allegro-auth:reuse=1")
    world = app.state.world
    pair = world.allegro_pair("allegro1")
    form = {"grant_type": "refresh_token", "refresh_token": pair.refresh_token}
    async with client_for(app) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            await c.post("/allegro-auth/auth/oauth/token", data=form, auth=(world.client_id, world.client_secret))
        await c.put("/_sandbox/faults", json={"spec": ""})
        world.advance(10)
        retry = await c.post("/allegro-auth/auth/oauth/token", data=form, auth=(world.client_id, world.client_secret))
        assert retry.status_code == 200 and retry.json()["refresh_token"] != pair.refresh_token
        old = await c.get("/allegro-api/order/event-stats", headers=allegro_headers(world))
        assert old.status_code == 401  # the rotation did happen


async def test_dup_and_gap(make_app) -> None:
    app = make_app(faults="allegro-api:dup=0.5,gap=86400")
    world = app.state.world
    async with client_for(app) as c:
        events = (
            await c.get("/allegro-api/order/events", params={"limit": 1000}, headers=allegro_headers(world))
        ).json()["events"]
    ids = [e["id"] for e in events]
    assert len(ids) > len(set(ids))
    assert world.event_retention() == 86400
    assert all(int(i) // 10**10 >= world.now() - 86400 for i in ids)
