"""The opt-in response cache (sandbox.response_cache): the same bytes as generating them, a
repeated request answered from the cache, never an old body after the world moved."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from fastapi import FastAPI

from sandbox.response_cache import ResponseCache
from tests.sandbox.conftest import allegro_headers, client_for, wb_headers

ORDERS = "/wb-statistics/api/v1/supplier/orders"
SALES = "/wb-statistics/api/v1/supplier/sales"
FORMS = "/allegro-api/order/checkout-forms"

WB_READS: list[tuple[str, dict[str, Any]]] = [
    (ORDERS, {"dateFrom": "2020-01-01", "flag": 0}),
    (ORDERS, {"dateFrom": "2026-11-22T12:00:00", "flag": 0}),
    (ORDERS, {"dateFrom": "2026-11-21", "flag": 1}),
    (SALES, {"dateFrom": "2026-11-20", "flag": 0}),
    (SALES, {"dateFrom": "2026-11-22", "flag": 1}),
]
ALLEGRO_READS: list[dict[str, Any]] = [
    {"limit": 100, "offset": 0},
    {"limit": 100, "offset": 300, "sort": "lineItems.boughtAt"},
    {"limit": 50, "lineItems.boughtAt.gte": "2026-11-20T00:00:00Z", "lineItems.boughtAt.lte": "2026-11-21T00:00:00Z"},
    {"limit": 100, "status": "READY_FOR_PROCESSING", "sort": "-updatedAt"},
]
SCENARIO = "day:wb_orders=2000,allegro_orders=1500,allegro_merges=0.05,history_days=4,live=1"


def _apps(make_app: Any) -> tuple[FastAPI, FastAPI]:
    common = {"scenario": SCENARIO, "rate_limits": False, "wb_row_cap": 800}
    return make_app(**common), make_app(cache_responses=True, **common)


async def _read_all(app: FastAPI) -> list[tuple[int, bytes]]:
    world = app.state.world
    out = []
    async with client_for(app) as c:
        for path, params in WB_READS:
            r = await c.get(path, params=params, headers=wb_headers(world))
            out.append((r.status_code, r.content))
        for params in ALLEGRO_READS:
            r = await c.get(FORMS, params=params, headers=allegro_headers(world))
            out.append((r.status_code, r.content))
    return out


async def test_cached_bodies_are_the_generated_bytes_and_a_repeat_is_a_hit(make_app: Any) -> None:
    live, cached = _apps(make_app)
    expected = await _read_all(live)
    assert all(status == 200 and len(body) > 2 for status, body in expected)  # real pages, not empty
    first = await _read_all(cached)  # generated (and kept)
    again = await _read_all(cached)  # answered from the cache
    assert first == expected
    assert again == expected
    report = cached.state.world.responses.report()
    reads = len(WB_READS) + len(ALLEGRO_READS)
    assert (report["misses"], report["hits"]) == (reads, reads)
    assert live.state.world.responses.report()["hits"] == 0  # off unless asked for


async def test_a_moved_clock_or_a_forced_merge_is_never_answered_from_an_old_body(make_app: Any) -> None:
    live, cached = _apps(make_app)
    unpaid = _unpaid_pair(live.state.world)  # the same operator merge in both worlds
    for app in (live, cached):
        app.state.world.advance(live.state.world.now() - app.state.world.now())
    before = await _read_all(cached)
    for app in (live, cached):
        app.state.world.merge_allegro("allegro1", unpaid)
    merged = await _read_all(cached)
    assert merged == await _read_all(live)
    assert merged[len(WB_READS)] != before[len(WB_READS)]  # the newest forms' listing changed
    for app in (live, cached):
        app.state.world.advance(6 * 3600)  # prices filled in, cancellations, payments
    moved = await _read_all(cached)
    assert moved == await _read_all(live)
    assert moved[1] != merged[1]  # the newest WB changes did change: the cache did not keep them


def _unpaid_pair(world: Any) -> list[str]:
    """Two purchases of a live shop made within minutes, its clock moved to just after the second:
    neither paid yet (payment comes 10 minutes after a purchase), as a merge needs."""
    m = world.allegro["allegro1"].orders
    k = m.visible_count(world.now())
    while not (m.paid(k) and m.paid(k + 1) and m.appear(k + 1) - m.appear(k) < 500 and m.merges.of(k) is None):
        k += 1
    world.advance(m.appear(k + 1) + 30 - world.now())
    return [m.form_id(k), m.form_id(k + 1)]


def test_the_cache_refuses_a_running_clock() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sandbox", "--cache-responses", "--speed", "1", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "sandbox: the response cache needs a frozen clock (--speed 0): a running clock changes every body"
    ]


def test_a_body_cut_short_leaves_nothing_cached() -> None:
    cache = ResponseCache(enabled=True)
    try:
        body = cache.chunks("k", iter([b"[1", b",2", b"]"]))
        assert next(body) == b"[1"
        body.close()  # the client hung up after the first part
        assert cache.report()["stored_bytes"] == 0
        assert b"".join(cache.chunks("k", iter([b"[1", b",2", b"]"]))) == b"[1,2]"  # generated again, whole
        assert b"".join(cache.chunks("k", iter([b"never", b"asked"]))) == b"[1,2]"  # and kept
        assert cache.report() == {"enabled": True, "hits": 1, "misses": 2, "stored_bytes": 5}
    finally:
        cache.close()
