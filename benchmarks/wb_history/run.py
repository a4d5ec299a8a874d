"""One measurement in its own process (fresh database, fresh buckets); prints one JSON line.

    python -m benchmarks.wb_history.run ROWS before|after SCALE

A 90-day backfill of a WB shop's orders and sales against the sandbox with its rate limits on,
WB's statistics limit (1 request a minute per method) sped up SCALE times on both sides (the
sandbox's buckets and ours):

- before: the way sellerpulse read WB history until now (`flag=1`, one Moscow day at a time,
  orders then sales for each day, each day written with its progress), kept here as the
  baseline (`flag1_by_day`, as it was in tasks/wb_streams.py and flows/backfill.py);
- after: `flows.backfill.backfill_one(..., streams=["orders"])`, the backfill as it is now.

Besides the sped-up wall time, the run is replayed at WB's real rate (`replay_at_wb_rate`):
a sped-up run hides the limit where parsing and writing a response take longer than the
sped-up interval (a large shop), so scaling the waits alone would not say what WB costs.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from connectors.ratelimit import Rate, RateLimits
from sandbox.cli import URL_KEYS
from storage.scratch import fresh_database, server_url  # settings-free: safe before the environment is set

SANDBOX = "http://sandbox"
DAYS = 90


def _environment(database_url: str) -> None:
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "TASK_RETRY_DELAYS": "0",
            **{key: f"{SANDBOX}/{host}" for host, key in URL_KEYS.items()},
        }
    )


class CountingSleep:
    """asyncio.sleep that adds up how long the client waited (its buckets' pacing and back-off)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.spans: list[tuple[float, float]] = []  # (start, end) on perf_counter

    async def __call__(self, seconds: float) -> None:
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        self.seconds += max(0.0, seconds)
        self.spans.append((started, time.perf_counter()))


@dataclass
class Sent:
    path: str
    start: float
    end: float
    status: int


class TimedTransport(httpx.AsyncBaseTransport):
    """Notes when each request left and when its whole answer was in."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.sent: list[Sent] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.sent.append(Sent(request.url.path, started, time.perf_counter(), response.status_code))
        return response


def replay_at_wb_rate(
    sent: list[Sent], sleeps: list[tuple[float, float]], begin: float, finish: float, interval: float = 60.0
) -> float:
    """The same run at WB's real rate: every answered request of a method starts at least
    `interval` after the previous one of that method started (one a minute, burst 1, as our
    client paces); the work between requests (parsing, writing) and each answer's own time
    are as measured. Waits and 429-refused requests of the sped-up run are left out (at the
    real rate the pacing replaces them)."""
    answered = [s for s in sent if s.status != 429]
    if not answered:
        return finish - begin
    clock, last_start, previous_end = answered[0].start - begin, {}, None
    for req in answered:
        if previous_end is None:
            ready = clock
        else:
            gap = req.start - previous_end
            idle = sum(max(0.0, min(end, req.start) - max(start, previous_end)) for start, end in sleeps)
            idle += sum(max(0.0, min(r.end, req.start) - max(r.start, previous_end)) for r in sent if r.status == 429)
            ready = clock + max(0.0, gap - idle)
        start = max(ready, last_start.get(req.path, -interval) + interval)
        last_start[req.path] = start
        clock = start + (req.end - req.start)
        previous_end = req.end
    return clock + (finish - answered[-1].end)


async def flag1_by_day(ctx: Any, since: date, until: date) -> Any:
    """The baseline: every day of the range by `flag=1`, orders and sales, as sellerpulse did."""
    from sqlalchemy.orm import Session

    from storage import upserts
    from storage.sync_state import RunCounts, set_cursor
    from tasks import normalize
    from tasks.context import count_page, run_stream

    token = ctx.credentials["token"]
    key = f"backfill:wb:{since.isoformat()}:{until.isoformat()}"

    async def body(counts: RunCounts) -> None:
        day = since
        while day <= until:
            orders = await ctx.clients.wb.orders_for_day(token, day)
            sales = await ctx.clients.wb.sales_for_day(token, day)
            order_rows = [normalize.wb_order(item) for item in orders.items]
            sale_rows = [normalize.wb_sale(item) for item in sales.items]

            def write(
                session: Session, day: date = day, order_rows: Any = order_rows, sale_rows: Any = sale_rows
            ) -> Any:
                written_orders = upserts.upsert_orders(session, shop_id=ctx.shop.id, rows=order_rows)
                written_sales = upserts.upsert_sales(session, shop_id=ctx.shop.id, rows=sale_rows)
                next_day = (day + timedelta(days=1)).isoformat()
                set_cursor(session, shop_id=ctx.shop.id, stream=key, value={"next_day": next_day})
                return written_orders, written_sales

            written_orders, written_sales = await ctx.in_transaction(write)
            count_page(counts, orders, written_orders)
            count_page(counts, sales, written_sales)
            day += timedelta(days=1)

    return [await run_stream(ctx, "backfill_wb_orders", body)]


async def measure(rows: int, method: str, scale: float) -> dict[str, Any]:
    from sqlalchemy.orm import Session

    from connectors.timeutil import MSK
    from flows.backfill import backfill_one
    from sandbox import SandboxConfig, create_app
    from sandbox.transport import SandboxTransport
    from sellerpulse.settings import get_settings
    from storage import migrate
    from storage.db import get_engine
    from storage.shops import create_shop
    from tasks.clients import Clients
    from tasks.context import load_context

    # The sandbox clock runs (its buckets refill on it); its shop stops growing at the start.
    app = create_app(
        SandboxConfig(
            scenario=f"wb-1m:wb_orders={rows},history_days={DAYS}", speed=1.0, rate_limits=True, rate_limit_scale=scale
        )
    )
    world = app.state.world
    engine = get_engine()
    migrate.upgrade(engine)
    with Session(engine) as session, session.begin():
        shop_id = create_shop(session, marketplace="wb", name="bench", credentials={"token": world.wb_token("wb1")}).id
    # WB's documented statistics limit, sped up like the sandbox's.
    limits = RateLimits(wb_statistics=Rate.per_minute(scale, 1))
    sleep = CountingSleep()
    until = world.now_dt().astimezone(MSK).date()
    since = until - timedelta(days=DAYS - 1)
    transport = TimedTransport(SandboxTransport(app=app))
    started = time.perf_counter()
    async with Clients.from_settings(
        get_settings(), transport=transport, limits=limits, now=world.now_dt, sleep=sleep
    ) as clients:
        if method == "before":
            ctx = load_context(engine, shop_id=shop_id, clients=clients, kind="backfill")
            reports = await flag1_by_day(ctx, since, until)
        else:
            reports = await backfill_one(shop_id, since, until, streams=["orders"], clients=clients)
    finished = time.perf_counter()
    seconds = finished - started
    failed = [r.error for r in reports if r.status != "success"]
    if failed:
        raise RuntimeError(f"backfill failed: {failed}")
    log = world.log.entries(host="wb-statistics")
    with engine.connect() as conn:
        from sqlalchemy import text

        stored = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in ("orders", "wb_sales")}  # noqa: S608
    engine.dispose()
    return {
        "rows": rows,
        "method": method,
        "scale": scale,
        "requests": len(log),
        "refused_429": sum(1 for r in log if r.status == 429),
        "flag1_requests": sum(1 for r in log if "flag=1" in r.query),
        "seconds": seconds,
        "waited_s": sleep.seconds,
        "projected_s": replay_at_wb_rate(transport.sent, sleep.spans, started, finished),
        "orders_stored": stored["orders"],
        "sales_stored": stored["wb_sales"],
    }


def main() -> int:
    rows, method, scale = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    server = server_url(Path(tempfile.mkdtemp(prefix="sp-bench-")), "BENCH_DATABASE_URL", "DATABASE_URL")
    with fresh_database(server, "sp_whist") as url:
        _environment(url)
        result = asyncio.run(measure(rows, method, scale))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
