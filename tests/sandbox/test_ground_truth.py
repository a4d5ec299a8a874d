"""Ground truth and transitions agree with each other and with the data served."""

from __future__ import annotations

from datetime import datetime, timedelta

from sandbox.timefmt import MSK
from sandbox.world import World


def msk(naive: str) -> float:
    return datetime.fromisoformat(naive).replace(tzinfo=MSK).timestamp()


def kinds(world: World, shop: str, kind: str, **kw) -> list:
    return [t for t in world.transitions(shop, **kw) if t.kind == kind]


def test_wb_transitions_match_truth(make_app) -> None:
    world = make_app(scenario="tiny:wb_orders=300").state.world
    orders, sales, reviews = world.wb_orders("wb1"), world.wb_sales("wb1"), world.wb_reviews("wb1")
    all_t = world.transitions("wb1")
    assert [t.at for t in all_t] == sorted(t.at for t in all_t)
    # A new order is at its `date` (when placed); the first ones were placed before the history
    # the sandbox generates begins (statistics list them up to 3 days later).
    placed = {s for s, r in orders.items() if msk(r["date"]) > world.history_start}
    assert {t.entity_id for t in kinds(world, "wb1", "new_order")} == placed and len(placed) > 0.95 * len(orders)
    assert {t.entity_id for t in kinds(world, "wb1", "cancellation")} == {s for s, r in orders.items() if r["isCancel"]}
    for kind, prefix in (("buyout", "S"), ("return", "R")):
        seen = {t.entity_id: t.data["saleID"] for t in kinds(world, "wb1", kind)}
        assert set(seen.values()) == {s for s in sales if s.startswith(prefix)}
        assert all(sales[sale]["srid"] == srid for srid, sale in seen.items())
    feed = world.wb_feed("wb1")  # the same world: every transition's srid has its feed row
    assert {t.entity_id for t in kinds(world, "wb1", "cancellation")} == {
        s for s, r in feed.items() if r["status"] == "cancel"
    }
    rv = kinds(world, "wb1", "review")
    assert {t.entity_id: t.data["stars"] for t in rv} == {i: f["productValuation"] for i, f in reviews.items()}
    assert {f["productValuation"] for f in reviews.values()} >= {1, 5}


def test_allegro_transitions_match_truth(make_app) -> None:
    world = make_app(scenario="tiny:allegro_orders=300").state.world
    forms = world.allegro_checkout_forms("allegro1")
    assert {t.entity_id for t in kinds(world, "allegro1", "new_order")} == set(forms)
    cancels = kinds(world, "allegro1", "cancellation")
    assert {t.entity_id for t in cancels} == {i for i, f in forms.items() if f["status"] == "CANCELLED"}
    assert {t.data["paid"] for t in cancels} == {True, False}  # before and after payment
    assert {t.entity_id for t in kinds(world, "allegro1", "return")} == set(world.allegro_customer_returns("allegro1"))
    # A payment is a transition of its own (an order bought before a point can be paid after it).
    payments = kinds(world, "allegro1", "payment")
    paid = {i: f["payment"]["finishedAt"] for i, f in forms.items() if f["payment"].get("finishedAt")}
    assert {t.entity_id: t.at.isoformat().replace("+00:00", ".000Z") for t in payments} == paid


def test_stock_crossings_are_consistent_with_current_stock(make_app) -> None:
    world = make_app(scenario="lively").state.world
    for shop in ("wb1", "allegro1"):
        crossings = [t for t in world.transitions(shop) if t.kind.startswith("stock_")]
        assert crossings
        level = world.scenario.low_stock_level
        last: dict[str, str] = {}
        for t in crossings:
            if t.kind == "stock_low":
                assert t.data["previous"] >= level > t.data["total"]
            else:
                assert t.data["previous"] < level <= t.data["total"]
            assert last.get(t.entity_id) != t.kind, "crossings alternate per product"
            last[t.entity_id] = t.kind
        totals: dict[str, int] = {}
        for (sku, _wh), q in world.stock(shop).items():
            product = sku.split("/")[0]
            totals[product] = totals.get(product, 0) + q
        for product, kind in last.items():
            assert (totals[product] < level) == (kind == "stock_low")


def test_live_scenario_grows_with_the_clock(make_app) -> None:
    world = make_app(scenario="lively").state.world
    t0 = world.now_dt()
    n0 = len(world.wb_orders("wb1"))
    world.advance(3600)
    new = kinds(world, "wb1", "new_order", since=t0)
    assert new and all(t0 < t.at <= world.now_dt() for t in new)
    # A new order happens when placed: the feed shows it then (statistics list it 1 min to 3 days
    # later, so they grew by the orders listed this hour, some placed days ago).
    feed = world.wb_feed("wb1")
    placed = {s for s, r in feed.items() if datetime.fromisoformat(r["createdAt"]) > t0}
    assert {t.entity_id for t in new} == placed
    assert all(datetime.fromisoformat(feed[t.entity_id]["createdAt"]) == t.at for t in new)
    assert len(world.wb_orders("wb1")) > n0
    window = world.transitions("wb1", since=t0, until=t0 + timedelta(minutes=30))
    assert all(t.at <= t0 + timedelta(minutes=30) for t in window)


