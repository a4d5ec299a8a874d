"""An Allegro access token that dies in the middle of a sync: the sync renews it and retries the
request, any number of times; a data 401 never marks the shop broken; only invalid_grant on a
refresh means the owner must log in again."""

from __future__ import annotations

import math
from collections import Counter

import httpx
from fastapi import FastAPI
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from flows.sync import sync_one
from sandbox.transport import SandboxTransport
from sandbox.world import World
from storage.models import Notification, Shop
from storage.shops import credentials_of, replace_credentials
from tests.flows.conftest import add_shops, clients_for, make_sandbox
from tests.flows.truth import assert_allegro_matches


def _shop(engine: Engine, shop_id: int) -> Shop:
    with Session(engine, expire_on_commit=False) as s:
        return s.get(Shop, shop_id)


def _refreshes(world: World, since_seq: int = 0) -> int:
    return sum(1 for r in world.log.entries(host="allegro-auth", since_seq=since_seq) if r.path == "/auth/oauth/token")


def _last_seq(world: World) -> int:
    return max((r.seq for r in world.log.entries()), default=0)


def _lively(engine: Engine) -> tuple[FastAPI, World, int]:
    """A live sandbox and its first Allegro shop, connected."""
    app = make_sandbox(scenario="lively")
    world: World = app.state.world
    return app, world, add_shops(engine, world)["allegro1"]


async def test_a_token_that_dies_every_few_requests_never_stops_the_first_sync(clean_engine: Engine) -> None:
    life = 9
    app = make_sandbox(scenario="tiny:allegro_orders=2500,history_days=40", allegro_token_requests=life)
    world: World = app.state.world
    shop_id = add_shops(clean_engine, world)["allegro1"]
    async with clients_for(app) as clients:
        reports = await sync_one(shop_id, clients=clients)
    assert all(r.status == "success" for r in reports), [(r.stream, r.error) for r in reports]
    assert _shop(clean_engine, shop_id).status == "active"
    assert_allegro_matches(clean_engine, world, "allegro1", shop_id)
    api = world.log.entries(host="allegro-api")
    assert sum(1 for r in api if r.status == 401) >= 3, "the token really died several times"
    # One refresh per dead token, however many requests were in flight when it died: every token
    # but the last served exactly `life` requests.
    answered = [r for r in api if r.status != 401]
    assert _refreshes(world) == math.ceil(len(answered) / life) - 1
    # The request that met a dead token was retried, not the stream: every listing page that was
    # answered was asked for once (a restarted history would read its first pages again).
    pages = Counter(r.query for r in api if r.path == "/order/checkout-forms" and r.status == 200)
    assert pages and set(pages.values()) == {1}
    # The new pair is stored: the shop's stored token is the live one.
    stored = credentials_of(_shop(clean_engine, shop_id))["access_token"]
    assert stored == world.auth.live_pair("allegro1").access_token


class RotatingTransport(SandboxTransport):
    """After `after` Allegro API requests, another worker refreshes the shop's pair and stores it."""

    def __init__(self, *, app, engine: Engine, shop_id: int, after: int) -> None:  # type: ignore[no-untyped-def]
        super().__init__(app=app)
        self.world: World = app.state.world
        self.engine, self.shop_id, self.after = engine, shop_id, after
        self.seen = 0
        self.theirs: str | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/allegro-api/"):
            self.seen += 1
            if self.seen == self.after:
                pair = self.world.rotate_allegro("allegro1")
                with Session(self.engine) as s, s.begin():
                    creds = {"access_token": pair.access_token, "refresh_token": pair.refresh_token}
                    replace_credentials(s, shop_id=self.shop_id, credentials=creds)
                self.theirs = pair.access_token
        return await super().handle_async_request(request)


async def test_a_pair_another_worker_rotated_mid_sync_is_read_from_the_database_not_refreshed_again(
    clean_engine: Engine,
) -> None:
    app = make_sandbox(scenario="tiny:allegro_orders=600,history_days=20")
    world: World = app.state.world
    shop_id = add_shops(clean_engine, world)["allegro1"]
    transport = RotatingTransport(app=app, engine=clean_engine, shop_id=shop_id, after=4)
    async with clients_for(app, transport=transport) as clients:
        reports = await sync_one(shop_id, clients=clients)
    assert all(r.status == "success" for r in reports), [(r.stream, r.error) for r in reports]
    assert transport.theirs is not None
    assert any(r.status == 401 for r in world.log.entries(host="allegro-api")), "our token really died"
    assert _refreshes(world) == 0, "the pair in the database was live: refreshing it again would be a waste"
    assert credentials_of(_shop(clean_engine, shop_id))["access_token"] == transport.theirs
    assert_allegro_matches(clean_engine, world, "allegro1", shop_id)


async def test_a_pair_rotated_elsewhere_within_the_grace_is_recovered(clean_engine: Engine) -> None:
    app, world, shop_id = _lively(clean_engine)
    async with clients_for(app) as clients:
        await sync_one(shop_id, clients=clients)
        world.rotate_allegro("allegro1")  # a second install refreshed it; our database has the old pair
        world.advance(30)
        reports = await sync_one(shop_id, clients=clients)
    assert all(r.status == "success" for r in reports), [(r.stream, r.error) for r in reports]
    assert _shop(clean_engine, shop_id).status == "active"


async def test_a_revoked_login_means_needs_reauth_never_broken_and_the_owners_hear_once(
    clean_engine: Engine,
) -> None:
    app, world, shop_id = _lively(clean_engine)
    async with clients_for(app) as clients:
        await sync_one(shop_id, clients=clients)
        world.revoke_allegro("allegro1")
        world.advance(900)
        for _ in range(2):
            await sync_one(shop_id, clients=clients)
    shop = _shop(clean_engine, shop_id)
    assert shop.status == "needs_reauth"
    with Session(clean_engine) as s:
        alerts = s.scalar(
            select(func.count()).select_from(Notification).where(Notification.kind == "shop_needs_reauth")
        )
    assert alerts == 1


class RefusingTransport(SandboxTransport):
    """The Allegro API answers 401 to every token while `refusing` (as in an outage of its auth)."""

    refusing = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.refusing and request.url.path.startswith("/allegro-api/"):
            body = {"error": "invalid_token", "error_description": "Invalid access token"}
            return httpx.Response(401, json=body, request=request)
        return await super().handle_async_request(request)


async def test_fresh_tokens_refused_again_and_again_fail_the_stream_not_the_shop(clean_engine: Engine) -> None:
    app, world, shop_id = _lively(clean_engine)
    transport = RefusingTransport(app=app)
    async with clients_for(app, transport=transport) as clients:
        await sync_one(shop_id, clients=clients)
        transport.refusing = True
        world.advance(900)
        seq = _last_seq(world)
        reports = await sync_one(shop_id, clients=clients)
        assert reports and reports[0].status == "failed"
        assert "AccessTokenRejected" in reports[0].error
        assert _shop(clean_engine, shop_id).status == "active"
        # Bounded: a handful of renewals for the refused request, not a refresh storm.
        assert 1 <= _refreshes(world, seq) <= 4
        transport.refusing = False
        world.advance(900)
        again = await sync_one(shop_id, clients=clients)
    assert all(r.status == "success" for r in again), [(r.stream, r.error) for r in again]
    assert _shop(clean_engine, shop_id).status == "active"
    assert_allegro_matches(clean_engine, world, "allegro1", shop_id)
