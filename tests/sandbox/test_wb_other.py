"""WB analytics stocks report, feedbacks, content cards, FBS orders."""

from __future__ import annotations

from tests.sandbox.conftest import client_for, wb_headers

STOCKS = "/wb-analytics/api/analytics/v1/stocks-report/wb-warehouses"
FEEDBACKS = "/wb-feedbacks/api/v1/feedbacks"
ARCHIVE = "/wb-feedbacks/api/v1/feedbacks/archive"
CARDS = "/wb-content/content/v2/get/cards/list"


async def test_stocks_report_pages_to_ground_truth(make_app) -> None:
    app = make_app(rate_limits=False)
    world = app.state.world
    async with client_for(app) as c:
        got, offset = [], 0
        while True:
            r = await c.post(STOCKS, json={"nmIds": [], "limit": 5, "offset": offset}, headers=wb_headers(world))
            items = r.json()["data"]["items"]
            if not items:
                break
            got.extend(items)
            offset += 5
        truth = world.wb_stock("wb1")
        assert {(i["nmId"], i["chrtId"], i["warehouseId"]): i["quantity"] for i in got} == truth
        assert len(got) == len(truth)
        nm = next(iter(truth))[0]
        only = (
            await c.post(STOCKS, json={"nmIds": [nm], "limit": 1000, "offset": 0}, headers=wb_headers(world))
        ).json()
        assert {i["nmId"] for i in only["data"]["items"]} == {nm}
        for bad in ({"nmIds": list(range(1001)), "limit": 10}, {"limit": 250_001}, {"limit": 10, "offset": -1}):
            assert (await c.post(STOCKS, json=bad, headers=wb_headers(world))).status_code == 400


async def test_stocks_report_limit_is_three_per_minute(world, client) -> None:
    h = wb_headers(world)
    assert (await client.post(STOCKS, json={"limit": 10}, headers=h)).status_code == 200
    r = await client.post(STOCKS, json={"limit": 10}, headers=h)
    assert r.status_code == 429 and r.headers["X-Ratelimit-Retry"] == "20"
    world.advance(20)
    assert (await client.post(STOCKS, json={"limit": 10}, headers=h)).status_code == 200


async def test_stock_moves_keep_totals_on_transfer_and_change_over_time(make_app) -> None:
    app = make_app(scenario="lively")
    world = app.state.world
    model = world.wb["wb1"].stock
    before = world.wb_stock("wb1")
    world.advance(2 * 86400)
    after = world.wb_stock("wb1")
    assert before != after
    transfers = [m for m in model.moves if m.kind == "transfer"]
    assert transfers and all(sum(d for _s, _w, d in m.deltas) == 0 for m in transfers)
    assert all(q >= 0 for q in after.values())
    kinds = {t.kind for t in world.transitions("wb1")}
    assert {"stock_low", "stock_recovered"} & kinds


async def test_feedbacks_envelope_bounds_and_answering(make_app) -> None:
    app = make_app(scenario="tiny:live=1", rate_limits=False)
    world = app.state.world
    h = wb_headers(world)
    async with client_for(app) as c:

        async def page(answered: bool, **extra) -> dict:
            params = {"isAnswered": str(answered).lower(), "take": 5000, "skip": 0, **extra}
            r = await c.get(FEEDBACKS, params=params, headers=h)
            assert r.status_code == 200
            return r.json()

        un, ans = await page(False), await page(True)
        assert un["error"] is False and un["errorText"] == "" and un["additionalErrors"] is None
        ids_un = {f["id"] for f in un["data"]["feedbacks"]}
        ids_ans = {f["id"] for f in ans["data"]["feedbacks"]}
        ids_arch = {f["id"] for f in (await _archive(c, h))["data"]["feedbacks"]}
        # Every review is in exactly one place.
        assert ids_un | ids_ans | ids_arch == set(world.wb_reviews("wb1"))
        assert not ids_un & ids_ans and not ids_un & ids_arch and not ids_ans & ids_arch
        assert un["data"]["countUnanswered"] == len(ids_un) and un["data"]["countArchive"] == len(ids_ans)
        assert all(f["answer"] is None for f in un["data"]["feedbacks"])
        assert all(f["answer"]["text"] for f in ans["data"]["feedbacks"])
        dates = [f["createdDate"] for f in un["data"]["feedbacks"]]
        assert dates == sorted(dates, reverse=True)
        asc = (await page(False, order="dateAsc"))["data"]["feedbacks"]
        assert [f["createdDate"] for f in asc] == sorted(dates)
        assert len((await page(False, take=1, skip=1))["data"]["feedbacks"]) == min(1, max(0, len(ids_un) - 1))
        # A new review arrives unanswered, and an answerable one gets its answer 6 h later.
        model = world.wb["wb1"].reviews
        j = model.visible_count(world.now())
        while not model.answered(j) or model.rating_only(j):
            j += 1
        world.advance(model.appear(j) - world.now())
        assert model.review_id(j) in {f["id"] for f in (await page(False))["data"]["feedbacks"]}
        world.advance(6 * 3600)
        assert model.review_id(j) in {f["id"] for f in (await page(True))["data"]["feedbacks"]}
        for bad in (
            {"isAnswered": "maybe", "take": 1, "skip": 0},
            {"isAnswered": "true", "take": 5001, "skip": 0},
            {"isAnswered": "true", "take": 1, "skip": 199_991},
            {"isAnswered": "true", "skip": 0},
            {"isAnswered": "true", "take": 0, "skip": 0},
        ):
            r = await c.get(FEEDBACKS, params=bad, headers=h)
            assert r.status_code == 400 and r.json()["error"] is True and r.json()["errorText"]


