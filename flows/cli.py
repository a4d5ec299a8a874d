"""CLI commands of the sync pipeline: shops, sync, backfill, refresh-tokens, serve, demo."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from sellerpulse.errors import UserError
from sellerpulse.settings import get_settings
from storage.db import get_engine
from storage.migrate import require_head
from storage.shops import create_shop, find_shop, list_shops


def _engine() -> Any:
    engine = get_engine()
    require_head(engine)
    return engine


def _shop_id(ref: str) -> int:
    with Session(_engine()) as session:
        shop = find_shop(session, ref=ref)
        if shop is None:
            raise UserError(f"no shop {ref!r} (see `sellerpulse shops list`)")
        return shop.id


def _wb_token(args: argparse.Namespace) -> str:
    """--token T, --token - (read stdin: keeps it out of the process list), or WB_TOKEN."""
    token = args.token
    if token == "-":
        token = sys.stdin.readline()
    token = (token or os.environ.get("WB_TOKEN") or "").strip()
    if not token:
        raise UserError("give the WB token with --token, --token - (stdin) or WB_TOKEN")
    return token


def _add_wb(args: argparse.Namespace) -> int:
    with Session(_engine()) as session, session.begin():
        shop = create_shop(session, marketplace="wb", name=args.name, credentials={"token": _wb_token(args)})
        shop_id = shop.id
    print(f"WB shop {args.name!r} added (id {shop_id}); its first sync backs up its history silently")
    return 0


def _connect_allegro(args: argparse.Namespace) -> int:
    from flows.connect import begin_login, complete_login, login_instructions
    from tasks.clients import make_clients

    async def run() -> int:
        async with make_clients() as clients:
            device = await begin_login(clients)
            print(login_instructions(device), flush=True)
            print("waiting for approval (Ctrl-C to give up)...", flush=True)
            return await complete_login(_engine(), clients, device, name=args.name, shop_id=args.reconnect)

    shop_id = asyncio.run(run())
    print(f"Allegro shop {args.name!r} connected (id {shop_id})")
    return 0


def _list(args: argparse.Namespace) -> int:
    with Session(_engine()) as session:
        shops = list_shops(session)
        if not shops:
            print("no shops yet: `sellerpulse shops add-wb` or `sellerpulse shops connect-allegro`")
            return 0
        print(f"{'id':>4}  {'marketplace':<11}  {'status':<12}  {'notifies from':<20}  name")
        for s in shops:
            since = s.notify_from.strftime("%Y-%m-%d %H:%M") if s.notify_from else "(first sync)"
            print(f"{s.id:>4}  {s.marketplace:<11}  {s.status:<12}  {since:<20}  {s.name}")
    return 0


def _sync(args: argparse.Namespace) -> int:
    from flows.runner import run_flow
    from flows.sync import sync_all, sync_shop

    if args.shop:
        result = asyncio.run(run_flow(sync_shop, {"shop_id": _shop_id(args.shop)}))
    else:
        _engine()
        result = asyncio.run(run_flow(sync_all, {"concurrency": get_settings().sync_concurrency}))
    print(result)
    return 0


def _backfill(args: argparse.Namespace) -> int:
    from flows.backfill import backfill
    from flows.runner import run_flow

    shop_id = _shop_id(args.shop)
    window = _wb_history_window(shop_id, args)
    if window is not None and window.note:
        print(f"note: {window.note}", file=sys.stderr, flush=True)
        if window.empty and set(args.streams or ["orders"]) <= {"orders"}:
            return 0  # nothing WB still holds is in the range
    params = {"shop_id": shop_id, "since": args.since, "until": args.until, "streams": args.streams}
    print(asyncio.run(run_flow(backfill, params)))
    return 0


def _wb_history_window(shop_id: int, args: argparse.Namespace) -> Any:
    """For a WB shop's orders: the days WB still keeps of the range asked for, else None."""
    from datetime import UTC, datetime

    from connectors.timeutil import MSK
    from connectors.wildberries.retention import history_window
    from storage.models import Shop

    if args.streams and "orders" not in args.streams:
        return None
    with Session(_engine()) as session:
        shop = session.get(Shop, shop_id)
        if shop is None or shop.marketplace != "wb":
            return None
    now = datetime.now(UTC)
    return history_window(args.since, args.until or now.astimezone(MSK).date(), now)


def _refresh(args: argparse.Namespace) -> int:
    from flows.runner import run_flow
    from flows.tokens import refresh_tokens

    _engine()
    print(asyncio.run(run_flow(refresh_tokens, {})))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from flows.serve import serve_forever

    _engine()
    return serve_forever(get_settings(), port=args.prefect_port)


def _demo(args: argparse.Namespace) -> int:
    from flows.demo import run_demo

    return run_demo(
        get_settings(),
        scenario=args.scenario,
        speed=args.speed,
        sandbox_port=args.sandbox_port,
        prefect_port=args.prefect_port,
    )


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def register(sub: argparse._SubParsersAction) -> None:
    shops = sub.add_parser("shops", help="connect and list shops")
    actions = shops.add_subparsers(dest="shops_command", metavar="ACTION", required=True)
    wb = actions.add_parser("add-wb", help="add a Wildberries shop by its API token")
    wb.add_argument("--name", required=True)
    wb.add_argument("--token", help="the token; '-' reads it from stdin; default: $WB_TOKEN")
    wb.set_defaults(func=_add_wb)
    al = actions.add_parser("connect-allegro", help="connect an Allegro account (device flow: shows a code)")
    al.add_argument("--name", required=True)
    al.add_argument("--reconnect", type=int, metavar="SHOP_ID", help="re-connect this shop (after needs_reauth)")
    al.set_defaults(func=_connect_allegro)
    ls = actions.add_parser("list", help="every shop with its status")
    ls.set_defaults(func=_list)

    sync = sub.add_parser("sync", help="sync one shop or every active shop now")
    sync.add_argument("--shop", help="shop id or name (default: all active shops)")
    sync.set_defaults(func=_sync)

    bf = sub.add_parser("backfill", help="read a shop's history between two dates (silent, resumable)")
    bf.add_argument("--shop", required=True, help="shop id or name")
    bf.add_argument("--since", required=True, type=_day)
    bf.add_argument("--until", type=_day, default=None, help="default: today")
    bf.add_argument("--streams", nargs="*", default=None, help="default: every stream (WB: orders, reviews)")
    bf.set_defaults(func=_backfill)

    rt = sub.add_parser("refresh-tokens", help="refresh Allegro tokens that expire soon")
    rt.set_defaults(func=_refresh)

    serve = sub.add_parser("serve", help="run every deployment on its schedule from this process")
    serve.add_argument("--prefect-port", type=int, default=4200, help="port of the local Prefect server/UI")
    serve.set_defaults(func=_serve)

    demo = sub.add_parser("demo", help="everything, locally: sandbox shops, Prefect UI, scheduled syncs")
    demo.add_argument("--scenario", default="demo")
    demo.add_argument("--speed", type=float, default=20.0, help="sandbox seconds per real second")
    demo.add_argument("--sandbox-port", type=int, default=8765)
    demo.add_argument("--prefect-port", type=int, default=4200)
    demo.set_defaults(func=_demo)
