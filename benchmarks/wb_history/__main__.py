"""WB history: a 90-day backfill before (`flag=1` day by day) and after (`flag=0` from the
oldest day), side by side, with the sandbox's rate limits on.

    uv run python -m benchmarks.wb_history [--rows 5000 500000] [--scale 60]

Each measurement runs in a fresh process on a fresh database (`BENCH_DATABASE_URL`, else
`DATABASE_URL`, else an embedded PostgreSQL). WB allows one statistics request a minute per
method; `--scale` speeds that up on both sides (the sandbox's buckets and sellerpulse's) so a
run takes minutes, not hours. Reported per shop size: requests, wall time at that scale, and
the run replayed at WB's real rate (each method's requests a minute apart, the work between
them as measured), with the ratio before / after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _child(rows: int, method: str, scale: float) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.wb_history.run", str(rows), method, str(scale)],
        env=os.environ.copy(),
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[5_000, 500_000], help="WB order rows of the shop")
    parser.add_argument("--scale", type=float, default=60.0, help="rate-limit speed-up on both sides")
    args = parser.parse_args()
    results = []
    for rows in args.rows:
        for method in ("before", "after"):
            print(f"{rows} rows, {method} ...", flush=True)
            results.append(_child(rows, method, args.scale))
    _report(results)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "wb_history.json").write_text(json.dumps(results, indent=2))
    return 0


def _report(results: list[dict]) -> None:
    by = {(r["rows"], r["method"]): r for r in results}
    print()
    print(
        f"{'rows':>8} {'':>7} {'requests':>9} {'flag=1':>7} {'429':>4} {'wall (scaled)':>14} "
        f"{'wall at WB rate':>16} {'orders':>8} {'sales':>8}"
    )
    for rows in sorted({r["rows"] for r in results}):
        for method in ("before", "after"):
            r = by[(rows, method)]
            print(
                f"{rows:>8} {method:>7} {r['requests']:>9} {r['flag1_requests']:>7} {r['refused_429']:>4} "
                f"{r['seconds']:>12.1f} s {_minutes(r['projected_s']):>16} {r['orders_stored']:>8} "
                f"{r['sales_stored']:>8}"
            )
        b, a = by[(rows, "before")], by[(rows, "after")]
        print(
            f"{rows:>8} {'ratio':>7} {b['requests'] / a['requests']:>8.1f}x {'':>7} {'':>4} "
            f"{b['seconds'] / a['seconds']:>13.1f}x {b['projected_s'] / a['projected_s']:>15.1f}x"
        )


if __name__ == "__main__":
    raise SystemExit(main())
