"""What writing WB orders costs per row, on replayed pages: CPU of ours and of PostgreSQL, WAL.

    BENCH_DATABASE_URL=... uv run python -m benchmarks.backfill.write_cost [--wb-rows 1000000] [--repeat 1]

The WB orders stream of a first sync (`flows.sync.sync_one`, as in the replay mode) from
recorded sandbox responses (recorded once, then replayed byte for byte, so the marketplace's
cost is left out), into a fresh database that starts from a checkpoint. Printed per stored row:
this process's CPU microseconds (decoding, parsing, normalising, COPY encoding, commits), the
CPU microseconds of the database's PostgreSQL backends (/proc), and the WAL records, full-page
images and bytes (`pg_stat_wal`, so run it on a server nothing else writes to much). CPU time,
unlike wall time, hardly depends on what else the machine runs: run it in two worktrees (say,
main's start and a branch) one after the other and compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.backfill import replay, run
from storage.scratch import libpq_url

WAL = "SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal"


def measure(cache: Path) -> dict[str, Any]:
    import psycopg

    tokens = json.loads((cache / "tokens.json").read_text())
    with run._database() as url:
        run._environment(url)
        shop_id = run._prepare("wb", tokens["wb"])
        import flows.sync  # noqa: F401 - imports are not the pipeline's cost

        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            run._checkpoint(conn)
            wal_before = conn.execute(WAL).fetchone()
        clock = run.CpuClock(url)
        rows = asyncio.run(run._pipeline("wb", shop_id, replay.ReplayTransport(cache / "wb")))
        ours, server = clock.seconds()
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            wal_after = conn.execute(WAL).fetchone()
    records, fpi, wal_bytes = (int(after) - int(before) for before, after in zip(wal_before, wal_after, strict=True))
    return {
        "rows": rows,
        "ours_us_per_row": ours / rows * 1e6,
        "postgres_us_per_row": None if server is None else server / rows * 1e6,
        "wal_records_per_row": records / rows,
        "wal_fpi": fpi,
        "wal_bytes_per_row": wal_bytes / rows,
        "load_after": os.getloadavg()[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wb-rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="measurements, each in a fresh process and database")
    parser.add_argument("--cache", type=Path, default=None, help="where recorded responses are kept")
    args = parser.parse_args()
    # The replay mode's cache of the same size serves here too (its Allegro part is not read).
    cache = args.cache or Path(tempfile.gettempdir()) / f"sellerpulse-bench-wb-{args.wb_rows}"
    env = {**os.environ, "TASK_RETRY_DELAYS": "0"}
    if not replay.complete(cache):
        print(f"recording sandbox responses into {cache} ...", flush=True)
        _child("record", str(cache), str(args.wb_rows), "1", env=env)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"{'rows':>9} {'ours us/row':>12} {'PostgreSQL us/row':>18} "
        f"{'WAL records/row':>16} {'WAL bytes/row':>14} {'FPI':>8}"
    )
    for _ in range(args.repeat):
        r = _child("measure", str(cache), env=env)
        print(
            f"{r['rows']:>9} {r['ours_us_per_row']:>12.1f} {r['postgres_us_per_row'] or 0:>18.1f} "
            f"{r['wal_records_per_row']:>16.1f} {r['wal_bytes_per_row']:>14.0f} {r['wal_fpi']:>8}"
            f"   (load after: {r['load_after']:.2f})",
            flush=True,
        )
    return 0


def _child(step: str, *args: str, env: dict[str, str]) -> dict[str, Any]:
    module = "benchmarks.backfill.run" if step == "record" else "benchmarks.backfill.write_cost"
    out = subprocess.run([sys.executable, "-m", module, step, *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-4000:])
        raise SystemExit(f"{module} {step} failed (exit {out.returncode})")
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    if sys.argv[1:2] == ["measure"]:
        sys.stdout.write(json.dumps(measure(Path(sys.argv[2]))) + "\n")
    else:
        raise SystemExit(main())
