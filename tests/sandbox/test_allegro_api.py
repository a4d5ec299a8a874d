"""Allegro API: Accept, checkout forms (filters, sorts, cap), events, offers, returns, limits."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from tests.sandbox.conftest import ALLEGRO_BETA, allegro_headers, client_for

FORMS = "/allegro-api/order/checkout-forms"
EVENTS = "/allegro-api/order/events"


async def test_accept_is_enforced(world, client) -> None:
    r = await client.get(FORMS, headers=allegro_headers(world, accept="application/json"))
    assert r.status_code == 406 and r.json()["errors"][0]["code"]
    ok = await client.get(FORMS, headers=allegro_headers(world))
    assert ok.headers["content-type"].startswith("application/vnd.allegro.public.v1+json")
    assert "trace-id" in ok.headers and ok.headers["x-ratelimit-remaining"].isdigit()


async def test_listing_default_sort_and_paging_cover_truth(world, client) -> None:
    h = allegro_headers(world)
    truth = world.allegro_checkout_forms("allegro1")
    seen = []
    offset = 0
    while True:
        body = (await client.get(FORMS, params={"offset": offset, "limit": 7}, headers=h)).json()
        assert body["totalCount"] == len(truth) and body["count"] == len(body["checkoutForms"])
        if not body["checkoutForms"]:
            break
        seen.extend(body["checkoutForms"])
        offset += 7
    assert {f["id"]: f for f in seen} == truth and len(seen) == len(truth)
    bought = [f["lineItems"][0]["boughtAt"] for f in seen]
    assert bought == sorted(bought, reverse=True)


@pytest.mark.parametrize("sort", ["lineItems.boughtAt", "-lineItems.boughtAt", "updatedAt", "-updatedAt"])
async def test_sorts(world, client, sort) -> None:
    forms = (await client.get(FORMS, params={"sort": sort}, headers=allegro_headers(world))).json()["checkoutForms"]
    key = (lambda f: f["updatedAt"]) if sort.endswith("updatedAt") else (lambda f: f["lineItems"][0]["boughtAt"])
    values = [key(f) for f in forms]
    assert values == sorted(values, reverse=sort.startswith("-")) and len(forms) == 25


async def test_filters_match_ground_truth(world, client) -> None:
    h = allegro_headers(world)
    truth = list(world.allegro_checkout_forms("allegro1").values())

    async def ids(**params: str) -> set[str]:
        body = (await client.get(FORMS, params=params, headers=h)).json()
        assert body["totalCount"] == len(body["checkoutForms"])
        return {f["id"] for f in body["checkoutForms"]}

    assert await ids(status="CANCELLED") == {f["id"] for f in truth if f["status"] == "CANCELLED"}
    assert await ids(**{"fulfillment.status": "PICKED_UP"}) == {
        f["id"] for f in truth if f["fulfillment"]["status"] == "PICKED_UP"
    }
    mid = sorted(f["lineItems"][0]["boughtAt"] for f in truth)[10]
    assert await ids(**{"lineItems.boughtAt.gte": mid}) == {
        f["id"] for f in truth if f["lineItems"][0]["boughtAt"] >= mid
    }
    assert await ids(**{"lineItems.boughtAt.lte": mid}) == {
        f["id"] for f in truth if f["lineItems"][0]["boughtAt"] <= mid
    }
    upd = sorted(f["updatedAt"] for f in truth)[12]
    assert await ids(**{"updatedAt.gte": upd}) == {f["id"] for f in truth if f["updatedAt"] >= upd}
    assert await ids(**{"updatedAt.lte": upd}) == {f["id"] for f in truth if f["updatedAt"] <= upd}
    login = Counter(f["buyer"]["login"] for f in truth).most_common(1)[0][0]
    assert await ids(**{"buyer.login": login}) == {f["id"] for f in truth if f["buyer"]["login"] == login}


@pytest.mark.parametrize(
    "params",
    [
        {"offset": 9950, "limit": 51},
        {"offset": 10000},
        {"limit": 101},
        {"limit": 0},
        {"offset": -1},
        {"sort": "price"},
        {"status": "PAID"},
        {"updatedAt.gte": "yesterday"},
    ],
)
async def test_listing_validation_errors(world, client, params) -> None:
    r = await client.get(FORMS, params=params, headers=allegro_headers(world))
    assert r.status_code == 422
    err = r.json()["errors"][0]
    assert err["code"] == "VALIDATION_ERROR" and set(err) >= {"code", "message", "details", "path", "userMessage"}


async def test_offset_cap_edge_is_allowed(world, client) -> None:
    r = await client.get(FORMS, params={"offset": 9900, "limit": 100}, headers=allegro_headers(world))
    assert r.status_code == 200 and r.json()["checkoutForms"] == []


async def test_big_window_needs_splitting(make_app) -> None:
    app = make_app(scenario="allegro-200k:allegro_orders=30000", rate_limits=False)
    world = app.state.world
    async with client_for(app) as c:
        r = await c.get(FORMS, params={"offset": 9900, "limit": 100}, headers=allegro_headers(world))
        assert r.status_code == 200 and r.json()["totalCount"] == 30000 and r.json()["count"] == 100
        assert (
            await c.get(FORMS, params={"offset": 9901, "limit": 100}, headers=allegro_headers(world))
        ).status_code == 422


async def test_form_by_id(world, client) -> None:
    h = allegro_headers(world)
    truth = world.allegro_checkout_forms("allegro1")
    some = next(iter(truth))
    r = await client.get(f"{FORMS}/{some}", headers=h)
    assert r.status_code == 200 and r.json() == truth[some]
    assert (await client.get(f"{FORMS}/not-a-uuid", headers=h)).status_code == 422
    missing = await client.get(f"{FORMS}/00000000-0000-4000-8000-000000000000", headers=h)
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "NOT_FOUND"


async def test_order_lifecycle_over_time(make_app) -> None:
    app = make_app(scenario="tiny:live=1")
    world = app.state.world
    m = world.allegro["allegro1"].orders
    k = m.visible_count(world.now())
    while not m.shipped(k):
        k += 1
    world.advance(m.appear(k) - world.now())
    seen = []
    for step in (0, 120, 480, 6600, 86400 - 7200, 2 * 86400):
        world.advance(step)
        form = world.allegro_checkout_forms("allegro1")[m.form_id(k)]
        seen.append((form["status"], form["fulfillment"]["status"]))
    assert seen == [
        ("BOUGHT", "NEW"),
        ("FILLED_IN", "NEW"),
        ("READY_FOR_PROCESSING", "NEW"),
        ("READY_FOR_PROCESSING", "PROCESSING"),
        ("READY_FOR_PROCESSING", "SENT"),
        ("READY_FOR_PROCESSING", "PICKED_UP"),
    ]


async def read_journal(c, world, **params) -> list[dict]:
    h = allegro_headers(world)
    out, cursor = [], None
    while True:
        q = {"limit": 10, **params}
        if cursor:
            q["from"] = cursor
        events = (await c.get(EVENTS, params=q, headers=h)).json()["events"]
        if not events:
            return out
        out.extend(events)
        cursor = events[-1]["id"]


async def test_event_journal_pages_strictly_after_and_oldest_first(world, client) -> None:
    events = await read_journal(client, world)
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert {e["order"]["checkoutForm"]["id"] for e in events} == set(world.allegro_checkout_forms("allegro1"))
    types = Counter(e["type"] for e in events)
    assert types["BOUGHT"] == 25 and types["FULFILLMENT_STATUS_CHANGED"] > 0
    # Latest revision in the journal equals the form's revision.
    last_rev = {e["order"]["checkoutForm"]["id"]: e["order"]["checkoutForm"]["revision"] for e in events}
    for fid, form in world.allegro_checkout_forms("allegro1").items():
        assert last_rev[fid] == form["revision"]
    stats = (await client.get("/allegro-api/order/event-stats", headers=allegro_headers(world))).json()
    assert stats["latestEvent"]["id"] == events[-1]["id"]


async def test_events_type_filter_and_limits(world, client) -> None:
    only = await read_journal(client, world, type="BOUGHT")
    assert only and all(e["type"] == "BOUGHT" for e in only) and len(only) == 25
    h = allegro_headers(world)
    for bad in ({"limit": 1001}, {"limit": 0}, {"type": "PAID"}, {"from": "abc"}):
        assert (await client.get(EVENTS, params=bad, headers=h)).status_code == 422
    assert len((await client.get(EVENTS, params={"limit": 1000}, headers=h)).json()["events"]) <= 1000


async def test_duplicate_ready_for_processing_events_exist(make_app) -> None:
    app = make_app(scenario="tiny:allegro_orders=400", rate_limits=False)
    world = app.state.world
    async with client_for(app) as c:
        events = await read_journal(c, world, type="READY_FOR_PROCESSING", limit=1000)
    per_form = Counter(e["order"]["checkoutForm"]["id"] for e in events)
    assert max(per_form.values()) == 2
    assert len({e["id"] for e in events}) == len(events)


async def test_event_retention_gap(make_app) -> None:
    app = make_app(event_retention_s=2 * 86400)
    world = app.state.world
    async with client_for(app) as c:
        events = await read_journal(c, world)
        oldest = datetime.fromtimestamp(world.now() - 2 * 86400, tz=UTC)
        assert events and all(
            datetime.fromisoformat(e["occurredAt"].replace("Z", "+00:00")) >= oldest.replace(second=0)
            for e in events[1:]
        )
        # A cursor older than the retention resumes at the oldest retained event.
        resumed = (await c.get(EVENTS, params={"from": "1"}, headers=allegro_headers(world))).json()["events"]
        assert resumed[0]["id"] == events[0]["id"]
        stats = (await c.get("/allegro-api/order/event-stats", headers=allegro_headers(world))).json()
        assert stats["latestEvent"] is not None
        world.advance(10 * 86400)
        fresh = world.issue_allegro_pair("allegro1").access_token  # the old one expired meanwhile
        h = {**allegro_headers(world), "Authorization": f"Bearer {fresh}"}
        stats = (await c.get("/allegro-api/order/event-stats", headers=h)).json()
        assert stats == {"latestEvent": None}


async def test_offers_paging_and_status(world, client) -> None:
    h = allegro_headers(world)
    body = (await client.get("/allegro-api/sale/offers", params={"limit": 2}, headers=h)).json()
    assert body["count"] == 2 and body["totalCount"] == 4
    rest = (await client.get("/allegro-api/sale/offers", params={"limit": 2, "offset": 2}, headers=h)).json()["offers"]
    all_ids = {o["id"] for o in body["offers"] + rest}
    assert all_ids == set(world.allegro_offers("allegro1"))
    for status in ("ACTIVE", "ENDED"):
        got = (await client.get("/allegro-api/sale/offers", params={"publication.status": status}, headers=h)).json()[
            "offers"
        ]
        assert all(o["publication"]["status"] == status for o in got)
        assert all((o["stock"]["available"] > 0) == (status == "ACTIVE") for o in got)
    assert (await client.get("/allegro-api/sale/offers", params={"limit": 1001}, headers=h)).status_code == 422


async def test_offer_events_keep_24_hours(make_app) -> None:
    app = make_app(scenario="lively", rate_limits=False)
    world = app.state.world
    async with client_for(app) as client:
        await check_offer_events(world, client)


async def check_offer_events(world, client) -> None:
    h = allegro_headers(world)
    page = await client.get("/allegro-api/sale/offer-events", params={"limit": 1000}, headers=h)
    events = page.json()["offerEvents"]
    assert events and {e["type"] for e in events} <= {"OFFER_STOCK_CHANGED", "OFFER_ENDED", "OFFER_ACTIVATED"}
    assert [int(e["id"]) for e in events] == sorted(int(e["id"]) for e in events)
    cutoff = world.now() - 86400
    assert all(datetime.fromisoformat(e["occurredAt"].replace("Z", "+00:00")).timestamp() >= cutoff for e in events)
    after = (await client.get("/allegro-api/sale/offer-events", params={"from": events[0]["id"]}, headers=h)).json()
    assert [e["id"] for e in after["offerEvents"]] == [e["id"] for e in events[1:101]]
    ended = (await client.get("/allegro-api/sale/offer-events", params={"type": "OFFER_ENDED"}, headers=h)).json()
    assert ended["offerEvents"] and all(e["type"] == "OFFER_ENDED" for e in ended["offerEvents"])
    # The last ENDED/ACTIVATED event of an offer agrees with its current publication status.
    status = {}
    for e in events:
        if e["type"] != "OFFER_STOCK_CHANGED":
            status[e["offer"]["id"]] = "ENDED" if e["type"] == "OFFER_ENDED" else "ACTIVE"
    offers = world.allegro_offers("allegro1")
    assert status and all(offers[oid]["publication"]["status"] == st for oid, st in status.items())


async def test_customer_returns_need_beta_accept(make_app) -> None:
    app = make_app(scenario="tiny:allegro_orders=300")
    world = app.state.world
    async with client_for(app) as c:
        assert (await c.get("/allegro-api/order/customer-returns", headers=allegro_headers(world))).status_code == 406
        r = await c.get("/allegro-api/order/customer-returns", headers=allegro_headers(world, accept=ALLEGRO_BETA))
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == len(body["customerReturns"]) > 0
    assert {x["id"] for x in body["customerReturns"]} == set(world.allegro_customer_returns("allegro1"))
    forms = world.allegro_checkout_forms("allegro1")
    assert all(forms[x["orderId"]]["fulfillment"]["status"] == "PICKED_UP" for x in body["customerReturns"])


async def test_per_client_limit(make_app) -> None:
    app = make_app(rate_limit_scale=1.0)
    world = app.state.world
    from sandbox.ratelimit import ALLEGRO_RATE

    # Drain the client's bucket directly, then one API call is refused and blocks a minute.
    for _ in range(ALLEGRO_RATE.burst):
        world.limiter.take(world.client_id, "allegro.client", ALLEGRO_RATE, world.now())
    async with client_for(app) as c:
        r = await c.get("/allegro-api/order/event-stats", headers=allegro_headers(world))
        assert r.status_code == 429 and r.headers["x-ratelimit-remaining"] == "0"
        world.advance(30)  # refilled tokens do not lift the block
        assert (await c.get("/allegro-api/order/event-stats", headers=allegro_headers(world))).status_code == 429
        world.advance(31)
        assert (await c.get("/allegro-api/order/event-stats", headers=allegro_headers(world))).status_code == 200
        # Both refusals are violations, the one that emptied the bucket and the one during the block.
        report = (await c.get("/_sandbox/rate-limits")).json()
        assert report["buckets"] == [{"owner": world.client_id, "bucket": "allegro.client", "refused": 2}]


async def test_a_form_due_within_the_second_is_not_listed_before_it_is_bought(make_app) -> None:
    """Sandbox time runs in fractions of a second (`--speed`, scaled benchmarks); a form bought at
    second t is not there at t - 0.5 (it used to be listed with no stage yet: a 500)."""
    app = make_app(scenario="tiny:live=1")
    world = app.state.world
    m = world.allegro["allegro1"].orders
    k = m.visible_count(world.now())
    world.advance(m.appear(k) - world.now() - 0.5)
    assert m.visible_count(world.now()) == k
    client = client_for(app)
    async with client:
        r = await client.get(FORMS, headers=allegro_headers(world), params={"limit": 100})
        assert r.status_code == 200 and m.form_id(k) not in {f["id"] for f in r.json()["checkoutForms"]}
        world.advance(0.5)
        r = await client.get(FORMS, headers=allegro_headers(world), params={"limit": 100})
        assert m.form_id(k) in {f["id"] for f in r.json()["checkoutForms"]}
