"""Allegro OAuth: device flow, token endpoint rules, rotation, expiry, revocation."""

from __future__ import annotations

import httpx
import pytest

from sandbox.allegro.oauth import REUSE_GRACE
from sandbox.world import World
from tests.sandbox.conftest import ALLEGRO_ACCEPT, client_for

DEVICE = "/allegro-auth/auth/oauth/device"
TOKEN = "/allegro-auth/auth/oauth/token"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def basic(world: World) -> httpx.BasicAuth:
    return httpx.BasicAuth(world.client_id, world.client_secret)


async def start(c: httpx.AsyncClient, world: World) -> dict:
    r = await c.post(DEVICE, data={"client_id": world.client_id}, auth=basic(world))
    assert r.status_code == 200, r.text
    return r.json()


async def poll(c: httpx.AsyncClient, world: World, device_code: str) -> httpx.Response:
    return await c.post(TOKEN, data={"grant_type": DEVICE_GRANT, "device_code": device_code}, auth=basic(world))


async def test_device_flow_pending_slow_down_approve_and_single_use(world, client) -> None:
    d = await start(client, world)
    assert isinstance(d["expires_in"], int) and d["expires_in"] == 3600 and d["interval"] == 5
    assert d["verification_uri_complete"].endswith(d["user_code"])
    r = await poll(client, world, d["device_code"])
    assert (r.status_code, r.json()["error"]) == (400, "authorization_pending")
    r = await poll(client, world, d["device_code"])  # no time passed: too fast
    assert r.json()["error"] == "slow_down"
    world.advance(5)  # interval is now 10
    assert (await poll(client, world, d["device_code"])).json()["error"] == "slow_down"
    world.advance(15)  # each slow_down adds 5 s: interval is now 15
    assert (await poll(client, world, d["device_code"])).json()["error"] == "authorization_pending"
    spaced = " ".join(d["user_code"][i : i + 3] for i in (0, 3, 6))
    ok = await client.post("/_sandbox/allegro/device/approve", json={"code": spaced, "shop": "allegro1"})
    assert ok.json() == {"approved": True, "shop": "allegro1"}
    world.advance(15)
    r = await poll(client, world, d["device_code"])
    assert r.status_code == 200
    tokens = r.json()
    assert tokens["expires_in"] == 43199 and tokens["token_type"] == "bearer" and tokens["jti"]
    api = await client.get(
        "/allegro-api/order/event-stats",
        headers={"Authorization": f"Bearer {tokens['access_token']}", "Accept": ALLEGRO_ACCEPT},
    )
    assert api.status_code == 200
    world.advance(15)
    reused = await poll(client, world, d["device_code"])
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_request")


async def test_device_flow_denied_and_expired(world, client) -> None:
    d = await start(client, world)
    assert (await client.post("/_sandbox/allegro/device/deny", json={"code": d["user_code"]})).status_code == 200
    assert (await poll(client, world, d["device_code"])).json()["error"] == "access_denied"
    d2 = await start(client, world)
    world.advance(3600)
    r = await poll(client, world, d2["device_code"])
    assert r.status_code == 400 and r.json()["error"] not in ("authorization_pending", "slow_down", "access_denied")
    assert (await client.post("/_sandbox/allegro/device/approve", json={"code": d2["user_code"]})).status_code == 404
    assert (await poll(client, world, "no-such-code")).json()["error"] == "invalid_request"


async def test_auto_approve_round_robins_allegro_shops(make_app) -> None:
    app = make_app(scenario="lively", auto_approve=True)
    world = app.state.world
    async with client_for(app) as c:
        shops = []
        for _ in range(2):
            d = await start(c, world)
            r = await poll(c, world, d["device_code"])
            assert r.status_code == 200
            shops.append(world.auth.check_access(r.json()["access_token"], world.now()).shop)
    assert shops == ["allegro1", "allegro2"]


