"""Allegro device logins are bounded: a person's pending ticket is reused for the same shop
name, a newer one supersedes the oldest past the per-person cap (its poll stops, in whichever
worker polls it), and past the install's cap a new one is refused (503 + Retry-After)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from api.services import DeviceFlowLoginStarter
from storage import apikeys
from storage.db import session_scope
from storage.models import Shop
from tests.api.conftest import Bot, build_app
from tests.connectors.sandbox_harness import Sandbox, make_sandbox

DEVICE = "/auth/oauth/device"


@pytest.fixture
def sandbox() -> Sandbox:
    return make_sandbox(scenario="tiny")  # codes wait for the person: nothing is approved by itself


def starter(sandbox: Sandbox, engine: Engine, **caps: int) -> DeviceFlowLoginStarter:
    async def sleep(seconds: float) -> None:
        sandbox.world.advance(seconds)  # the code's interval passes on the sandbox's clock...
        await asyncio.sleep(0.01)  # ...while real time goes on slowly enough to watch it

    return DeviceFlowLoginStarter(
        engine=lambda: engine, auth_factory=lambda: sandbox.auth(sleep=sleep), watch_every=0.05, **caps
    )


@pytest.fixture
def apps(sandbox: Sandbox, clean_engine: Engine) -> Iterator[Callable[..., tuple[Bot, FastAPI]]]:
    with session_scope(clean_engine) as session:
        secret = apikeys.create_key(session, name="bot").secret
    clients: list[TestClient] = []

    def make(**caps: int) -> tuple[Bot, FastAPI]:
        app = build_app(sandbox, clean_engine, allegro_login=starter(sandbox, clean_engine, **caps))
        client = TestClient(app, raise_server_exceptions=False).__enter__()
        clients.append(client)
        return Bot(client, secret), app

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def until(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def login(bot: Bot, telegram_id: int, name: str) -> Any:
    bot.put(f"/people/{telegram_id}", json={})
    return bot.post("/shops/allegro/login", params={"telegram_id": telegram_id}, json={"name": name})


def test_the_same_request_gets_the_same_ticket(apps: Any, sandbox: Sandbox) -> None:
    bot, app = apps(per_person=2, overall=10)
    first, again = login(bot, 1, "Sklep").json(), login(bot, 1, "Sklep").json()
    assert again["id"] == first["id"] and again["user_code"] == first["user_code"]
    assert len(sandbox.requests(host="allegro-auth", path=DEVICE)) == 1  # Allegro asked once
    assert app.state.allegro_login.polling() == {first["id"]}


def test_a_newer_login_supersedes_the_oldest_and_its_poll_stops(
    apps: Any, sandbox: Sandbox, clean_engine: Engine
) -> None:
    bot, app = apps(per_person=1, overall=10)
    old = login(bot, 1, "First").json()
    new = login(bot, 1, "Second").json()
    assert new["id"] != old["id"]
    status = bot.get(f"/shops/allegro/login/{old['id']}", params={"telegram_id": 1}).json()
    assert status["status"] == "superseded"
    starter_ = app.state.allegro_login
    until(lambda: starter_.polling() == {new["id"]})
    # Approving the superseded code now connects nothing; approving the new one does.
    sandbox.world.approve_device(new["user_code"].replace(" ", ""))
    with contextlib.suppress(KeyError):  # on the sandbox's fast clock the old code may be gone already
        sandbox.world.approve_device(old["user_code"].replace(" ", ""))
    done = bot.client.portal.call(starter_.wait, new["id"])
    assert done.status == "connected"
    with session_scope(clean_engine) as session:
        assert session.scalars(select(Shop.name)).all() == ["Second"]


def test_another_worker_superseding_stops_this_ones_poll(apps: Any) -> None:
    one, app_one = apps(per_person=1, overall=10)
    two, _ = apps(per_person=1, overall=10)
    old = login(one, 1, "First").json()
    assert app_one.state.allegro_login.polling() == {old["id"]}
    login(two, 1, "Second")
    until(lambda: not app_one.state.allegro_login.polling())  # seen in the database, not told


def test_past_the_install_cap_a_login_is_refused(apps: Any, sandbox: Sandbox, clean_engine: Engine) -> None:
    bot, _ = apps(per_person=1, overall=2)
    assert login(bot, 1, "a").status_code == 202
    assert login(bot, 2, "b").status_code == 202
    refused = login(bot, 3, "c")
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "unavailable"
    assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    assert len(sandbox.requests(host="allegro-auth", path=DEVICE)) == 2  # the refusal cost Allegro nothing
    # A person at the install's cap may still replace their own login (the total stays the same).
    assert login(bot, 1, "a2").status_code == 202
    with session_scope(clean_engine) as session:
        assert session.scalar(select(func.count()).select_from(Shop)) == 0
