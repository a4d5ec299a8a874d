"""Stream 1,000,000 WB order rows through the sandbox's statistics endpoint.

Runs the sandbox as a real server (subprocess, `python -m sandbox`, rate
limits off, frozen clock), pages `flag=0` by `lastChangeDate` with 80,000-row
pages, deduplicates boundary rows by `srid`, and records the server's RSS
after every page: flat RSS across pages is the point.

    uv run python -m benchmarks.sandbox.wb_orders_1m [--rows 1000000] [--port 8790]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import httpx
import psutil

from sellerpulse.processes import stop


def start_server(rows: int, port: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
    cmd = [
        sys.executable,
        "-m",
        "sandbox",
        "--port",
        str(port),
        "--scenario",
        f"wb-1m:wb_orders={rows}",
        "--no-rate-limits",
        "--speed",
        "0",
        "--start",
        "2026-11-23T09:00:00+00:00",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    env: dict[str, str] = {}
    assert proc.stdout is not None
    while "ALLEGRO_REFRESH_TOKEN_ALLEGRO1" not in env:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("sandbox exited")
        key, _, value = line.strip().partition("=")
        env[key] = value
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return proc, env
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("sandbox did not come up")


def run(rows: int, port: int) -> dict[str, float]:
    proc, env = start_server(rows, port)
    server = psutil.Process(proc.pid)
    try:
        rss_start = server.memory_info().rss
        seen: set[int] = set()  # srid hashes: the client side of the dedupe
        date_from, pages, peak, t0 = "2020-01-01", 0, rss_start, time.perf_counter()
        per_page: list[float] = []
        with httpx.Client(
            base_url=env["WB_STATISTICS_URL"], headers={"Authorization": env["WB_TOKEN_WB1"]}, timeout=600
        ) as c:
            while True:
                r = c.get("/api/v1/supplier/orders", params={"dateFrom": date_from, "flag": 0})
                r.raise_for_status()
                page = json.loads(r.content)
                pages += 1
                rss = server.memory_info().rss
                peak = max(peak, rss)
                per_page.append(rss / 1e6)
                new = [row for row in page if hash(row["srid"]) not in seen]
                seen.update(hash(row["srid"]) for row in page)
                if not page or not new:
                    break
                date_from = page[-1]["lastChangeDate"]
        elapsed = time.perf_counter() - t0
    finally:
        stop(proc, grace=10)
    return {
        "rows": float(len(seen)),
        "pages": float(pages),
        "seconds": round(elapsed, 1),
        "rows_per_s": round(len(seen) / elapsed),
        "server_rss_start_mb": round(rss_start / 1e6, 1),
        "server_rss_peak_mb": round(peak / 1e6, 1),
        "server_rss_first_page_mb": round(per_page[0], 1),
        "server_rss_last_page_mb": round(per_page[-1], 1),
    }


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--port", type=int, default=8790)
    args = p.parse_args()
    result = run(args.rows, args.port)
    print(json.dumps(result, indent=2))
    return 0 if result["rows"] == args.rows else 1


if __name__ == "__main__":
    sys.exit(main())