async def test_token_endpoint_refuses_query_params_get_and_bad_client(world, client) -> None:
    pair = world.allegro_pair("allegro1")
    q = await client.post(
        TOKEN, params={"grant_type": "refresh_token", "refresh_token": pair.refresh_token}, auth=basic(world)
    )
    assert (q.status_code, q.json()["error"]) == (400, "invalid_request")
    assert (await client.get(TOKEN, auth=basic(world))).status_code == 405
    no_auth = await client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": pair.refresh_token})
    assert no_auth.status_code == 401 and "error" in no_auth.json()
    bad = await client.post(
        TOKEN,
        data={"grant_type": "refresh_token", "refresh_token": pair.refresh_token},
        auth=httpx.BasicAuth(world.client_id, "wrong"),
    )
    assert bad.status_code == 401
    unsupported = await client.post(TOKEN, data={"grant_type": "password"}, auth=basic(world))
    assert unsupported.json()["error"] == "unsupported_grant_type"
    # The refused attempts did not spend the refresh token.
    ok = await client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": pair.refresh_token}, auth=basic(world)
    )
    assert ok.status_code == 200
    # No secret reaches the request log.
    for e in world.log.entries(host="allegro-auth"):
        assert pair.refresh_token not in repr(e) and world.client_secret not in repr(e)


async def refresh(c: httpx.AsyncClient, world: World, token: str) -> httpx.Response:
    return await c.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": token}, auth=basic(world))


async def test_refresh_rotation_grace_and_reuse(world, client) -> None:
    old = world.allegro_pair("allegro1")
    r1 = await refresh(client, world, old.refresh_token)
    new = r1.json()
    assert new["refresh_token"] != old.refresh_token and new["access_token"] != old.access_token
    h_old = {"Authorization": f"Bearer {old.access_token}", "Accept": ALLEGRO_ACCEPT}
    dead = await client.get("/allegro-api/order/event-stats", headers=h_old)
    assert dead.status_code == 401 and dead.json()["error"] == "invalid_token"
    world.advance(REUSE_GRACE - 1)
    again = await refresh(client, world, old.refresh_token)  # lost response retried
    assert again.status_code == 200 and again.json()["refresh_token"] == new["refresh_token"]
    world.advance(2)
    late = await refresh(client, world, old.refresh_token)
    assert (late.status_code, late.json()["error"]) == (400, "invalid_grant")
    assert late.json()["error_description"].startswith("Invalid refresh token")
    assert (await refresh(client, world, new["refresh_token"])).status_code == 200


async def test_two_refreshes_after_grace_lose_one(world, client) -> None:
    old = world.allegro_pair("allegro1")
    assert (await refresh(client, world, old.refresh_token)).status_code == 200
    world.advance(REUSE_GRACE + 1)
    assert (await refresh(client, world, old.refresh_token)).json()["error"] == "invalid_grant"


async def test_access_token_expires_after_12_hours(world, client) -> None:
    h = {"Authorization": f"Bearer {world.allegro_pair('allegro1').access_token}", "Accept": ALLEGRO_ACCEPT}
    world.advance(43199)
    assert (await client.get("/allegro-api/order/event-stats", headers=h)).status_code == 200
    world.advance(2)
    r = await client.get("/allegro-api/order/event-stats", headers=h)
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_token" and r.json()["error_description"].startswith("Access token expired")


async def test_operator_revocation_kills_access_and_refresh(world, client) -> None:
    pair = world.allegro_pair("allegro1")
    r = await client.post("/_sandbox/allegro/revoke", json={"shop": "allegro1"})
    assert r.json()["revoked"] >= 1
    api = await client.get(
        "/allegro-api/order/event-stats",
        headers={"Authorization": f"Bearer {pair.access_token}", "Accept": ALLEGRO_ACCEPT},
    )
    assert api.status_code == 401 and api.json()["error"] == "invalid_token"
    assert (await refresh(client, world, pair.refresh_token)).json()["error"] == "invalid_grant"


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic abc"])
async def test_api_401_bodies_are_oauth_shaped(world, client, header) -> None:
    headers = {"Accept": ALLEGRO_ACCEPT}
    if header:
        headers["Authorization"] = header
    r = await client.get("/allegro-api/order/checkout-forms", headers=headers)
    assert r.status_code == 401
    assert set(r.json()) == {"error", "error_description"}


