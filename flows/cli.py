"""CLI commands of the sync pipeline: sync, backfill, refresh-tokens, serve, prefect-setup, demo.

`sync`, `backfill` and `refresh-tokens` print a short table (shop, stream, status, counts, error)
or JSON (`--json`) and exit 1 when anything failed; a sync that skipped says so and why. Without
PREFECT_API_URL they run here, with no Prefect server; with it, as runs of the deployments.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from sellerpulse.cli_support import add_json_flag, checked_engine, print_json, print_table, resolve_shop
from sellerpulse.errors import UserError
from sellerpulse.settings import get_settings
from storage.models import ShopStatus
from storage.shops import list_shops

if TYPE_CHECKING:
    from flows.runner import RunResult

COUNT_COLUMNS = ("fetched", "inserted", "updated")


def configured_api_url() -> str | None:
    """PREFECT_API_URL (imported here: `shops list` and friends should not pay for importing Prefect)."""
    from flows.prefect_server import configured_api_url as configured

    return configured()


def report(result: RunResult, *, as_json: bool) -> int:
    """Print what each shop and stream did; 0 when nothing failed, else 1."""
    if as_json:
        print_json(
            {
                "ok": result.ok,
                "flow_run_id": result.flow_run_id,
                "flow_run_state": result.flow_run_state,
                "shops": [o.as_dict() for o in result.outcomes],
            }
        )
        return 0 if result.ok else 1
    rows: list[list[Any]] = []
    for o in result.outcomes:
        label = f"{o.shop} (#{o.shop_id})"
        if not o.streams:
            rows.append([label, "-", o.status, "", "", "", o.reason or ""])
        for s in o.streams:
            counts = [s.counts.get(c, "") for c in COUNT_COLUMNS]
            rows.append([label, s.stream, s.status, *counts, _one_line(s.error)])
    if rows:
        print_table(["shop", "stream", "status", *COUNT_COLUMNS, "error"], rows)
    else:
        print("nothing to do")
    if result.flow_run_id:
        print(f"flow run {result.flow_run_id}: {result.flow_run_state or 'cancelled'}")
    failed = sum(o.status == "failed" for o in result.outcomes)
    if failed:
        print(f"{failed} shop(s) failed")
    return 0 if result.ok else 1


def _one_line(text: str | None, limit: int = 160) -> str:
    if not text:
        return ""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _sync(args: argparse.Namespace) -> int:
    from flows import runner

    engine = checked_engine()
    with Session(engine) as session:
        if args.shop:
            ids = [resolve_shop(session, args.shop).id]
        else:
            ids = [s.id for s in list_shops(session, status=ShopStatus.active)]
    concurrency = get_settings().sync_concurrency
    if configured_api_url():
        result = asyncio.run(runner.sync_deployed(engine, ids, one_shop=bool(args.shop), concurrency=concurrency))
    else:
        result = asyncio.run(runner.sync_here(engine, ids, concurrency=concurrency))
    return report(result, as_json=args.json)


def _backfill(args: argparse.Namespace) -> int:
    today = datetime.now(UTC).date()
    if args.until is not None and args.since > args.until:
        raise UserError(f"--since {args.since} is after --until {args.until}")
    if args.since > today + timedelta(days=1):
        raise UserError(f"--since {args.since} is in the future")
    engine = checked_engine()
    with Session(engine) as session:
        shop = resolve_shop(session, args.shop)
        shop_id, marketplace = shop.id, shop.marketplace
    from flows import runner
    from flows.backfill import BACKFILL_STREAMS

    unknown = sorted(set(args.streams or []) - set(BACKFILL_STREAMS[marketplace]))
    if unknown:
        can = ", ".join(BACKFILL_STREAMS[marketplace])
        raise UserError(f"a {marketplace} backfill cannot read {', '.join(unknown)} (it reads: {can})")
    window = _wb_history_window(marketplace, args)
    if window is not None and window.note:
        print(f"note: {window.note}", file=sys.stderr, flush=True)
        if window.empty and set(args.streams or ["orders"]) <= {"orders"}:
            return 0  # nothing WB still holds is in the range
    if configured_api_url():
        params = {"shop_id": shop_id, "since": args.since, "until": args.until, "streams": args.streams}
        result = asyncio.run(runner.backfill_deployed(engine, shop_id, params))
    else:
        result = asyncio.run(runner.backfill_here(engine, shop_id, args.since, args.until, args.streams))
    return report(result, as_json=args.json)


def _wb_history_window(marketplace: str, args: argparse.Namespace) -> Any:
    """For a WB shop's orders: the days WB still keeps of the range asked for, else None."""
    from connectors.timeutil import MSK
    from connectors.wildberries.retention import history_window

    if marketplace != "wb" or (args.streams and "orders" not in args.streams):
        return None
    now = datetime.now(UTC)
    return history_window(args.since, args.until or now.astimezone(MSK).date(), now)


def _refresh(args: argparse.Namespace) -> int:
    from flows import runner

    engine = checked_engine()
    if configured_api_url():
        result = asyncio.run(runner.refresh_deployed(engine))
    else:
        result = asyncio.run(runner.refresh_here(engine))
    if not result.outcomes and not args.json:
        print("no Allegro token expires soon: nothing to refresh")
        return 0 if result.ok else 1
    return report(result, as_json=args.json)


