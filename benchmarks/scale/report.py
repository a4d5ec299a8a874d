"""The benchmark's tables (markdown, as benchmarks/scale/README.md shows them)."""

from __future__ import annotations

from typing import Any

from benchmarks.scale.phases import PHASES


def print_tables(results: list[Any]) -> None:
    base = results[0].shops_every_cycle / results[0].workers if results else 0
    print(
        "\n| workers | shops | shop syncs per 3-min cycle | of the shops | p95 sync interval (sandbox s) "
        "| 429s from the sandbox's limits | PostgreSQL CPU per shop sync | scaling efficiency | start-up |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        eff = r.shops_every_cycle / (r.workers * base) if base else float("nan")
        p95 = f"{r.p95_interval:.0f}" if r.p95_interval is not None else "n/a"
        cpu = f"{r.pg_cpu_ms:.1f} ms" if r.pg_cpu_ms is not None else "n/a"
        print(f"| {r.workers} | {r.shops} | {r.shops_every_cycle:.0f} | {r.shops_every_cycle / r.shops:.0%} | {p95} "
              f"| {r.violations} | {cpu} | {eff:.2f} | {r.startup_s:.0f} s |")  # fmt: skip
    print(
        "\n| workers | connections to sellerpulse's database, peak (running a statement) | to Prefect's, peak "
        "| sync-batch runs started | batch start-up, median | its shops' syncs, median "
        "| load average (start / max / end) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        up = f"{r.batch_startup_s:.1f} s" if r.batch_startup_s is not None else "n/a"
        sync = f"{r.batch_sync_s:.1f} s" if r.batch_sync_s is not None else "n/a"
        print(f"| {r.workers} | {r.conn_peak} ({r.conn_active_peak}) | {r.prefect_conn_peak} | {r.batches} | {up} "
              f"| {sync} | {r.load[0]:.1f} / {r.load[1]:.1f} / {r.load[2]:.1f} |")  # fmt: skip
    heads = " | ".join(f"{r.workers} worker(s)" for r in results)
    print(f"\n| start-up phase of a sync-batch run (median s) | {heads} |")
    print("|---|" + "---:|" * len(results))
    for name in [p[0] for p in PHASES] + ["Pending to first stream"]:
        cells = [f"{r.phases[name]:.1f}" if name in r.phases else "n/a" for r in results]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("| batch runs counted | " + " | ".join(str(r.phase_runs) for r in results) + " |")
    print(
        "\n| workers | CPU per shop sync: workers and their flow runs | Prefect server | other cluster parts "
        "| PostgreSQL, sellerpulse's database | PostgreSQL, Prefect's | the sandbox | all of it |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        parts = ["workers", "prefect_server", "other", "pg_sellerpulse", "pg_prefect", "sandbox"]
        ms = [r.cpu_parts.get(k, 0.0) * 1000 / r.syncs if r.syncs else float("nan") for k in parts]
        print(f"| {r.workers} | " + " | ".join(f"{v:.0f} ms" for v in [*ms, sum(ms)]) + " |")