async def _archive(c, h, **extra) -> dict:
    r = await c.get(ARCHIVE, params={"take": 5000, "skip": 0, **extra}, headers=h)
    assert r.status_code == 200, r.text
    return r.json()


async def test_the_archive_holds_answered_expired_and_rating_only_reviews(make_app) -> None:
    async def ids(c, h, place: str) -> set[str]:
        if place == "archive":
            return {f["id"] for f in (await _archive(c, h))["data"]["feedbacks"]}
        params = {"isAnswered": str(place == "answered").lower(), "take": 5000, "skip": 0}
        return {f["id"] for f in (await c.get(FEEDBACKS, params=params, headers=h)).json()["data"]["feedbacks"]}

    def fresh(pick):
        """A new live shop, its clock moved to the first coming review `pick` selects."""
        app = make_app(scenario="tiny:live=1", rate_limits=False)
        world = app.state.world
        model = world.wb["wb1"].reviews
        j0 = model.visible_count(world.now())
        j = next(j for j in range(j0, j0 + 1000) if pick(model, j))
        world.advance(model.appear(j) - world.now())
        return app, world, model, j, model.review_id(j)

    # (3) No text and no photos: archived at once, never listed in /api/v1/feedbacks.
    app, world, model, j, rid = fresh(lambda m, j: m.rating_only(j))
    async with client_for(app) as c:
        h = wb_headers(world)
        bare = model.feedback(j, world.now())
        assert bare["text"] == "" and not bare["photoLinks"]
        assert rid in await ids(c, h, "archive")
        assert rid not in await ids(c, h, "unanswered") | await ids(c, h, "answered")
    # Photos without text are listed like any other review.
    app, world, model, j, rid = fresh(lambda m, j: m.photo_only(j))
    async with client_for(app) as c:
        h = wb_headers(world)
        photo = model.feedback(j, world.now())
        assert photo["text"] == "" and photo["photoLinks"]
        assert rid in await ids(c, h, "unanswered")
    # (1) Answered: listed as answered for a while, then archived, answer and all.
    app, world, model, j, rid = fresh(lambda m, j: m.answered(j) and not m.rating_only(j))
    async with client_for(app) as c:
        h = wb_headers(world)
        assert rid in await ids(c, h, "unanswered")
        world.advance(6 * 3600)
        assert rid in await ids(c, h, "answered")
        world.advance(3 * 86400)
        archived = {f["id"]: f for f in (await _archive(c, h))["data"]["feedbacks"]}
        assert archived[rid]["answer"]["text"] and rid not in await ids(c, h, "answered")
    # (2) No answer within 30 days: archived unanswered.
    app, world, model, j, rid = fresh(lambda m, j: not m.answered(j) and not m.rating_only(j))
    async with client_for(app) as c:
        h = wb_headers(world)
        world.advance(30 * 86400 - 1)
        assert rid in await ids(c, h, "unanswered")
        world.advance(1)
        archived = {f["id"]: f for f in (await _archive(c, h))["data"]["feedbacks"]}
        assert archived[rid]["answer"] is None and rid not in await ids(c, h, "unanswered")


async def test_archive_pages_by_skip_within_its_limits(make_app) -> None:
    app = make_app(scenario="day", rate_limits=False)
    world = app.state.world
    h = wb_headers(world)
    async with client_for(app) as c:
        everything = (await _archive(c, h))["data"]
        assert set(everything) == {"feedbacks"}  # no counts in the archive's envelope
        all_ids = [f["id"] for f in everything["feedbacks"]]
        assert len(all_ids) > 100
        dates = [f["createdDate"] for f in everything["feedbacks"]]
        assert dates == sorted(dates, reverse=True)  # dateDesc by default
        paged: list[str] = []
        skip = 0
        while True:
            rows = (await _archive(c, h, take=37, skip=skip, order="dateAsc"))["data"]["feedbacks"]
            paged += [f["id"] for f in rows]
            if len(rows) < 37:
                break
            skip += 37
        assert paged == list(reversed(all_ids))
        nm = everything["feedbacks"][0]["productDetails"]["nmId"]
        only = (await _archive(c, h, nmId=nm))["data"]["feedbacks"]
        assert only and all(f["productDetails"]["nmId"] == nm for f in only)
        assert (await _archive(c, h, skip=250_000))["data"]["feedbacks"] == []  # no skip bound in its spec
        bad_params = (
            {"take": 5001, "skip": 0},
            {"take": 0, "skip": 0},
            {"skip": 0},
            {"take": 1},
            {"take": 1, "skip": -1},
        )
        for bad in bad_params:
            r = await c.get(ARCHIVE, params=bad, headers=h)
            assert r.status_code == 400 and r.json()["error"] is True and r.json()["errorText"]


