"""Backfill throughput against a raw COPY of the same rows into the same PostgreSQL.

    uv run python -m benchmarks.backfill [--wb-rows 1000000] [--allegro-forms 100000]
    uv run python -m benchmarks.backfill --served [--latency SPEC] [--allegro-forms 12000,60000,200000]
                                                  [--wb-rows 1000000]

Served mode (benchmarks/backfill/served.py): against the sandbox over HTTP with realistic
latency, the pipeline against a plain fetch of the same pages with the same concurrency, in
one run; ratio = fetch time / pipeline time (target at least 0.9). Replay mode, below:

What is measured, in one run, on one fresh database (`BENCH_DATABASE_URL`, else
`DATABASE_URL`, else an embedded PostgreSQL):

1. record: the sandbox (rate limits off) generates the marketplace's responses once; they are
   kept on disk. Its time is reported but belongs to the stand-in marketplace, not to us.
2. pipeline: sellerpulse's own path from those response bytes to committed rows, in a fresh
   process: HTTP client (replaying the recorded bytes), parsing, normalising, COPY into a
   temporary table, merge with old values and stale refusal, order lines, cursor, commit.
   WB: the incremental orders stream (`lastChangeDate` pages of 80,000 rows).
   Allegro: the backfill flow (checkout-form listing split under the 10,000 cap).
   Peak RSS of that process is sampled while it runs.
3. baselines: psycopg COPY of the very same rows (the stored columns and raw JSON) into the
   same database, timed on the COPY alone:
   - schema: into the same tables (every index and constraint) as another shop's rows: the
     floor for landing these rows in this schema, which no loader can go below;
   - bare: into new tables without indexes or constraints: the floor for moving the bytes.

Reported: rows/s, ratio = baseline time / pipeline time (1.0 would be "as fast as that COPY";
the target is at least 0.3), peak RSS (target: under 500 MB at any size), and the CPU seconds
of both sides (ours and PostgreSQL's), which unlike wall time do not depend on what else the
machine is running.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.backfill import replay, served

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _child(*args: str, env: dict[str, str]) -> dict:
    return _child_of("benchmarks.backfill.run", *args, env=env)


def _child_of(module: str, *args: str, env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-m", module, *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-4000:])
        raise SystemExit(f"{module} {args[0]} failed (exit {out.returncode})")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wb-rows", type=_sizes, default=[1_000_000], help="one size, or several: 1000,50000")
    parser.add_argument("--allegro-forms", type=_sizes, default=None, help="default 100000; served: 12000,60000,200000")
    parser.add_argument("--cache", type=Path, default=None, help="where recorded responses are kept")
    parser.add_argument("--served", action="store_true", help="against the sandbox over HTTP, with latency")
    parser.add_argument("--latency", default=served.DEFAULT_LATENCY, help="the sandbox's --latency (served mode)")
    parser.add_argument(
        "--live",
        action="store_true",
        help="served mode: the sandbox generates every body during the timed steps (no response cache, no warm-up)",
    )
    args = parser.parse_args()
    if args.served:
        return _served(args.allegro_forms or [12_000, 60_000, 200_000], args.wb_rows, args.latency, cache=not args.live)
    if len(args.wb_rows) > 1 or (args.allegro_forms and len(args.allegro_forms) > 1):
        parser.error("replay mode takes one size each")
    args.wb_rows, args.allegro_forms = args.wb_rows[0], (args.allegro_forms or [100_000])[0]

    cache = args.cache or Path(tempfile.gettempdir()) / f"sellerpulse-bench-{args.wb_rows}-{args.allegro_forms}"
    env = {**os.environ, "TASK_RETRY_DELAYS": "0"}
    if not replay.complete(cache):
        print(f"recording sandbox responses into {cache} ...", flush=True)
        recorded = _child("record", str(cache), str(args.wb_rows), str(args.allegro_forms), env=env)
        print(f"  sandbox generated them in {recorded['seconds']:.1f} s", flush=True)
    results = []
    for kind in ("wb", "allegro"):
        print(f"pipeline + baseline: {kind} ...", flush=True)
        results.append(_child("measure", str(cache), kind, env=env))
    _report(results)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "backfill.json").write_text(json.dumps(results, indent=2))
    return 0


def _sizes(raw: str) -> list[int]:
    try:
        sizes = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes: whole numbers separated by commas, got {raw!r}") from None
    if not sizes or min(sizes) < 0:
        raise argparse.ArgumentTypeError("sizes: at least one, none negative")
    return sizes


def _served(allegro_sizes: list[int], wb_sizes: list[int], latency: str, *, cache: bool) -> int:
    env = {**os.environ, "TASK_RETRY_DELAYS": "0"}
    plan = [("allegro", n, f"allegro-200k:allegro_orders={n}") for n in allegro_sizes if n]
    plan += [("wb", n, f"wb-1m:wb_orders={n}") for n in wb_sizes if n]
    mode = "cached bodies after an untimed warm-up read" if cache else "live generation"
    print(f"served mode, sandbox latency {latency}, {mode}; load average before: {_load()}", flush=True)
    results = []
    for kind, size, scenario in plan:
        with served.sandbox(scenario, latency, cache=cache) as sandbox_env:
            pair: dict = {"probe_us": served.speed_probe(), "load_before": _load()}
            for step in ("warm", "fetch", "pipeline") if cache else ("fetch", "pipeline"):
                print(f"{kind} {size}: {step} ...", flush=True)
                before = served.cache_report(sandbox_env)
                name = "fetch" if step == "warm" else step
                pair[step] = _child_of("benchmarks.backfill.served", name, kind, json.dumps(sandbox_env), env=env)
                after = served.cache_report(sandbox_env)
                pair[step]["cache"] = {k: after[k] - before[k] for k in ("hits", "misses")}
            results.append({"kind": kind, "size": size, **pair, "load_after": _load()})
    print(f"load average after: {_load()}")
    _served_report(results, latency)
    RESULTS.mkdir(exist_ok=True)
    out = {"latency": latency, "cache": cache, "runs": results}
    (RESULTS / "backfill-served.json").write_text(json.dumps(out, indent=2))
    return 0


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _served_report(results: list[dict], latency: str) -> None:
    print()
    print(f"against the sandbox over HTTP, latency {latency}; ratio = plain fetch s / pipeline s (target >= 0.9)")
    print(
        f"{'stream':<8} {'rows':>9} {'fetch s':>8} {'pipeline s':>11} {'rows/s':>8} {'ratio':>6} "
        f"{'RSS MB fetch':>13} {'RSS MB pipeline':>16}   CPU s pipeline (ours + PostgreSQL + sandbox)"
    )
    for r in results:
        fetch, pipe = r["fetch"], r["pipeline"]
        cpu = pipe["cpu_s"]
        print(
            f"{r['kind']:<8} {pipe['rows']:>9} {fetch['seconds']:>8.1f} {pipe['seconds']:>11.1f} "
            f"{pipe['rows'] / pipe['seconds']:>8.0f} {fetch['seconds'] / pipe['seconds']:>6.2f} "
            f"{fetch['peak_rss_mb']:>13.0f} {pipe['peak_rss_mb']:>16.0f}   "
            f"{cpu['python']:.1f} + {cpu['postgres'] or 0:.1f} + {cpu['sandbox']:.1f}   (load after: {r['load_after']})"
        )
    print()
    print("CPU s of the plain fetch (ours + sandbox), of the untimed warm-up (the sandbox generating every body),")
    print("bodies generated (misses) in the timed steps, and this machine's speed (us per probe; higher = slower)")
    for r in results:
        fetch, warm = r["fetch"], r.get("warm")
        line = f"{r['kind']:<8} {fetch['rows']:>9}  fetch {_ours_sandbox(fetch)}"
        if warm:
            line += f"   warm-up {warm['seconds']:.1f} s, {_ours_sandbox(warm)}"
            line += f"   generated in timed steps: {fetch['cache']['misses']} + {r['pipeline']['cache']['misses']}"
        print(f"{line}   probe {r['probe_us']:.2f} us   load before: {r['load_before']}")


def _ours_sandbox(step: dict) -> str:
    return f"{step['cpu_s']['python']:.1f} + {step['cpu_s']['sandbox']:.1f}"


def _report(results: list[dict]) -> None:
    print()
    print(
        f"{'stream':<16} {'rows':>9} {'pipeline s':>11} {'rows/s':>9} {'peak RSS MB':>12} "
        f"{'COPY s schema':>14} {'ratio':>6} {'COPY s bare':>12} {'ratio':>6}"
    )
    for r in results:
        copy = r["copy_s"]
        print(
            f"{r['stream']:<16} {r['rows']:>9} {r['pipeline_s']:>11.1f} {r['rows'] / r['pipeline_s']:>9.0f} "
            f"{r['peak_rss_mb']:>12.0f} {copy['schema']:>14.1f} {copy['schema'] / r['pipeline_s']:>6.2f} "
            f"{copy['bare']:>12.1f} {copy['bare'] / r['pipeline_s']:>6.2f}"
        )
    print()
    print("CPU seconds (this machine's other load left out): pipeline = ours + PostgreSQL's; COPY = client + server")
    for r in results:
        cpu, copy = r["pipeline_cpu_s"], r["copy_cpu_s"]
        if cpu["postgres"] is None or None in copy.values():
            print(f"{r['stream']:<16} ours {cpu['python']:.1f} (PostgreSQL is not on this machine)")
            continue
        total = cpu["python"] + cpu["postgres"]
        print(
            f"{r['stream']:<16} pipeline {total:.1f} (ours {cpu['python']:.1f} + PostgreSQL {cpu['postgres']:.1f})   "
            f"COPY schema {copy['schema']:.1f} (ratio {copy['schema'] / total:.2f})   "
            f"COPY bare {copy['bare']:.1f} (ratio {copy['bare'] / total:.2f})"
        )


if __name__ == "__main__":
    raise SystemExit(main())
