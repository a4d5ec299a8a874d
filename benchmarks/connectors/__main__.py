"""Parse throughput of connector payloads against plain ``json.loads`` of the same bytes,
and peak Python memory per 80,000-row WB page.

    uv run python -m benchmarks.connectors [--rows 80000] [--forms 10000] [--repeat 3]

"json.loads" is the floor (decoding only). "connector" is the whole path a page takes
in the connectors: decode, boundary dedupe (WB), validation into models with Decimal
money, aware-UTC times and the raw row kept. Ratio = connector / json.loads (lower is
better). Peak memory is tracemalloc's peak while one page is decoded and parsed,
including the response bytes.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from benchmarks.connectors.data import allegro_checkout_forms, wb_orders_page
from connectors.allegro.models import CHECKOUT_FORM_PARSER
from connectors.parsing import gc_paused
from connectors.wildberries.models import ORDER_PARSER
from connectors.wildberries.paging import LastChangePaginator


def best_of(repeat: int, fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_mib(fn: Callable[[], Any]) -> float:
    gc.collect()
    tracemalloc.start()
    result = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result
    return peak / 2**20


def decode(data: bytes) -> Any:
    """What HostClient does with a 2xx body."""
    with gc_paused():
        return json.loads(data)


def wb_page(data: bytes) -> Any:
    rows = decode(data)
    paginator = LastChangePaginator("srid", datetime(2026, 11, 1, tzinfo=UTC))
    paginator.init_request()
    keep = paginator.update_state(rows)
    return ORDER_PARSER.parse([rows[i] for i in keep])


def allegro_page(data: bytes) -> Any:
    return CHECKOUT_FORM_PARSER.parse(decode(data)["checkoutForms"])


async def _stream_peak(rows: int, cap: int) -> tuple[int, int, float, float]:
    """Read `rows` WB order rows from an in-process sandbox, `cap` rows a page, holding one
    page at a time; return (pages, rows, seconds, tracemalloc peak MiB)."""
    from connectors.ratelimit import RateLimits
    from connectors.wildberries import WbUrls, WildberriesClient
    from sandbox.app import create_app
    from sandbox.config import SandboxConfig
    from sandbox.transport import SandboxTransport

    app = create_app(SandboxConfig(scenario=f"wb-1m:wb_orders={rows}", rate_limits=False, wb_row_cap=cap))
    base = "http://sandbox"
    urls = WbUrls(
        *(f"{base}/{h}" for h in ("wb-statistics", "wb-analytics", "wb-feedbacks", "wb-content", "wb-marketplace"))
    )
    token = app.state.world.wb_token("wb1")
    pages = got = 0
    gc.collect()
    tracemalloc.start()
    start = time.perf_counter()
    async with WildberriesClient(urls, transport=SandboxTransport(app=app), limits=RateLimits.unlimited()) as wb:
        async for page in wb.iter_orders(token, datetime(2026, 1, 1, tzinfo=UTC), full_page_rows=cap):
            pages += 1
            got += len(page.items)
            del page  # what a caller does after writing it
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return pages, got, seconds, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=80_000)
    parser.add_argument("--forms", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--stream-rows",
        type=int,
        default=0,
        help="also stream this many rows from the in-process sandbox (e.g. 240000)",
    )
    args = parser.parse_args()

    wb = wb_orders_page(args.rows)
    al = allegro_checkout_forms(args.forms)
    items, errors = wb_page(wb)
    assert len(items) == args.rows and not errors, "benchmark data must parse cleanly"

    rows = []
    for name, data, count, fn in (
        (f"WB orders page ({args.rows:,} rows)", wb, args.rows, wb_page),
        (f"Allegro checkout forms ({args.forms:,})", al, args.forms, allegro_page),
    ):
        t_json = best_of(args.repeat, lambda d=data: json.loads(d))
        t_conn = best_of(args.repeat, lambda d=data, f=fn: f(d))
        json_peak = peak_mib(lambda d=data: json.loads(d))
        conn_peak = peak_mib(lambda d=data, f=fn: f(d))
        rows.append((name, len(data) / 2**20, t_json, t_conn, count / t_conn, json_peak, conn_peak))

    header = (
        f"{'payload':38} {'MiB':>6} {'json.loads s':>12} {'connector s':>11} {'ratio':>6} {'rows/s':>9} "
        f"{'peak json MiB':>13} {'peak conn MiB':>13}"
    )
    print(header)
    print("-" * len(header))
    for name, mib, tj, tc, rps, pj, pc in rows:
        print(f"{name:38} {mib:6.1f} {tj:12.3f} {tc:11.3f} {tc / tj:6.2f} {rps:9,.0f} {pj:13.0f} {pc:13.0f}")
    if args.stream_rows:
        import asyncio

        pages, got, seconds, peak = asyncio.run(_stream_peak(args.stream_rows, args.rows))
        print(
            f"\nstreamed {got:,} WB order rows in {pages} pages of <= {args.rows:,} from the in-process sandbox "
            f"(sandbox serving included): {seconds:.1f} s, tracemalloc peak {peak:.0f} MiB for the whole read"
        )


if __name__ == "__main__":
    main()
