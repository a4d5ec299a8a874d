"""Allegro order merges (sandbox/allegro/merges.py), as the real API shows them: purchases paid
together become one new checkout form carrying their line items; the old ids answer 404 and
leave the listing; the journal gets a READY_FOR_PROCESSING for the new id, the old forms' events
stay; nothing is cancelled."""

from __future__ import annotations

from collections import Counter

from sandbox.world import World
from tests.sandbox.conftest import allegro_headers, client_for

FORMS = "/allegro-api/order/checkout-forms"
EVENTS = "/allegro-api/order/events"


async def _listing(c, world: World) -> list[dict]:
    out, offset = [], 0
    while True:
        body = (await c.get(FORMS, params={"offset": offset, "limit": 100}, headers=allegro_headers(world))).json()
        out.extend(body["checkoutForms"])
        offset += 100
        if offset >= body["totalCount"]:
            return out


async def _journal(c, world: World) -> list[dict]:
    out, cursor = [], None
    while True:
        params = {"limit": 1000, **({"from": cursor} if cursor else {})}
        events = (await c.get(EVENTS, params=params, headers=allegro_headers(world))).json()["events"]
        if not events:
            return out
        out.extend(events)
        cursor = events[-1]["id"]


def _next_natural_merge(world: World, shop: str = "allegro1"):
    m = world.allegro[shop].orders
    k = m.visible_count(world.now())
    while (merge := m.merges.natural(k)) is None or merge.members[0] < k:
        k += 1
    return m, merge


async def _assert_merged(c, world: World, old_ids: list[str], new_id: str, items: set[str]) -> None:
    h = allegro_headers(world)
    for old in old_ids:
        assert (await c.get(f"{FORMS}/{old}", headers=h)).status_code == 404
    new = (await c.get(f"{FORMS}/{new_id}", headers=h)).json()
    assert new["status"] == "READY_FOR_PROCESSING" and new["payment"]["finishedAt"]
    assert {i["id"] for i in new["lineItems"]} == items
    listed = Counter(f["id"] for f in await _listing(c, world))
    assert listed[new_id] == 1 and not any(listed[o] for o in old_ids)
    assert world.allegro_merges("allegro1") | {o: new_id for o in old_ids} == world.allegro_merges("allegro1")
    events = await _journal(c, world)
    about = [e for e in events if e["order"]["checkoutForm"]["id"] in (*old_ids, new_id)]
    new_events = [e for e in about if e["order"]["checkoutForm"]["id"] == new_id]
    assert new_events[0]["type"] == "READY_FOR_PROCESSING"
    assert {i["id"] for i in new_events[0]["order"]["lineItems"]} == items
    old_types = {e["type"] for e in about if e["order"]["checkoutForm"]["id"] != new_id}
    assert "BOUGHT" in old_types and old_types <= {"BOUGHT", "FILLED_IN"}  # kept, never cancelled


async def test_a_natural_merge_replaces_the_forms_of_one_buyer_by_a_new_one() -> None:
    from sandbox import SandboxConfig, create_app

    app = create_app(SandboxConfig(scenario="lively", rate_limits=False))
    world: World = app.state.world
    m, merge = _next_natural_merge(world)
    old_ids = [m.form_id(k) for k in merge.members]
    items = {i["id"] for k in merge.members for i in m.line_items(k)}
    assert len({m.buyer_login(k) for k in merge.members}) == 1
    async with client_for(app) as c:
        world.advance(m.appear(merge.last) + 60 - world.now())  # every purchase made, none paid
        h = allegro_headers(world)
        assert (await c.get(f"{FORMS}/{merge.new_id}", headers=h)).status_code == 404
        for old in old_ids:
            form = (await c.get(f"{FORMS}/{old}", headers=h)).json()
            assert form["status"] in ("BOUGHT", "FILLED_IN")
        world.advance(merge.at - world.now())
        await _assert_merged(c, world, old_ids, merge.new_id, items)
        kinds = {(t.kind, t.entity_id) for t in world.transitions("allegro1")}
        assert ("merge", merge.new_id) in kinds and ("payment", merge.new_id) in kinds
        assert not any((kind, old) in kinds for old in old_ids for kind in ("payment", "cancellation"))


async def test_the_operator_merges_unpaid_forms_deterministically_by_seed() -> None:
    from sandbox import SandboxConfig, create_app

    ids = []
    for _ in range(2):
        # An order every two minutes: two purchases within the ten minutes before payment.
        app = create_app(SandboxConfig(scenario="demo:allegro_merges=0", rate_limits=False))
        world: World = app.state.world
        m = world.allegro["allegro1"].orders
        k = m.visible_count(world.now())
        while not (m.paid(k) and m.paid(k + 1)):
            k += 1
        world.advance(m.appear(k + 1) + 30 - world.now())
        old_ids = [m.form_id(k), m.form_id(k + 1)]
        items = {i["id"] for j in (k, k + 1) for i in m.line_items(j)}
        async with client_for(app) as c:
            r = await c.post("/_sandbox/allegro/merge", json={"shop": "allegro1", "forms": old_ids})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["merged"] == old_ids
            await _assert_merged(c, world, old_ids, body["id"], items)
            again = await c.post("/_sandbox/allegro/merge", json={"shop": "allegro1", "forms": old_ids})
            assert again.status_code == 409 and "not readable" in again.json()["error"]
            # Later the new form goes on as an order does (processing), never paid twice.
            world.advance(3 * 3600)
            form = (await c.get(f"{FORMS}/{body['id']}", headers=allegro_headers(world))).json()
            assert form["fulfillment"]["status"] == "PROCESSING"
            rfp = [e for e in await _journal(c, world) if e["type"] == "READY_FOR_PROCESSING"]
            assert not any(e["order"]["checkoutForm"]["id"] in old_ids for e in rfp)
        ids.append(body["id"])
    assert ids[0] == ids[1]


async def test_the_operator_refuses_a_paid_form() -> None:
    from sandbox import SandboxConfig, create_app

    app = create_app(SandboxConfig(scenario="tiny", rate_limits=False))
    world: World = app.state.world
    truth = world.allegro_checkout_forms("allegro1")
    paid = [i for i, f in truth.items() if f["status"] == "READY_FOR_PROCESSING"][:2]
    async with client_for(app) as c:
        r = await c.post("/_sandbox/allegro/merge", json={"shop": "allegro1", "forms": paid})
        assert r.status_code == 409 and "paid" in r.json()["error"]
        bad = await c.post("/_sandbox/allegro/merge", json={"shop": "allegro1", "forms": "x"})
        assert bad.status_code == 400