def _serve(args: argparse.Namespace) -> int:
    from flows.serve import serve_forever

    checked_engine()
    return serve_forever(get_settings(), port=args.prefect_port)


def _prefect_setup(args: argparse.Namespace) -> int:
    from flows.pool import ensure_work_pool
    from flows.zombies import ensure_zombie_automation

    url = configured_api_url()
    if not url:
        raise UserError("set PREFECT_API_URL to the Prefect server to set up (`sellerpulse serve` does it itself)")
    settings = get_settings()
    queues = asyncio.run(ensure_work_pool(settings))
    limits = ", ".join(f"{q.name} {q.limit}" for q in queues)
    print(f"work pool {settings.prefect_work_pool!r} on {url}: sync-batch runs at once per queue: {limits}")
    automation = asyncio.run(ensure_zombie_automation(settings))
    print(f"automation {automation!r} on {url}: a run silent for {settings.zombie_after_seconds} s is marked Crashed")
    return 0


def _cluster(args: argparse.Namespace) -> int:
    from flows.cluster import Ports, free_ports, run_cluster

    free = free_ports()
    ports = Ports(args.prefect_port or free.prefect, args.api_port or free.api, args.telegram_port or free.telegram)
    return run_cluster(
        get_settings(),
        workers=args.workers,
        ports=ports,
        prefect_database=args.prefect_database,
        state_file=args.state_file,
    )


def _workers(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 1 <= n <= 32:
        raise argparse.ArgumentTypeError(f"between 1 and 32: {n}")
    return n


def _demo(args: argparse.Namespace) -> int:
    from flows.demo_setup import prepare_demo_environment

    data_dir = prepare_demo_environment(args.data_dir, reset=args.reset)  # before Prefect is imported
    from flows.demo import run_demo

    return run_demo(
        data_dir=data_dir,
        scenario=args.scenario,
        speed=args.speed,
        sandbox_port=args.sandbox_port,
        prefect_port=args.prefect_port,
        api_port=args.api_port,
    )


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"not a port number (1-65535): {port}")
    return port


def register(sub: argparse._SubParsersAction) -> None:
    sync = sub.add_parser("sync", help="sync one shop or every active shop now")
    sync.add_argument("--shop", help="shop id or name (default: all active shops)")
    add_json_flag(sync)
    sync.set_defaults(func=_sync)

    bf = sub.add_parser("backfill", help="read a shop's history between two dates (silent, resumable)")
    bf.add_argument("--shop", required=True, help="shop id or name")
    bf.add_argument("--since", required=True, type=_day)
    bf.add_argument("--until", type=_day, default=None, help="default: today")
    bf.add_argument("--streams", nargs="*", default=None, help="default: every stream (WB: orders, reviews)")
    add_json_flag(bf)
    bf.set_defaults(func=_backfill)

    rt = sub.add_parser("refresh-tokens", help="refresh Allegro tokens that expire soon")
    add_json_flag(rt)
    rt.set_defaults(func=_refresh)

    serve = sub.add_parser("serve", help="run every deployment on its schedule from this process")
    serve.add_argument("--prefect-port", type=_port, default=4200, help="port of the local Prefect server/UI")
    serve.set_defaults(func=_serve)

    setup = sub.add_parser(
        "prefect-setup",
        help="set up the Prefect server of a worker install (work pool, queues per marketplace, zombie-run automation)",
    )
    setup.set_defaults(func=_prefect_setup)

    cluster = sub.add_parser(
        "cluster",
        help="the production topology from processes on this machine: Prefect server on PostgreSQL, "
        "work pool, N workers, the API (2 processes), the bot and the Telegram stand-in",
    )
    cluster.add_argument("--workers", type=_workers, default=2, help="Prefect process workers (default 2)")
    cluster.add_argument("--prefect-port", type=_port, default=None, help="default: a free port")
    cluster.add_argument("--api-port", type=_port, default=None, help="default: a free port")
    cluster.add_argument("--telegram-port", type=_port, default=None, help="default: a free port")
    cluster.add_argument(
        "--prefect-database", default=None, help="Prefect's database on the same server (default: <database>_prefect)"
    )
    cluster.add_argument(
        "--state-file", type=Path, default=None, help="where the parts' pids and URLs are written (JSON)"
    )
    cluster.set_defaults(func=_cluster)

    demo = sub.add_parser("demo", help="everything, locally: sandbox shops, Prefect UI, scheduled syncs, the API")
    demo.add_argument("--scenario", default="demo")
    demo.add_argument("--speed", type=float, default=20.0, help="sandbox seconds per real second")
    demo.add_argument("--sandbox-port", type=_port, default=8765)
    demo.add_argument("--prefect-port", type=_port, default=4200)
    demo.add_argument("--api-port", type=_port, default=8000)
    demo.add_argument("--data-dir", help="the demo's own data dir (default: <data home>/sellerpulse-demo)")
    demo.add_argument("--reset", action="store_true", help="delete the demo's data dir first (a fresh demo)")
    demo.set_defaults(func=_demo)
