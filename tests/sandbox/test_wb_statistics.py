"""WB statistics orders/sales: paging, literal >=, flag=1, data shapes, auth, limits."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

import httpx

from sandbox.timefmt import MSK
from tests.sandbox.conftest import client_for, wb_headers

ORDERS = "/wb-statistics/api/v1/supplier/orders"
SALES = "/wb-statistics/api/v1/supplier/sales"


async def page_all(c: httpx.AsyncClient, path: str, headers: dict[str, str], key: str) -> tuple[dict[str, Any], int]:
    """Page flag=0 as a careful client would: stop on a page with nothing new."""
    seen: dict[str, Any] = {}
    date_from, pages = "2020-01-01", 0
    while True:
        r = await c.get(path, params={"dateFrom": date_from, "flag": 0}, headers=headers)
        assert r.status_code == 200, r.text
        rows = r.json()
        pages += 1
        new = [row for row in rows if row[key] not in seen or seen[row[key]] != row]
        for row in rows:
            seen[row[key]] = row
        if not rows or not new:
            return seen, pages
        date_from = rows[-1]["lastChangeDate"]


async def test_flag0_paging_reaches_ground_truth_with_small_cap(make_app) -> None:
    app = make_app(scenario="tiny:wb_orders=300", rate_limits=False, wb_row_cap=37)
    world = app.state.world
    async with client_for(app) as c:
        orders, pages = await page_all(c, ORDERS, wb_headers(world), "srid")
        sales, _ = await page_all(c, SALES, wb_headers(world), "saleID")
    assert pages > 300 // 37
    assert orders == world.wb_orders("wb1")
    assert sales == world.wb_sales("wb1")
    assert len(orders) == 300


async def test_rows_are_ordered_by_last_change_and_literal_ge(make_app) -> None:
    app = make_app(rate_limits=False, wb_row_cap=10)
    world = app.state.world
    async with client_for(app) as c:
        r = await c.get(ORDERS, params={"dateFrom": "2020-01-01"}, headers=wb_headers(world))
        rows = r.json()
        assert len(rows) == 10
        lcds = [row["lastChangeDate"] for row in rows]
        assert lcds == sorted(lcds)
        # Re-sending the last row's lastChangeDate returns that row again (>=).
        again = (await c.get(ORDERS, params={"dateFrom": lcds[-1]}, headers=wb_headers(world))).json()
        assert again[0]["lastChangeDate"] == lcds[-1]
        assert rows[-1]["srid"] in {row["srid"] for row in again}
        # Past the newest change: an empty list.
        newest = max(r["lastChangeDate"] for r in world.wb_orders("wb1").values())
        after = datetime.fromisoformat(newest) + timedelta(seconds=1)
        empty = await c.get(ORDERS, params={"dateFrom": after.isoformat()}, headers=wb_headers(world))
        assert empty.json() == []


async def test_baskets_cancellations_and_late_rows(world) -> None:
    orders = list(world.wb_orders("wb1").values())
    by_basket = defaultdict(list)
    for row in orders:
        by_basket[row["gNumber"]].append(row)
    multi = [rows for rows in by_basket.values() if len(rows) > 1]
    assert multi, "some baskets have several items"
    for rows in multi:
        assert len({r["srid"] for r in rows}) == len(rows)
        assert len({r["date"] for r in rows}) == 1
    cancelled = [r for r in orders if r["isCancel"]]
    assert cancelled and all(r["cancelDate"] != "0001-01-01T00:00:00" for r in cancelled)
    assert all(r["cancelDate"] == "0001-01-01T00:00:00" for r in orders if not r["isCancel"])
    late = [
        r
        for r in orders
        if datetime.fromisoformat(r["lastChangeDate"]) - datetime.fromisoformat(r["date"]) >= timedelta(days=1)
    ]
    assert late, "late rows exist"


async def test_cancellation_is_a_newer_version_of_the_same_srid(make_app) -> None:
    app = make_app(scenario="tiny:wb_orders=400", rate_limits=False)
    world = app.state.world
    model = world.wb["wb1"].orders
    i = next(i for i in range(400) if model.cancelled(i) and model.appear(i) + 4 * 3600 < world.now())
    before = model.order_row(i, model.appear(i) + 60)
    after = model.order_row(i, world.now())
    assert before["srid"] == after["srid"]
    assert (before["isCancel"], after["isCancel"]) == (False, True)
    assert after["lastChangeDate"] > before["lastChangeDate"]
    async with client_for(app) as c:
        rows = (await c.get(ORDERS, params={"dateFrom": before["lastChangeDate"]}, headers=wb_headers(world))).json()
    versions = [r for r in rows if r["srid"] == after["srid"]]
    assert versions == [after]


async def test_prices_start_at_zero_and_fill_in_when_the_clock_moves(make_app) -> None:
    app = make_app(scenario="tiny:live=1", rate_limits=False)
    world = app.state.world
    model = world.wb["wb1"].orders
    now = world.now()
    i = model.visible_count(now)
    while not model.zero_price(i):
        i += 1
    world.advance(model.appear(i) - now + 1)
    row = world.wb_orders("wb1")[model.srid(i)]
    assert row["totalPrice"] == 0 and row["priceWithDisc"] == 0
    world.advance(9 * 3600)
    row2 = world.wb_orders("wb1")[model.srid(i)]
    assert row2["totalPrice"] > 0 and row2["lastChangeDate"] > row["lastChangeDate"]


async def test_sales_and_returns(make_app) -> None:
    world = make_app(scenario="tiny:wb_orders=300").state.world
    sales = world.wb_sales("wb1")
    kinds = Counter(k[0] for k in sales)
    assert kinds["S"] > 0 and kinds["R"] > 0
    orders = world.wb_orders("wb1")
    for sale_id, row in sales.items():
        assert row["srid"] in orders
        if sale_id.startswith("R"):
            assert row["forPay"] < 0 and row["finishedPrice"] < 0
        elif row["totalPrice"]:
            assert row["forPay"] > 0


async def test_flag1_returns_rows_whose_date_is_that_day(make_app) -> None:
    app = make_app(scenario="tiny:wb_orders=400", rate_limits=False)
    world = app.state.world
    truth = world.wb_orders("wb1")
    day = sorted({r["date"][:10] for r in truth.values()})[3]
    async with client_for(app) as c:
        rows = (
            await c.get(ORDERS, params={"dateFrom": f"{day}T23:59:00", "flag": 1}, headers=wb_headers(world))
        ).json()
        sales = (await c.get(SALES, params={"dateFrom": day, "flag": 1}, headers=wb_headers(world))).json()
    expected = {s for s, r in truth.items() if r["date"][:10] == day}
    assert {r["srid"] for r in rows} == expected
    assert all(r["date"][:10] == day for r in sales)
    assert {r["saleID"] for r in sales} == {k for k, r in world.wb_sales("wb1").items() if r["date"][:10] == day}


async def test_dates_are_moscow_time_without_zone(world) -> None:
    model = world.wb["wb1"].orders
    row = model.order_row(0, world.now())
    assert len(row["date"]) == 19 and "+" not in row["date"] and not row["date"].endswith("Z")
    expected = datetime.fromtimestamp(model.order_date(0), tz=MSK).replace(tzinfo=None)
    assert datetime.fromisoformat(row["date"]) == expected
    # A zone-less dateFrom is Moscow time: 1 s after the first change in MSK finds it not.
    first = model.appear(0)
    assert list(model.orders_since(first + 1, first + 1)) == []
    assert [r["srid"] for r in model.orders_since(first, first)][:1] == [model.srid(0)]


async def test_auth_errors(world, client) -> None:
    async def call(headers: dict[str, str]) -> httpx.Response:
        return await client.get(ORDERS, params={"dateFrom": "2026-01-01"}, headers=headers)

    missing = await call({})
    assert missing.status_code == 401
    body = missing.json()
    assert body["title"] == "unauthorized" and body["status"] == 401
    assert set(body) >= {"title", "detail", "code", "requestId", "origin", "status", "statusText", "timestamp"}
    assert (await call({"Authorization": "garbage"})).json()["detail"].startswith("token is malformed")
    token = world.wb_token("wb1")
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert (await call({"Authorization": tampered})).status_code == 401
    wrong = world.mint_wb_token("wb1", categories=["content"])
    r = await call({"Authorization": wrong})
    assert r.status_code == 401 and "scope" in r.json()["detail"]
    short = world.mint_wb_token("wb1", ttl=60)
    assert (await call({"Authorization": short})).status_code == 200
    world.advance(61)
    r = await call({"Authorization": short})
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    assert (await call({"Authorization": f"Bearer {token}"})).status_code == 200


async def test_bad_parameters(world, client) -> None:
    h = wb_headers(world)
    assert (await client.get(ORDERS, headers=h)).status_code == 400
    assert (await client.get(ORDERS, params={"dateFrom": "yesterday"}, headers=h)).status_code == 400
    assert (await client.get(ORDERS, params={"dateFrom": "2026-01-01", "flag": 2}, headers=h)).status_code == 400


async def test_rate_limit_429_headers_and_retry_time(world, client) -> None:
    h = wb_headers(world)
    ok = await client.get(SALES, params={"dateFrom": "2026-11-01"}, headers=h)  # sales: 1/min, burst 1
    assert ok.status_code == 200 and ok.headers["X-Ratelimit-Remaining"] == "0"
    refused = await client.get(SALES, params={"dateFrom": "2026-11-01"}, headers=h)
    assert refused.status_code == 429
    assert refused.headers["X-Ratelimit-Retry"] == "60"
    assert refused.headers["X-Ratelimit-Limit"] == "1"
    assert refused.headers["X-Ratelimit-Reset"] == "60"
    assert "Retry-After" not in refused.headers
    assert refused.json()["title"] == "too many requests"
    world.advance(59)
    again = await client.get(SALES, params={"dateFrom": "2026-11-01"}, headers=h)
    assert again.status_code == 429 and again.headers["X-Ratelimit-Retry"] == "1"
    world.advance(1)
    assert (await client.get(SALES, params={"dateFrom": "2026-11-01"}, headers=h)).status_code == 200
    # Orders have their own bucket (burst 10) and other shops are unaffected.
    assert (await client.get(ORDERS, params={"dateFrom": "2026-11-01"}, headers=h)).status_code == 200


async def test_operator_report_counts_refusals_by_the_limiter_not_injected_429s(world, client) -> None:
    h = wb_headers(world)
    for _ in range(3):  # sales: burst 1, clock frozen: two refusals
        await client.get(SALES, params={"dateFrom": "2026-11-01"}, headers=h)
    await client.put("/_sandbox/faults", json={"spec": "wb-statistics:429=1"})
    assert (await client.get(ORDERS, params={"dateFrom": "2026-11-01"}, headers=h)).status_code == 429
    report = (await client.get("/_sandbox/rate-limits")).json()
    assert report["refused"] == 2
    assert report["buckets"] == [{"owner": "wb1", "bucket": "statistics.sales", "refused": 2}]
    await client.put("/_sandbox/rate-limits", json={"enabled": True})  # a fresh start
    assert (await client.get("/_sandbox/rate-limits")).json()["refused"] == 0


async def test_orders_burst_is_ten(world, client) -> None:
    h = wb_headers(world)
    statuses = [(await client.get(ORDERS, params={"dateFrom": "2026-11-22"}, headers=h)).status_code for _ in range(11)]
    assert statuses == [200] * 10 + [429]
    log = world.log.entries(host="wb-statistics")
    assert [e.status for e in log] == statuses
    assert all(e.shop == "wb1" and e.token_id and world.wb_token("wb1").find(e.token_id) == -1 for e in log)


async def test_statistics_keep_90_days(make_app) -> None:
    app = make_app(rate_limits=False)
    world = app.state.world
    world.advance(85 * 86400)  # tiny's history started 10 days before the clock start
    async with client_for(app) as c:
        kept = (await c.get(ORDERS, params={"dateFrom": "2020-01-01"}, headers=wb_headers(world))).json()
        cutoff = datetime.fromtimestamp(world.now() - 90 * 86400, tz=MSK).replace(tzinfo=None)
        assert kept and all(datetime.fromisoformat(r["lastChangeDate"]) >= cutoff for r in kept)
        assert len(kept) < len(world.wb_orders("wb1"))  # the truth (a backup) keeps everything
        first_day = min(r["date"] for r in world.wb_orders("wb1").values())[:10]
        day = (await c.get(ORDERS, params={"dateFrom": first_day, "flag": 1}, headers=wb_headers(world))).json()
        assert day == []
