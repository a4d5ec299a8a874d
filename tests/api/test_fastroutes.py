"""The app as served (its own engine): the ack, the batch poll, a dashboard and a page of orders
answered on the fast path (api.fastroutes), byte for byte as the documented routes answer
them. An unknown query parameter sends a request to the route (the fast path takes plain
requests only), so every case is asked both ways. Requests commit for real."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text

import api.fastroutes
import api.routes.data
from api.app import api_engine, create_app
from api.services import ConnectorWbVerifier
from sellerpulse.notify.drafts import Draft
from storage import apikeys, caller, outbox
from storage.db import session_scope
from storage.models import ApiKey, NotificationSettings, Order, Review, Sale, Stock, SyncRun, WbFeedOrder
from storage.people import invite, register_person
from storage.settings_repo import update_settings
from storage.shops import create_shop
from tests.api.conftest import Bot, RecordingLauncher
from tests.api.served import end_api_connections
from tests.connectors.sandbox_harness import Sandbox

A, B, W = 41, 42, 43  # A owns a shop and is in W's; B owns another; W lives in Warsaw
# Both ways at the same moment: the answers carry it (a period's end, what counts as new).
NOW = datetime.now(UTC).replace(microsecond=123456)


class Frozen(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return NOW


@pytest.fixture
def shops(clean_engine: Engine) -> dict[str, int]:
    with session_scope(clean_engine) as session:
        a, _ = register_person(session, telegram_id=A, profile={})
        b, _ = register_person(session, telegram_id=B, profile={})
        w, _ = register_person(session, telegram_id=W, profile={"time_zone": "Europe/Warsaw"})
        for p in (a, w):
            update_settings(session, person_id=p.id, values={"grouping_enabled": False})
        made = {
            name: create_shop(session, marketplace="wb", name=name, credentials={"token": "t"}, owner_id=owner.id).id
            for name, owner in (("a", a), ("b", b), ("w", w))
        }
        invite(session, shop_id=made["w"], person_id=a.id)
        for name, sid in made.items():
            drafts = [
                Draft("new_order", f"{name}:{i}", str(i), {"srid": f"{name}{i}", "amount": "10"}) for i in range(4)
            ]
            outbox.add(session, shop_id=sid, drafts=drafts)
        for sid in (made["a"], made["w"]):
            _data(session, sid)
    return made


def _data(session: Any, sid: int) -> None:
    for i in range(7):
        session.add(
            Order(
                shop_id=sid,
                external_id=f"o{sid}-{i}",
                basket_id=f"g{i // 2}" if i % 3 else None,
                status="cancelled" if i == 2 else "new" if i % 2 else "delivered",
                is_cancelled=i == 2,
                total_amount=None if i == 5 else Decimal("99.90") + 7 * i,
                currency="RUB",
                bought_at=None if i == 6 else NOW - timedelta(days=i * 4, hours=i),
                raw={"n": i},
            )
        )
    session.add_all(
        [
            # What statistics' orders do not know yet: o-1 returned (sales), o-3 cancelled (feed).
            Sale(shop_id=sid, sale_id=f"R{sid}", srid=f"o{sid}-1", kind="return", sold_at=NOW, raw={}),
            WbFeedOrder(shop_id=sid, srid=f"o{sid}-3", status="cancel", status_at=NOW - timedelta(hours=1), raw={}),
            # Placed a minute ago: the feed shows it, statistics do not list it yet.
            WbFeedOrder(
                shop_id=sid,
                srid=f"f{sid}",
                status="created",
                status_at=NOW - timedelta(minutes=1),
                ordered_at=NOW - timedelta(minutes=1),
                price=Decimal("250.00"),
                currency="RUB",
                raw={"srid": f"f{sid}"},
            ),
            Stock(shop_id=sid, sku="1", size="M", warehouse="Koledino", quantity=2),
            Stock(shop_id=sid, sku="2", size="", warehouse="Kazan", quantity=40),
            Review(shop_id=sid, external_id="r1", stars=1, created_at_source=NOW - timedelta(hours=2), raw={}),
            Review(shop_id=sid, external_id="r2", stars=4, is_answered=True, created_at_source=NOW, raw={}),
            Review(shop_id=sid, external_id="r3", stars=5, created_at_source=NOW - timedelta(days=9), raw={}),
            SyncRun(shop_id=sid, stream="wb_orders", status="success", started_at=NOW - timedelta(minutes=9)),
            SyncRun(
                shop_id=sid,
                stream="wb_orders",
                status="failed",
                error="timeout",
                started_at=NOW - timedelta(minutes=1),
                finished_at=NOW,
                fetched=3,
            ),
            SyncRun(shop_id=sid, stream="wb_sales", status="success", started_at=NOW - timedelta(seconds=5)),
        ]
    )


@pytest.fixture
def served(
    sandbox: Sandbox, clean_engine: Engine, shops: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Bot]:
    # The batch poll's moment is left alone: without grouping, nothing it answers depends on it.
    for module in (api.fastroutes, api.routes.data):
        monkeypatch.setattr(module, "datetime", Frozen)
    app = create_app(
        wb_verifier=ConnectorWbVerifier(client_factory=lambda: sandbox.wb()), sync_launcher=RecordingLauncher()
    )
    assert app.state.poll_connection is not None  # the app's own engine: the fast path is on
    with session_scope(clean_engine) as session:
        secret = apikeys.create_key(session, name="bot").secret
    calls: list[str] = []  # which of the fast path's statements ran: the fast path did answer
    for name in ("ack_as", "poll_many_as", "orders_as", "dashboard_as"):
        monkeypatch.setattr(caller, name, _counted(getattr(caller, name), calls))
    with TestClient(app, raise_server_exceptions=False) as client:
        bot = Bot(client, secret)
        bot.fast_calls = calls  # type: ignore[attr-defined]
        yield bot
    # The app's request pool is the process's (api_engine): emptied, so connections a test ended
    # (end_api_connections) are not the first error of the next test's first full route.
    api_engine().dispose()


def _counted(real: Callable[..., Any], calls: list[str]) -> Callable[..., Any]:
    def counted(*args: Any, **kw: Any) -> Any:
        calls.append(real.__name__)
        return real(*args, **kw)

    return counted


def both(bot: Bot, method: str, path: str, *, fast_path: bool = True, **kw: Any) -> httpx.Response:
    """The request as it is and with an unknown parameter (the route's); asserts they answer
    the same bytes, and that the first went by the fast path (`fast_path`) or not."""
    params, calls = kw.pop("params", {}), bot.fast_calls  # type: ignore[attr-defined]
    before = len(calls)
    fast = bot.request(method, path, params=params, **kw)
    assert (len(calls) > before) == fast_path, (method, path, params)
    answered = len(calls)
    route = bot.request(method, path, params={**params, "via": "route"}, **kw)
    assert len(calls) == answered  # the route's own way
    assert (fast.status_code, fast.headers["content-type"]) == (route.status_code, route.headers["content-type"])
    assert fast.content == route.content
    return fast


def test_dashboard_answers_like_the_route(served: Bot, shops: dict[str, int]) -> None:
    for telegram_id, shop in ((A, "a"), (A, "w"), (W, "w"), (W, "w")):  # twice: a zone guessed, then known
        r = both(served, "GET", f"/shops/{shops[shop]}/dashboard", params={"telegram_id": telegram_id})
        assert r.status_code == 200
        d = r.json()
        assert d["time_zone"] == ("Europe/Warsaw" if telegram_id == W else "UTC")
        assert {s["stream"]: s["status"] for s in d["last_syncs"]} == {"wb_orders": "failed", "wb_sales": "success"}
        assert d["critical_stocks"] == 1 and d["reviews"]["new"] == 2
        assert {p["name"]: p["orders"] for p in d["periods"]}[
            "30d"
        ] == 3  # i = 1, 4, 5 (0: bought at the end, now; 2: cancelled; 3: cancelled in the feed)
    start = {p["name"]: p["start"] for p in d["periods"]}["today"]
    assert start.endswith(("+01:00", "+02:00"))  # W's midnight, in W's zone


def test_orders_answer_like_the_route(served: Bot, shops: dict[str, int]) -> None:
    path, sid = f"/shops/{shops['a']}/orders", shops["a"]
    every = both(served, "GET", path, params={"telegram_id": A}).json()
    assert every["total"] == 8 and [o["external_id"] for o in every["items"]][-1] == f"o{sid}-6"  # no date: last
    feed_only = every["items"][1]  # a minute old: after o-0 (now), before the rest
    assert (feed_only["external_id"], feed_only["in_statistics"], feed_only["status"]) == (f"f{sid}", False, "new")
    assert feed_only["total_amount"] == "250.00" and feed_only["marketplace_status"] == "created"
    assert all(o["in_statistics"] for o in every["items"] if o is not feed_only)
    assert every["items"][0]["total_amount"] == "99.90" and every["items"][0]["bought_at"].endswith("Z")
    page = both(served, "GET", path, params={"telegram_id": A, "limit": 2, "offset": 3}).json()
    assert page["items"] == every["items"][3:5] and (page["limit"], page["offset"]) == (2, 3)
    first = both(served, "GET", path, params={"telegram_id": A, "limit": 1}).json()
    assert first["items"] == every["items"][:1] and first["total"] == 8
    new = both(served, "GET", path, params={"telegram_id": A, "status": "new"}).json()
    assert new["total"] == 2 and {o["status"] for o in new["items"]} == {
        "new"
    }  # i = 5, the feed's; 1 returned, 3 cancelled
    assert [o["external_id"] for o in new["items"]] == [f"f{sid}", f"o{sid}-5"]
    shown = {o["external_id"]: (o["status"], o["is_cancelled"]) for o in every["items"]}
    assert shown[f"o{sid}-1"] == ("returned", False) and shown[f"o{sid}-3"] == ("cancelled", True)
    cancelled = both(served, "GET", path, params={"telegram_id": A, "status": "cancelled"}).json()
    assert {o["external_id"] for o in cancelled["items"]} == {f"o{sid}-2", f"o{sid}-3"}
    deep = both(served, "GET", path, params={"telegram_id": A, "status": "cancelled", "offset": 1}).json()
    assert deep["items"] == cancelled["items"][1:] and deep["total"] == 2
    # Past the end: no items, the total still counted.
    assert both(served, "GET", path, params={"telegram_id": A, "offset": 50}).json() == {
        "items": [], "total": 8, "limit": 50, "offset": 50
    }  # fmt: skip
    past = both(served, "GET", path, params={"telegram_id": A, "status": "delivered", "offset": 9}).json()
    assert (past["items"], past["total"]) == ([], 3)  # i = 0, 4, 6
    # The feed-only order's detail (the route's only).
    detail = served.get(f"{path}/{feed_only['id']}", params={"telegram_id": A}).json()
    assert detail["in_statistics"] is False, detail
    assert detail["lines"] == [
        {"sku": None, "name": None, "size": None, "quantity": 1, "price": "250.00", "currency": "RUB"}
    ]


def test_batch_poll_and_ack_answer_like_the_routes(served: Bot, shops: dict[str, int], clean_engine: Engine) -> None:
    body = {"telegram_ids": [W, 999, A, A, B], "limit": 3}
    polled = both(served, "POST", "/notifications/poll", json=body).json()
    assert [r["telegram_id"] for r in polled["results"]] == [W, A, B] and polled["unknown"] == [999]
    assert all(item["created_at"].endswith("Z") for r in polled["results"] for item in r["items"])
    cursor = {r["telegram_id"]: r["next_cursor"] for r in polled["results"]}[A]
    assert both(served, "POST", "/notifications/ack", params={"telegram_id": A}, json={"cursor": cursor}).json() == {
        "telegram_id": A,
        "cursor": cursor,
    }
    # Never backwards; the body's telegram_id (old bots) alone or agreeing with the query's.
    back = both(served, "POST", "/notifications/ack", json={"cursor": 0, "telegram_id": A})
    assert back.json()["cursor"] == cursor
    agreeing = {"telegram_id": A}, {"cursor": 1, "telegram_id": A}
    assert both(served, "POST", "/notifications/ack", params=agreeing[0], json=agreeing[1]).json()["cursor"] == cursor
    with session_scope(clean_engine) as session:
        stored = session.execute(text("SELECT last_notification_id FROM delivery_cursors")).scalars().all()
    assert stored == [cursor]
    after = both(served, "POST", "/notifications/poll", json={"telegram_ids": [A]}).json()["results"][0]
    assert after["items"] and all(item["id"] > cursor for item in after["items"])  # after the acked cursor


def test_batch_pages_kept_answer_like_the_route_until_their_rows_change(
    served: Bot, shops: dict[str, int], clean_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A person's part of a batch poll is kept per worker (api.pagecache) while the row it was
    made of is the same: asked again, it is not made again and is still the route's; a new
    outbox row, an ack, a changed setting each make it anew, and the answer is the route's."""
    api.fastroutes.PAGES.clear()
    made: list[int] = []
    real = caller.ManyPages.page
    monkeypatch.setattr(caller.ManyPages, "page", lambda self, t, now: made.append(t) or real(self, t, now))
    body = {"telegram_ids": [A, B], "limit": 20}

    def items_of(telegram_id: int) -> list[dict[str, Any]]:
        polled = both(served, "POST", "/notifications/poll", json=body).json()
        return {r["telegram_id"]: r["items"] for r in polled["results"]}[telegram_id]

    first = items_of(A)
    assert sorted(made) == [A, B] and len(first) == 8  # A's shop and W's, grouping off
    made.clear()
    assert items_of(A) == first and made == []  # the same rows: both parts kept
    with session_scope(clean_engine) as session:
        outbox.add(session, shop_id=shops["a"], drafts=[Draft("new_order", "a:new", "new", {"srid": "anew"})])
    assert len(items_of(A)) == 9 and made == [A]  # B's shop had nothing new: B's part kept
    cursor = max(i["id"] for i in items_of(A))
    made.clear()
    both(served, "POST", "/notifications/ack", params={"telegram_id": A}, json={"cursor": cursor})
    assert items_of(A) == [] and made == [A]
    with session_scope(clean_engine) as session:
        outbox.add(session, shop_id=shops["w"], drafts=[Draft("buyout", "w:b", "b", {"srid": "wb1"})])
    assert [i["kind"] for i in items_of(A)] == ["buyout"]
    with session_scope(clean_engine) as session:
        person = session.execute(text("SELECT id FROM people WHERE telegram_id = :t"), {"t": A}).scalar_one()
        update_settings(session, person_id=person, values={"order_buyouts_enabled": False})
    made.clear()
    assert items_of(A) == [] and made == [A]


def test_a_kept_batch_page_is_made_again_when_a_group_window_closes(
    served: Bot, shops: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """B groups (the defaults: 5 minutes): B's four new orders are held while the window is
    open, and delivered the moment it has closed, though the rows are the same."""
    api.fastroutes.PAGES.clear()
    moment = [datetime.now(UTC)]

    class Clock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
            return moment[0]

    monkeypatch.setattr(api.fastroutes, "datetime", Clock)

    def part() -> dict[str, Any]:
        r = served.post("/notifications/poll", json={"telegram_ids": [B]})
        assert r.status_code == 200
        return r.json()["results"][0]

    held = part()
    assert held["items"] == [] and part() == held  # kept, still held
    moment[0] += timedelta(seconds=301)
    ready = part()
    assert [len(i["ids"]) for i in ready["items"]] == [4] and ready["next_cursor"] > held["next_cursor"]
    api.fastroutes.PAGES.clear()
    assert part() == ready  # what it makes afresh at that moment


def test_errors_answer_like_the_routes(served: Bot, shops: dict[str, int]) -> None:
    dash, orders = f"/shops/{shops['a']}/dashboard", f"/shops/{shops['a']}/orders"
    cases: list[tuple[int, str, str, dict[str, Any]]] = [
        (404, "GET", dash, {"params": {"telegram_id": 999}}),  # no such person
        (404, "GET", f"/shops/{shops['b']}/dashboard", {"params": {"telegram_id": A}}),  # B's shop: not A's
        (404, "GET", f"/shops/{shops['b']}/orders", {"params": {"telegram_id": A}}),
        (404, "GET", f"/shops/{10**6}/orders", {"params": {"telegram_id": A}}),
        (404, "POST", "/notifications/ack", {"params": {"telegram_id": 999}, "json": {"cursor": 1}}),
        (422, "GET", orders, {"params": {"telegram_id": A, "limit": 0}}),
        (422, "GET", orders, {"params": {"telegram_id": A, "status": "lost"}}),
        (422, "GET", dash, {"params": {"telegram_id": 0}}),
        (422, "POST", "/notifications/ack", {"params": {"telegram_id": A}, "json": {"cursor": "5"}}),
        (422, "POST", "/notifications/ack", {"params": {"telegram_id": A}, "json": {"cursor": True}}),
        (422, "POST", "/notifications/ack", {"json": {"cursor": 1}}),  # nobody named
        (422, "POST", "/notifications/ack", {"params": {"telegram_id": A}, "json": {"cursor": 1, "telegram_id": B}}),
        (422, "POST", "/notifications/poll", {"json": {"telegram_ids": [A], "limit": True}}),
        (422, "POST", "/notifications/poll", {"json": {"telegram_ids": []}}),
        (422, "POST", "/notifications/poll", {"json": {"telegram_ids": [A], "extra": 1}}),
    ]
    for status, method, path, kw in cases:
        assert both(served, method, path, fast_path=status != 422, **kw).status_code == status, (method, path, kw)
    not_json = served.post("/notifications/ack", params={"telegram_id": A}, content=b"cursor=1")
    assert not_json.status_code == 422


def test_keys_are_checked_like_the_routes(served: Bot, shops: dict[str, int], clean_engine: Engine) -> None:
    requests = [
        ("GET", f"/shops/{shops['a']}/dashboard", {"params": {"telegram_id": A}}),
        ("GET", f"/shops/{shops['a']}/orders", {"params": {"telegram_id": A}}),
        ("POST", "/notifications/ack", {"params": {"telegram_id": A}, "json": {"cursor": 1}}),
        ("POST", "/notifications/poll", {"json": {"telegram_ids": [A]}}),
    ]
    assert served.get(f"/shops/{shops['a']}/orders", params={"telegram_id": A}).status_code == 200  # fast only
    with session_scope(clean_engine) as session:
        assert session.scalars(select(ApiKey.last_used_at)).one() is not None  # touched, as the route touches it
    for header in ({"X-API-Key": ""}, {"X-API-Key": "sp_unknown"}):  # 24 failures in all: under the throttle's 30
        for method, path, kw in requests:
            r = both(served, method, path, headers=header, fast_path=bool(header["X-API-Key"]), **kw)
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    with session_scope(clean_engine) as session:
        apikeys.revoke_key(session, key_id=session.scalars(select(ApiKey.id)).one())
    for method, path, kw in requests:
        assert both(served, method, path, **kw).status_code == 401
    with session_scope(clean_engine) as session:
        assert session.execute(text("SELECT count(*) FROM delivery_cursors")).scalar() == 0  # no ack got through


def test_a_dashboard_the_route_must_write_for_is_the_routes(
    served: Bot, shops: dict[str, int], clean_engine: Engine
) -> None:
    """A run whose process died is reaped before it is shown, and a person without stored
    settings gets the defaults stored: both writes are the route's, so the fast path hands
    such a request on (it would have shown the run `running`)."""
    with session_scope(clean_engine) as session:
        session.add(SyncRun(shop_id=shops["a"], stream="wb_stocks", status="running", started_at=NOW, lease_token=1))
        session.execute(
            text("DELETE FROM notification_settings WHERE person_id = (SELECT id FROM people WHERE telegram_id = :t)"),
            {"t": A},
        )
    r = served.get(f"/shops/{shops['a']}/dashboard", params={"telegram_id": A})
    assert r.status_code == 200
    assert {s["stream"]: s["status"] for s in r.json()["last_syncs"]}["wb_stocks"] == "failed"
    with session_scope(clean_engine) as session:
        assert session.scalars(select(NotificationSettings.person_id)).all()  # the defaults, stored
    both(served, "GET", f"/shops/{shops['a']}/dashboard", params={"telegram_id": A})  # and now the fast path's


def test_a_lost_connection_is_one_503_then_replaced(served: Bot, shops: dict[str, int], clean_engine: Engine) -> None:
    """Orders, the batch poll and the ack share the loop's own connection (one per worker):
    whichever request finds it lost is a 503, and the next ones are served on a new one."""
    q = {"telegram_id": A}

    def ask() -> list[httpx.Response]:
        return [
            served.get(f"/shops/{shops['a']}/orders", params=q),
            served.post("/notifications/poll", json={"telegram_ids": [A]}),
            served.post("/notifications/ack", params=q, json={"cursor": 1}),
        ]

    assert [r.status_code for r in ask()] == [200, 200, 200]
    ended = end_api_connections(clean_engine)  # the fast path's, and the request pool's idle one
    assert ended and all(ended)
    lost = served.post("/notifications/poll", json={"telegram_ids": [A]})
    assert (lost.status_code, lost.json()["error"]["code"]) == (503, "unavailable")
    assert [r.status_code for r in ask()] == [200, 200, 200]