async def test_device_endpoint_errors(world, client) -> None:
    no_auth = await client.post(DEVICE, data={"client_id": world.client_id})
    assert no_auth.status_code == 401 and no_auth.json()["error"] == "unauthorized"
    query = await client.post(DEVICE, params={"client_id": world.client_id}, auth=basic(world))
    assert (query.status_code, query.json()["error"]) == (400, "invalid_request")
    json_body = await client.post(DEVICE, json={"client_id": world.client_id}, auth=basic(world))
    assert json_body.status_code == 400
    other = await client.post(DEVICE, data={"client_id": "someone-else"}, auth=basic(world))
    assert other.status_code == 400
    # A device code is bound to the client that asked for it.
    d = await start(client, world)
    assert d["user_code"].isalnum() and len(d["user_code"]) == 9


async def _stats(c: httpx.AsyncClient, access_token: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {access_token}", "Accept": ALLEGRO_ACCEPT}
    return await c.get("/allegro-api/order/event-stats", headers=headers)


async def test_access_tokens_die_after_n_requests_and_refresh_brings_a_new_one(make_app) -> None:
    app = make_app(allegro_token_requests=3)
    world = app.state.world
    pair = world.allegro_pair("allegro1")
    async with client_for(app) as c:
        assert [(await _stats(c, pair.access_token)).status_code for _ in range(3)] == [200, 200, 200]
        dead = await _stats(c, pair.access_token)
        assert dead.status_code == 401 and dead.json()["error"] == "invalid_token"
        new = (await refresh(c, world, pair.refresh_token)).json()  # the refresh token lived on
        assert [(await _stats(c, new["access_token"])).status_code for _ in range(4)] == [200, 200, 200, 401]
        info = (await c.get("/_sandbox/info")).json()
        assert info["allegro_token_requests"] == 3
        # Operators switch it at run time.
        assert (await c.put("/_sandbox/allegro/token-requests", json={"requests": None})).json() == {"requests": None}
        newer = (await refresh(c, world, new["refresh_token"])).json()
        assert {(await _stats(c, newer["access_token"])).status_code for _ in range(5)} == {200}
        for bad in ({"requests": 0}, {"requests": "3"}, {"requests": True}):
            assert (await c.put("/_sandbox/allegro/token-requests", json=bad)).status_code == 400


async def test_a_token_life_is_off_by_default(world, client) -> None:
    token = world.allegro_pair("allegro1").access_token
    assert {(await _stats(client, token)).status_code for _ in range(50)} == {200}


async def test_rotation_by_another_process_kills_our_access_token_and_spends_our_refresh_token(world, client) -> None:
    ours = world.allegro_pair("allegro1")
    r = await client.post("/_sandbox/allegro/rotate", json={"shop": "allegro1"})
    assert r.status_code == 200
    theirs = r.json()
    assert theirs["shop"] == "allegro1" and theirs["token_id"] and theirs["access_token"] != ours.access_token
    assert (await _stats(client, ours.access_token)).json()["error"] == "invalid_token"
    assert (await _stats(client, theirs["access_token"])).status_code == 200
    # Our refresh token is spent: within the grace it still yields the pair the other process got...
    world.advance(REUSE_GRACE - 5)
    grace = await refresh(client, world, ours.refresh_token)
    assert grace.status_code == 200 and grace.json()["refresh_token"] == theirs["refresh_token"]
    # ...after it, invalid_grant: two processes refreshing one account lose it.
    world.advance(10)
    assert (await refresh(client, world, ours.refresh_token)).json()["error"] == "invalid_grant"
    # A second rotation turns the successor over in its turn; a token id picks the pair.
    again = (await client.post("/_sandbox/allegro/rotate", json={"token_id": theirs["token_id"]})).json()
    assert again["refresh_token"] != theirs["refresh_token"]
    assert (await client.post("/_sandbox/allegro/rotate", json={})).status_code == 400
    assert (await client.post("/_sandbox/allegro/rotate", json={"shop": "nope"})).status_code == 404
    world.revoke_allegro("allegro1")
    assert (await client.post("/_sandbox/allegro/rotate", json={"shop": "allegro1"})).status_code == 404
