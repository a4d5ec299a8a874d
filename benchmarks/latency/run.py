"""WB notification latency: statistics only against statistics + the order feed, in one run.

    uv run python -m benchmarks.latency [--hours 24] [--speed 120] [--out FILE]

Two identical sandboxes (same seed and scenario: about one WB order a minute, ten days of history; their
clocks start together and run at `speed` sandbox seconds per real second) with rate limits on
and the statistics' 30-minute refresh. Time is scaled with every ratio kept: the sandbox's
buckets refill `speed` times faster and so do our clients'; the schedules (a full sync every
`SYNC_INTERVAL_SECONDS`, the feed every `WB_FEED_INTERVAL_SECONDS`) shrink by `speed`. One
database, two shops, each on its own sandbox:

* `stats`: every sync reads cards, orders and sales (what a statistics-only pipeline can do);
* `feed`: the same syncs with the feed among them, plus the feed alone on its own schedule
  (`flows.feed.read_feeds`, as `sellerpulse serve` runs it).

Each shop's first sync runs first (silent). For each notification of a real transition after
that (new order, cancellation, buyout, return) the delay is from the sandbox's transition time
to the outbox row's `created_at`, both in sandbox seconds. Prints one JSON document.
Our own processing time is scaled too (a 0.2 s read at speed 120 counts as 24 s), so the
figures err on the slow side.
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

from connectors.ratelimit import Rate, RateLimits
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


def scaled_limits(speed: float) -> RateLimits:
    """Our clients' documented limits, `speed` times faster (the sandbox's buckets are too)."""
    base = RateLimits()
    fields = {name: getattr(base, name) for name in base.__dataclass_fields__ if name != "disabled"}
    return RateLimits(**{name: Rate(r.per_second * speed, r.burst) for name, r in fields.items()})


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {"n": len(ordered), "p50": round(statistics.median(ordered), 1), "p95": round(p95, 1),
            "max": round(ordered[-1], 1)}  # fmt: skip


class Pipeline:
    """One shop on one sandbox, and the schedules that sync it."""

    def __init__(self, name: str, app: Any, shop_id: int, speed: float, *, feed: bool) -> None:
        from tasks.clients import Clients

        self.name, self.app, self.shop_id, self.speed, self.feed = name, app, shop_id, speed, feed
        self.world = app.state.world
        self.clients = Clients.from_settings(
            transport=SandboxTransport(app=app), limits=scaled_limits(speed), now=self.world.now_dt
        )
        self.failures: list[str] = []
        self.runs = 0

    async def first_sync(self) -> None:
        from flows.sync import sync_one

        await self._check(await sync_one(self.shop_id, clients=self.clients, wait_seconds=600))

    async def _check(self, reports: list[Any]) -> None:
        self.runs += 1
        self.failures += [f"{r.stream}: {r.error}" for r in reports if r.status != "success"]

    async def every(self, interval: float, streams: list[str], until: float) -> None:
        """Runs on a schedule in sandbox seconds; a run still going when the next is due delays
        it (Prefect's one-at-a-time deployments cancel the overlapping run: the same)."""
        from flows.sync import sync_one

        while self.world.now() < until:
            due = self.world.now() + interval
            # The feed alone skips a shop being synced (that sync reads the feed), as in `serve`.
            wait = 0.0 if streams == ["feed"] else 60.0
            await self._check(await sync_one(self.shop_id, streams, clients=self.clients, wait_seconds=wait))
            wait = (due - self.world.now()) / self.speed
            if wait > 0:
                await asyncio.sleep(wait)

    def schedules(self, until: float) -> list[Any]:
        statistics_streams = ["cards", "feed", "orders", "sales"] if self.feed else ["cards", "orders", "sales"]
        jobs = [self.every(SYNC_INTERVAL, statistics_streams, until)]
        if self.feed:
            jobs.append(self.every(FEED_INTERVAL, ["feed"], until))
        return jobs


def delays(pipeline: Pipeline, since: float, until: float, wall_ref: float, sandbox_ref: float) -> dict[str, Any]:
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
    sources = {"feed": 0, "statistics": 0}
    unmatched = 0
    for kind, key, created, payload in rows:
        at = truth.get((kind, key.split(":")[2]))
        if at is None or at <= notify_from or at > until:
            unmatched += at is None
            continue
        delay = sandbox_ref + (created.timestamp() - wall_ref) * pipeline.speed - at
        per_kind[kind].append(delay)
        every.append(delay)
        sources["feed" if payload.get("source") == "feed" else "statistics"] += 1
    missing = len([1 for (kind, _e), at in truth.items() if notify_from < at <= until]) - len(every)
    return {
        "all": percentiles(every),
        **{kind: percentiles(values) for kind, values in per_kind.items()},
        "notified_by": sources,
        "not_yet_notified_at_the_end": missing,
        "without_a_transition": unmatched,
        "runs": pipeline.runs,
        "failed_stream_runs": len(pipeline.failures),
        "first_failures": pipeline.failures[:3],
    }


async def measure(hours: float, speed: float) -> dict[str, Any]:
    from storage import migrate
    from storage.db import get_engine
    from storage.shops import create_shop

    start = datetime.now(UTC).replace(microsecond=0)
    config = replace(
        SandboxConfig(), scenario=SCENARIO, seed=11, speed=speed, start=start, rate_limits=True,
        rate_limit_scale=speed, wb_statistics_refresh_s=1800,
    )  # fmt: skip
    apps = {"stats": create_app(config), "feed": create_app(config)}
    wall_ref, sandbox_ref = time.time(), apps["stats"].state.world.now()
    engine = get_engine()
    migrate.upgrade(engine)
    pipelines = {}
    with Session(engine) as session, session.begin():
        for name, app in apps.items():
            # The same seed issues the same token: a token of its own each, or the two shops would
            # share our rate-limit buckets (keyed by token) and slow each other down.
            creds = {
                "token": app.state.world.wb_token("wb1") if name == "stats" else app.state.world.mint_wb_token("wb1")
            }
            shop_id = create_shop(session, marketplace="wb", name=f"bench-{name}", credentials=creds).id
            pipelines[name] = (app, shop_id)
    pipelines = {n: Pipeline(n, app, sid, speed, feed=n == "feed") for n, (app, sid) in pipelines.items()}
    started = time.perf_counter()
    await asyncio.gather(*(p.first_sync() for p in pipelines.values()))
    since = max(p.world.now() for p in pipelines.values())
    until = since + hours * 3600
    await asyncio.gather(*(job for p in pipelines.values() for job in p.schedules(until)))
    results = {n: delays(p, since, until, wall_ref, sandbox_ref) for n, p in pipelines.items()}
    for p in pipelines.values():
        await p.clients.aclose()
    return {
        "scenario": SCENARIO,
        "sandbox_hours": hours,
        "speed": speed,
        "real_seconds": round(time.perf_counter() - started, 1),
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
        "sync_interval_s": SYNC_INTERVAL,
        "feed_interval_s": FEED_INTERVAL,
        "statistics_refresh_s": 1800,
        "delays_s": results,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=float, default=24.0, help="sandbox hours of WB activity")
    parser.add_argument("--speed", type=float, default=120.0, help="sandbox seconds per real second")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    from storage.scratch import fresh_database, server_url

    server = server_url(Path(tempfile.mkdtemp(prefix="sp-latency-")), "BENCH_DATABASE_URL", "DATABASE_URL")
    with fresh_database(server, "sp_latency") as url:
        _environment(url)
        result = asyncio.run(measure(args.hours, args.speed))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
