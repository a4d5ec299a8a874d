"""What `python -m benchmarks.api` prints: each run, its CPU, and poll-only and mixed side by side."""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field

from benchmarks.api.cpu import CpuUse

# A generator costing more than this share of the API's CPU per request is the bottleneck.
GENERATOR_SHARE_LIMIT = 0.25
P99_BOUND_MS = 50  # the poll benchmark's bound, and issue 12's for the mixed load
# The mixed load's kinds of request (mixed.lua's SP_ONLY), for --kinds.
KINDS = ("poll", "ack", "batch", "dashboard", "orders")

Run = tuple[dict[str, float], CpuUse | None]


@dataclass(frozen=True)
class Load:
    script: str
    connections: int
    env: dict[str, str] = field(default_factory=dict)


def report(loads: dict[str, Load], runs: dict[str, list[Run]], written: int) -> int:
    """Prints every run and the side-by-side summary; returns how many runs were refused."""
    refused = 0
    for name, load in loads.items():
        if name == "poll":
            what = "poll only"
        elif name == "mixed":
            what = f"mixed (the sync wrote {written:,} notifications over all mixed runs)"
        else:
            what = f"only the mixed load's {name.split()[0]} requests, the sync writing"
        print(f"{name}: {load.connections} connections, {what}")
        for i, (result, use) in enumerate(runs[name], 1):
            share = generator_share(use, result["requests"])
            if share is not None and share > GENERATOR_SHARE_LIMIT:
                refused += 1
                print(f"  run {i}: REFUSED: the generator used {share:.0%} of the API's CPU per request")
            else:
                print(
                    f"  run {i}: requests/s {result['rps']:,.0f}   p50 {result['p50_ms']:.1f} ms   "
                    f"p90 {result['p90_ms']:.1f} ms   p99 {result['p99_ms']:.1f} ms   >=500: {result['s5xx']}   "
                    f"errors {result['errors']}   ({result['requests']:,} requests)"
                )
            if use is not None:
                print(f"         {cpu_line(use, result['requests'], 'wrk')}")
        if name == "poll":
            met = sum(r["rps"] >= 1500 and r["p99_ms"] <= P99_BOUND_MS for r, _ in runs[name])
            print(f"  target (>= 1,500 req/s, p99 <= {P99_BOUND_MS} ms): met in {met} of {len(runs[name])} runs")
        elif name == "mixed":
            clean = sum(r["s5xx"] == 0 and r["p99_ms"] <= P99_BOUND_MS for r, _ in runs[name])
            print(f"  target (0 responses >= 500, p99 <= {P99_BOUND_MS} ms): met in {clean} of {len(runs[name])} runs")
    side_by_side(runs["poll"], runs["mixed"])
    return refused


def side_by_side(poll: list[Run], mixed: list[Run]) -> None:
    """Each mixed run against the poll-only run just before it (same machine, same minute)."""
    print("side by side (each mixed run against the poll-only run next to it):")
    print("  run | poll only: req/s  p50  p99  >=500 | mixed: req/s  p50  p99  >=500 | mixed/poll: req/s  p99 | others")
    ratios = []
    for i, ((p, pu), (m, mu)) in enumerate(zip(poll, mixed, strict=True), 1):
        rps, p99 = m["rps"] / p["rps"], m["p99_ms"] / p["p99_ms"]
        ratios.append((rps, p99))
        others = [u.others / u.seconds for u in (pu, mu) if u is not None]
        load = f"{min(others):.2f}-{max(others):.2f} CPU" if others else "?"
        print(
            f"  {i:>3} | {p['rps']:>8,.0f} {p['p50_ms']:>5.1f} {p['p99_ms']:>6.1f} {p['s5xx']:>4} "
            f"| {m['rps']:>8,.0f} {m['p50_ms']:>5.1f} {m['p99_ms']:>6.1f} {m['s5xx']:>4} "
            f"| {rps:>5.2f}x {p99:>5.2f}x | {load}"
        )
    print(
        f"  median: mixed/poll req/s {statistics.median(r for r, _ in ratios):.2f}x, "
        f"p99 {statistics.median(q for _, q in ratios):.2f}x; "
        f"responses >= 500 in the mixed runs: {sum(int(m['s5xx']) for m, _ in mixed)}"
    )


def generator_share(use: CpuUse | None, requests: int) -> float | None:
    """The generator's CPU per request as a share of the API's (None without /proc)."""
    if use is None or use.api <= 0 or requests <= 0:
        return None
    return use.generator / use.api


def cpu_line(use: CpuUse, requests: int, generator: str) -> str:
    def ms(seconds: float) -> str:
        return f"{1000 * seconds / max(1, requests):.2f} ms"

    pg = f"PostgreSQL {ms(use.postgres)}" if use.postgres is not None else "PostgreSQL elsewhere"
    share = generator_share(use, requests)
    of_api = f" ({share:.0%} of the API's)" if share is not None else ""
    return (
        f"CPU per request: API {ms(use.api)}, {pg}, {generator} {ms(use.generator)}{of_api}; "
        f"{generator} took {use.generator / use.seconds:.2f} of {os.cpu_count()} CPUs, "
        f"other processes {use.others / use.seconds:.2f}"
    )