async def test_the_archive_shares_the_feedbacks_rate_limit(world, client) -> None:
    h = wb_headers(world)
    listed = {"isAnswered": "false", "take": 1, "skip": 0}
    codes = [(await client.get(FEEDBACKS, params=listed, headers=h)).status_code for _ in range(3)]
    codes += [(await client.get(ARCHIVE, params={"take": 1, "skip": 0}, headers=h)).status_code for _ in range(4)]
    assert codes == [200] * 6 + [429]
    limited = await client.get(ARCHIVE, params={"take": 1, "skip": 0}, headers=h)
    assert limited.status_code == 429 and "x-ratelimit-retry" in limited.headers


async def test_feedbacks_rate_three_per_second_burst_six(world, client) -> None:
    h = wb_headers(world)
    params = {"isAnswered": "false", "take": 1, "skip": 0}
    codes = [(await client.get(FEEDBACKS, params=params, headers=h)).status_code for _ in range(7)]
    assert codes == [200] * 6 + [429]
    world.advance(1 / 3)
    assert (await client.get(FEEDBACKS, params=params, headers=h)).status_code == 200


async def test_cards_cursor_paging(make_app) -> None:
    app = make_app(scenario="day", rate_limits=False)
    world = app.state.world
    async with client_for(app) as c:
        cursor: dict = {"limit": 7}
        got = []
        while True:
            body = (
                await c.post(
                    CARDS, json={"settings": {"cursor": cursor, "filter": {"withPhoto": -1}}}, headers=wb_headers(world)
                )
            ).json()
            got.extend(body["cards"])
            if body["cursor"]["total"] < 7:
                break
            cursor = {"limit": 7, "updatedAt": body["cursor"]["updatedAt"], "nmID": body["cursor"]["nmID"]}
        assert len(got) == 60 and len({x["nmID"] for x in got}) == 60
        assert all(x["photos"] and x["sizes"][0]["skus"] for x in got)
        bad = await c.post(CARDS, json={"settings": {"cursor": {"limit": 101}}}, headers=wb_headers(world))
        assert bad.status_code == 400


async def test_fbs_orders_new_list_and_status(make_app) -> None:
    app = make_app(scenario="lively", rate_limits=False)
    world = app.state.world
    h = wb_headers(world)
    m = world.wb["wb1"].orders
    async with client_for(app) as c:
        listed, nxt = [], 0
        while True:
            body = (await c.get("/wb-marketplace/api/v3/orders", params={"limit": 10, "next": nxt}, headers=h)).json()
            if not body["orders"]:
                break
            listed.extend(body["orders"])
            nxt = body["next"]
        expected = [
            m.srid(i)
            for i in range(m.visible_count(world.now()))
            if m.fbs(i) and m.appear(i) >= world.now() - 30 * 86400
        ]
        assert [o["rid"] for o in listed] == expected and expected
        truth = world.wb_orders("wb1")
        assert all(truth[o["rid"]]["warehouseType"] == "Склад продавца" for o in listed)
        assert all(
            o["price"] == int(truth[o["rid"]]["totalPrice"] * 100) or truth[o["rid"]]["totalPrice"] == 0 for o in listed
        )
        st = (
            await c.post("/wb-marketplace/api/v3/orders/status", json={"orders": [o["id"] for o in listed]}, headers=h)
        ).json()["orders"]
        assert len(st) == len(listed)
        for o, s in zip(listed, st, strict=True):
            assert (s["supplierStatus"] == "cancel") == truth[o["rid"]]["isCancel"]
        # Wait for a new FBS order to arrive.
        i = m.visible_count(world.now())
        while not m.fbs(i):
            i += 1
        world.advance(m.appear(i) - world.now())
        new = (await c.get("/wb-marketplace/api/v3/orders/new", headers=h)).json()["orders"]
        assert m.srid(i) in {o["rid"] for o in new}
        bad = await c.get("/wb-marketplace/api/v3/orders", params={"limit": 1001, "next": 0}, headers=h)
        assert bad.status_code == 400
        too_wide = await c.get(
            "/wb-marketplace/api/v3/orders",
            params={"limit": 10, "next": 0, "dateFrom": 0, "dateTo": 40 * 86400},
            headers=h,
        )
        assert too_wide.status_code == 400


async def test_fbs_4xx_costs_ten_requests(world, client) -> None:
    h = wb_headers(world)
    r = await client.get("/wb-marketplace/api/v3/orders", params={"limit": 0, "next": 0}, headers=h)
    assert r.status_code == 400
    ok = await client.get("/wb-marketplace/api/v3/orders/new", headers=h)
    assert ok.headers["X-Ratelimit-Remaining"] == "9"  # 20 - 10 - 1
