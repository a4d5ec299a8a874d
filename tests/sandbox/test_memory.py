"""Large scenarios are lazy: serving a statistics page costs the same memory
whatever the shop's size (the 1,000,000-row run is in benchmarks/sandbox)."""

from __future__ import annotations

import itertools
import tracemalloc
from dataclasses import replace

from sandbox.config import SandboxConfig
from sandbox.responses import json_array_chunks
from sandbox.world import World

PAGE = 5_000


def page_peak(total_rows: int, start_fraction: float) -> tuple[int, int]:
    """(peak bytes, rows) of streaming one page from the given position."""
    world = World(replace(SandboxConfig(), scenario=f"wb-1m:wb_orders={total_rows}"))
    model = world.wb["wb1"].orders
    date_from = model.appear(int(total_rows * start_fraction))
    tracemalloc.start()
    try:
        rows = 0
        for chunk in json_array_chunks(itertools.islice(model.orders_since(date_from, world.now()), PAGE)):
            rows += chunk.count(b'"srid"')
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, rows


def test_page_memory_is_independent_of_shop_size() -> None:
    small, rows_small = page_peak(20_000, 0.5)
    big, rows_big = page_peak(400_000, 0.9)
    assert rows_small == rows_big == PAGE
    assert big < 8_000_000, f"one page peaked at {big / 1e6:.1f} MB"
    assert big < small * 1.3 + 500_000, (small, big)


def test_building_a_huge_world_is_cheap() -> None:
    tracemalloc.start()
    try:
        world = World(replace(SandboxConfig(), scenario="wb-1m"))
        world.wb["wb1"].orders.order_row(999_999, world.now())
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000
    assert world.wb["wb1"].orders.visible_count(world.now()) == 1_000_000
