"""WB notification latency: statistics only against statistics + the order feed, in one run.

    uv run python -m benchmarks.latency [--hours 24] [--out FILE]

Two identical sandboxes (same seed and scenario: about one WB order a minute, ten days of
history) with rate limits on and the statistics' 30-minute refresh, at real speed, run as a
discrete-event simulation so a day does not take a day: each sandbox clock stands still while
our code runs and is then moved on by the real time the run took (so processing counts at its
real duration, whatever the machine's load), and between runs it jumps to the next scheduled
one. Our clients' rate-limit buckets and waits run on the same clock (a wait of 60 s moves it
60 s), so every limit holds as in real time. One database, two shops, each on its own sandbox:

* `stats`: a sync every `SYNC_INTERVAL` reads cards, orders and sales (all a statistics-only
  pipeline can do);
* `feed`: the same syncs with the feed among them, plus the feed alone every `FEED_INTERVAL`
  (as `sellerpulse serve` runs it; skipped while the shop's sync holds it).

Each shop's first sync runs first (silent). For each notification of a real transition after
it (new order, cancellation, buyout, return) the delay is from the sandbox's transition time (a
new order: when it was placed, also if statistics list it days later) to the end of the run that
wrote the outbox row (an upper bound); transitions not notified by the end are counted per
kind. The two pipelines run side by side in one event loop, so each run's measured time also
holds the other's work interleaved with it (again an upper bound). Prints one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.ratelimit import RateLimits
from sandbox import SandboxConfig, create_app
from sandbox.cli import URL_KEYS
from sandbox.transport import SandboxTransport

SANDBOX = "http://sandbox"
KINDS = ("new_order", "cancellation", "buyout", "return")
# One WB order a minute (the demo's pace), with ten days of history so buyouts (2 days) and
# returns (9 days) happen during the day measured.
SCENARIO = "demo:history_days=10,wb_orders=14400"
SYNC_INTERVAL = 180.0  # the default schedule (sellerpulse/settings.py)
FEED_INTERVAL = 60.0


def _environment(database_url: str) -> None:
    os.environ.update({"DATABASE_URL": database_url, **{key: f"{SANDBOX}/{host}" for host, key in URL_KEYS.items()}})


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {"n": len(ordered), "p50": round(statistics.median(ordered), 1), "p95": round(p95, 1),
            "max": round(ordered[-1], 1)}  # fmt: skip


class Pipeline:
    """One shop on one sandbox whose clock only moves when we move it, and its schedules."""

    def __init__(self, name: str, app: Any, shop_id: int, *, feed: bool) -> None:
        from connectors.ratelimit import BucketRegistry
        from tasks.clients import Clients

        self.name, self.app, self.shop_id, self.feed = name, app, shop_id, feed
        self.world = app.state.world
        self.clients = Clients.from_settings(
            transport=SandboxTransport(app=app),
            limits=RateLimits(),
            registry=BucketRegistry(clock=self.world.now),
            clock=self.world.now,
            sleep=self._sleep,
            now=self.world.now_dt,
        )
        self.failures: list[str] = []
        self.runs: list[tuple[float, float, float]] = []  # (wall start, wall end, sandbox end)

    async def _sleep(self, seconds: float) -> None:
        self.world.advance(max(0.0, seconds))  # a wait passes on the sandbox clock only
        await asyncio.sleep(0)

    async def run(self, streams: list[str] | None) -> None:
        from flows.sync import sync_one

        wall, began = time.time(), time.perf_counter()
        wait = 0.0 if streams == ["feed"] else 600.0  # the feed alone skips a shop being synced
        reports = await sync_one(self.shop_id, streams, clients=self.clients, wait_seconds=wait)
        self.world.advance(time.perf_counter() - began)  # our processing, at its real duration
        self.runs.append((wall, time.time(), self.world.now()))
        self.failures += [f"{r.stream}: {r.error}" for r in reports if r.status != "success"]

    async def schedule(self, until: float) -> None:
        stats = ["cards", "feed", "orders", "sales"] if self.feed else ["cards", "orders", "sales"]
        due = {SYNC_INTERVAL: self.world.now() + SYNC_INTERVAL}
        if self.feed:
            due[FEED_INTERVAL] = self.world.now() + FEED_INTERVAL
        while min(due.values()) <= until:
            interval = min(due, key=lambda k: due[k])
            if self.world.now() < due[interval]:
                self.world.advance(due[interval] - self.world.now())  # idle until the next run
            await self.run(stats if interval == SYNC_INTERVAL else ["feed"])
            while due[interval] <= self.world.now():  # a run that overran skips its missed slots
                due[interval] += interval

    def sandbox_time(self, created: datetime) -> float | None:
        """The sandbox time at the end of the run that wrote a row created at `created`."""
        wall = created.timestamp()
        began = [run for run in self.runs if run[0] <= wall]  # runs never overlap within a pipeline
        return max(began)[2] if began else None


def _shown_late(world: Any, srid: str) -> bool:
    """Statistics list the order more than 30 min after its `date`, when it was placed (12 % of
    the sandbox's baskets, 1-3 days; sandbox srid: ...{index:011d}.0.0)."""
    model = world.wb["wb1"].orders
    i = int(srid.split(".")[0][-11:])
    return model.appear(i) - model.order_date(i) > 1800


def delays(pipeline: Pipeline, since: float, until: float) -> dict[str, Any]:
    """Per notification: outbox time (sandbox seconds) minus the transition's time."""
    from storage.db import get_engine
    from storage.models import Notification, Shop

    world = pipeline.world
    start = datetime.fromtimestamp(since, UTC)
    truth = {(t.kind, t.entity_id): t.at.timestamp() for t in world.transitions("wb1", start) if t.kind in KINDS}
    with Session(get_engine()) as s:
        rows = s.execute(
            select(Notification.kind, Notification.dedupe_key, Notification.created_at, Notification.payload).where(
                Notification.shop_id == pipeline.shop_id, Notification.kind.in_(KINDS)
            )
        ).all()
        notify_from = s.get(Shop, pipeline.shop_id).notify_from.timestamp()
    per_kind: dict[str, list[float]] = {k: [] for k in KINDS}
    every: list[float] = []
    late_listed: list[float] = []
    notified: set[tuple[str, str]] = set()
    sources = {"feed": 0, "statistics": 0}
    unmatched = 0
    for kind, key, created, payload in rows:
        at = truth.get((kind, key.split(":")[2]))
        if at is None or at <= notify_from or at > until:
            unmatched += at is None
            continue
        written = pipeline.sandbox_time(created)
        if written is None:
            unmatched += 1
            continue
        delay = written - at
        per_kind[kind].append(delay)
        every.append(delay)
        notified.add((kind, key.split(":")[2]))
        if kind == "new_order" and _shown_late(world, key.split(":")[2]):
            late_listed.append(delay)
        sources["feed" if payload.get("source") == "feed" else "statistics"] += 1
    missing: dict[str, int] = {}
    for (kind, entity), at in truth.items():
        if notify_from < at <= until and (kind, entity) not in notified:
            late = kind == "new_order" and _shown_late(world, entity)
            name = "new_order (listed late by statistics)" if late else kind
            missing[name] = missing.get(name, 0) + 1
    return {
        "all": percentiles(every),
        **{kind: percentiles(values) for kind, values in per_kind.items()},
        # The new orders statistics list 1-3 days after they were placed (the feed shows them
        # at once): a statistics-only pipeline cannot tell of them within the day measured.
        "late_listed_new_orders": percentiles(late_listed),
        "notified_by": sources,
        # Transitions of the day measured not notified by its end, by kind.
        "not_yet_notified_at_the_end": missing,
        "without_a_transition": unmatched,
        "runs": len(pipeline.runs),
        "failed_stream_runs": len(pipeline.failures),
        "first_failures": pipeline.failures[:3],
    }


async def measure(hours: float) -> dict[str, Any]:
    from storage import migrate
    from storage.db import get_engine
    from storage.shops import create_shop

    start = datetime.now(UTC).replace(microsecond=0)
    config = replace(
        SandboxConfig(), scenario=SCENARIO, seed=11, speed=0.0, start=start, rate_limits=True,
        wb_statistics_refresh_s=1800,
    )  # fmt: skip
    apps = {"stats": create_app(config), "feed": create_app(config)}
    engine = get_engine()
    migrate.upgrade(engine)
    shop_ids = {}
    with Session(engine) as session, session.begin():
        for name, app in apps.items():
            world = app.state.world
            # The same seed issues the same token: one of its own each, or the two shops would
            # share our rate-limit buckets (keyed by token) and slow each other down.
            creds = {"token": world.wb_token("wb1") if name == "stats" else world.mint_wb_token("wb1")}
            shop_ids[name] = create_shop(session, marketplace="wb", name=f"bench-{name}", credentials=creds).id
    pipelines = {n: Pipeline(n, app, shop_ids[n], feed=n == "feed") for n, app in apps.items()}
    started, load_before = time.perf_counter(), os.getloadavg()
    await asyncio.gather(*(p.run(None) for p in pipelines.values()))  # first syncs: silent
    since = {n: p.world.now() for n, p in pipelines.items()}
    await asyncio.gather(*(p.schedule(since[n] + hours * 3600) for n, p in pipelines.items()))
    results = {n: delays(p, since[n], since[n] + hours * 3600) for n, p in pipelines.items()}
    for p in pipelines.values():
        await p.clients.aclose()
    return {
        "scenario": SCENARIO,
        "sandbox_hours": hours,
        "real_seconds": round(time.perf_counter() - started, 1),
        "load_average_before_after": [load_before, os.getloadavg()],
        "cpus": os.cpu_count(),
        "sync_interval_s": SYNC_INTERVAL,
        "feed_interval_s": FEED_INTERVAL,
        "statistics_refresh_s": 1800,
        "delays_s": results,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=float, default=24.0, help="sandbox hours of WB activity")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    from storage.scratch import fresh_database, server_url

    server = server_url(Path(tempfile.mkdtemp(prefix="sp-latency-")), "BENCH_DATABASE_URL", "DATABASE_URL")
    with fresh_database(server, "sp_latency") as url:
        _environment(url)
        result = asyncio.run(measure(args.hours))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