async def test_operator_truth_and_transitions_over_http(world, client) -> None:
    truth = (await client.get("/_sandbox/truth/wb1")).json()
    assert {r["srid"] for r in truth["orders"]} == set(world.wb_orders("wb1"))
    assert len(truth["stock"]) == len(world.wb_stock("wb1")) and truth["reviews"]
    al = (await client.get("/_sandbox/truth/allegro1")).json()
    assert {f["id"] for f in al["checkoutForms"]} == set(world.allegro_checkout_forms("allegro1"))
    tr = (await client.get("/_sandbox/truth/wb1/transitions", params={"since": "2026-11-20T00:00:00Z"})).json()[
        "transitions"
    ]
    assert tr and all(t["at"] > "2026-11-20T00:00:00Z" for t in tr)
    assert (await client.get("/_sandbox/truth/nope")).status_code == 404
    before = (await client.get("/_sandbox/clock")).json()["now"]
    after = (await client.post("/_sandbox/clock/advance", json={"seconds": 90})).json()["now"]
    assert (before, after) == ("2026-11-23T09:00:00Z", "2026-11-23T09:01:30Z")
    assert (await client.post("/_sandbox/clock/advance", json={"seconds": -1})).status_code == 400


async def test_request_log_over_http_has_no_secrets(world, client) -> None:
    token = world.wb_token("wb1")
    await client.get(
        "/wb-statistics/api/v1/supplier/orders", params={"dateFrom": "2026-11-22"}, headers={"Authorization": token}
    )
    await client.get(
        "/wb-feedbacks/api/v1/feedbacks",
        params={"isAnswered": "false", "take": 1, "skip": 0, "token": "leak"},
        headers={"Authorization": token},
    )
    body = (await client.get("/_sandbox/requests", params={"shop": "wb1"})).text
    rows = (await client.get("/_sandbox/requests", params={"shop": "wb1"})).json()["requests"]
    assert [r["path"] for r in rows] == ["/api/v1/supplier/orders", "/api/v1/feedbacks"]
    assert rows[0]["status"] == 200 and rows[0]["token_id"] and rows[0]["query"] == "dateFrom=2026-11-22"
    assert token not in body and "leak" not in body
    since = (await client.get("/_sandbox/requests", params={"since_seq": rows[0]["seq"]})).json()["requests"]
    assert [r["seq"] for r in since] == [rows[1]["seq"]]


async def test_operator_switches(world, client) -> None:
    r = await client.put("/_sandbox/rate-limits", json={"enabled": False})
    assert r.json()["enabled"] is False
    for _ in range(3):
        ok = await client.get(
            "/wb-statistics/api/v1/supplier/sales",
            params={"dateFrom": "2026-11-22"},
            headers={"Authorization": world.wb_token("wb1")},
        )
        assert ok.status_code == 200
    tok = (
        await client.post("/_sandbox/wb/tokens", json={"shop": "wb1", "categories": ["feedbacks"], "ttl_seconds": 60})
    ).json()["token"]
    denied = await client.get(
        "/wb-statistics/api/v1/supplier/sales", params={"dateFrom": "2026-11-22"}, headers={"Authorization": tok}
    )
    assert denied.status_code == 401
    assert (await client.post("/_sandbox/allegro/event-retention", json={"seconds": 3600})).json() == {
        "event_retention_s": 3600.0
    }
    assert world.event_retention() == 3600
    info = (await client.get("/_sandbox/info")).json()
    assert info["rate_limits"]["enabled"] is False and {s["name"] for s in info["shops"]} == {"wb1", "allegro1"}
    creds = (await client.get("/_sandbox/credentials")).json()
    assert creds["WB_TOKEN_WB1"] == world.wb_token("wb1")


def test_same_seed_same_world_other_seed_other_world(make_app) -> None:
    a = make_app(seed=3).state.world
    b = make_app(seed=3).state.world
    c = make_app(seed=4).state.world
    assert a.wb_orders("wb1") == b.wb_orders("wb1") and a.allegro_checkout_forms(
        "allegro1"
    ) == b.allegro_checkout_forms("allegro1")
    assert a.wb_orders("wb1") != c.wb_orders("wb1")


def test_a_finished_shop_does_not_grow_when_the_clock_runs(make_app) -> None:
    world = make_app(scenario="tiny").state.world
    sizes = (len(world.wb_orders("wb1")), len(world.allegro_checkout_forms("allegro1")), len(world.wb_reviews("wb1")))
    world.advance(30 * 86400)
    assert len(world.wb_orders("wb1")) == sizes[0] == 40
    assert len(world.wb_reviews("wb1")) == sizes[2]
    # Allegro forms stay until 365 days old.
    assert len(world.allegro_checkout_forms("allegro1")) == sizes[1] == 25
