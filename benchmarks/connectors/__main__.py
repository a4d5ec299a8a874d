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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=80_000)
    parser.add_argument("--forms", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
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


if __name__ == "__main__":
    main()
