"""The app as served (its own engine): plain polls answered on the event loop, on the fast
path's own connection, exactly as the documented route answers them. Requests commit for real."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text

from api.app import api_engine, create_app
from api.services import ConnectorWbVerifier
from sellerpulse.notify.drafts import Draft
from storage import apikeys, outbox
from storage.db import session_scope
from storage.models import ApiKey
from storage.people import register_person
from storage.settings_repo import update_settings
from storage.shops import create_shop
from tests.api.conftest import Bot, RecordingLauncher
from tests.api.served import end_api_connections
from tests.connectors.sandbox_harness import Sandbox

A = 31


@pytest.fixture
def served(sandbox: Sandbox, clean_engine: Engine) -> Iterator[Bot]:
    app = create_app(
        wb_verifier=ConnectorWbVerifier(client_factory=lambda: sandbox.wb()), sync_launcher=RecordingLauncher()
    )
    assert app.state.poll_connection is not None  # the app's own engine: polls run inline
    with session_scope(clean_engine) as session:
        secret = apikeys.create_key(session, name="bot").secret
        person, _ = register_person(session, telegram_id=A, profile={})
        update_settings(session, person_id=person.id, values={"grouping_enabled": False})  # delivered at once
        made = create_shop(session, marketplace="wb", name="A shop", credentials={"token": "t"}, owner_id=person.id)
        drafts = [Draft("new_order", f"inline:{i}", str(i), {"srid": f"s{i}"}) for i in range(3)]
        outbox.add(session, shop_id=made.id, drafts=drafts)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Bot(client, secret)
    # The app's request pool is the process's (api_engine): emptied, so connections a test ended
    # (end_api_connections) are not the first error of the next test's first full route.
    api_engine().dispose()


def test_inline_poll_answers_like_the_route(served: Bot) -> None:
    inline = served.get("/notifications", params={"telegram_id": A, "limit": 2})
    route = served.get("/notifications", params={"telegram_id": A, "limit": 2, "unrelated": "x"})
    assert inline.status_code == route.status_code == 200, inline.text
    assert inline.json() == route.json() and inline.json()["items"]
    after = inline.json()["next_cursor"]
    assert (
        served.get("/notifications", params={"telegram_id": A, "after": after}).json()
        == served.get("/notifications", params={"telegram_id": A, "after": after, "unrelated": "x"}).json()
    )


def test_inline_poll_checks_key_and_person(served: Bot, clean_engine: Engine) -> None:
    assert served.get("/notifications", params={"telegram_id": A + 1}).status_code == 404
    with session_scope(clean_engine) as session:
        key = session.scalars(select(ApiKey)).one()
        assert key.last_used_at is not None  # touched by the poll (404 included: the key was good)
        apikeys.revoke_key(session, key_id=key.id)
    for telegram_id in (A, A + 1):
        r = served.get("/notifications", params={"telegram_id": telegram_id})
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert served.client.get("/api/v1/notifications", params={"telegram_id": A}).status_code == 401
    wrong = served.client.get("/api/v1/notifications", params={"telegram_id": A}, headers={"X-API-Key": "sp_x"})
    assert wrong.status_code == 401


def test_a_lost_connection_is_one_503_then_replaced(served: Bot, clean_engine: Engine) -> None:
    assert served.get("/notifications", params={"telegram_id": A}).status_code == 200
    ended = end_api_connections(clean_engine)
    assert ended and all(ended)
    lost = served.get("/notifications", params={"telegram_id": A})
    assert lost.status_code == 503 and lost.json()["error"]["code"] == "unavailable"
    assert served.get("/notifications", params={"telegram_id": A}).status_code == 200


def test_a_key_row_locked_elsewhere_does_not_hold_up_the_poll(served: Bot, clean_engine: Engine) -> None:
    """A slow transaction touching the key holds its row; polls that find the key due skip the
    touch instead of waiting on it (on the event loop: every request of the worker would wait)."""
    import threading

    with clean_engine.begin() as conn:
        conn.execute(text("UPDATE api_keys SET last_used_at = NULL"))  # due for a touch
    with clean_engine.connect() as holder:
        holder.begin()
        holder.execute(text("SELECT id FROM api_keys FOR UPDATE"))
        answers: list[int] = []
        poll = threading.Thread(
            target=lambda: answers.extend(
                served.get("/notifications", params={"telegram_id": A}).status_code for _ in range(3)
            )
        )
        poll.start()
        poll.join(timeout=15)
        waited = poll.is_alive()  # still waiting for the row while it is held: the bug
        holder.rollback()
    poll.join()
    assert not waited and answers == [200, 200, 200]
