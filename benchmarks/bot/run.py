"""Delivery at Telegram's limits: 1,000 people in 500 shops, a burst of 10,000 messages, then a
steady flow; the bot as a process, the API under uvicorn, the Telegram stand-in.

    uv run python -m benchmarks.bot [--time-scale 10] [--people 1000] [--shops 500]
                                    [--messages 10000] [--steady-seconds 60] [--steady-load 0.5]

Each shop has two members (people / shops), so the burst is messages / 2 outbox notifications
(new orders, grouping off: one message each), written at once as a sync would. The lower
bound is Telegram's global limit: messages / 30 seconds (per-chat limits allow it: a person
gets messages / people of them, at one a second). `--time-scale S` runs the stand-in's clock S
times faster and tells the bot so (`TELEGRAM_TIME_SCALE`): every limit, the lower bound and
retry_after scale together, the bot's poll interval and the API do not (a harder test).

Reports: time to deliver the burst (from its commit to the last message Telegram accepted),
as a ratio to the lower bound; 429s met; messages per chat (exactly once: every one of them,
none twice); then, with notifications arriving at `--steady-load` of the global limit, the
lag from a notification's creation to Telegram accepting it: p50, p95, max. Figures: README.md.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from api.serving import free_port, served_api
from benchmarks.api.run import database
from sandbox.telegram.client import TelegramOperator
from sandbox.telegram.state import DEFAULT_TOKEN
from sellerpulse.notify.drafts import Draft
from sellerpulse.processes import stop
from storage import apikeys, migrate, outbox, scratch
from storage.db import session_scope

ROOT = Path(__file__).resolve().parents[2]
TELEGRAM_BASE = 30_000_000
GLOBAL_LIMIT = 30.0  # messages per second (Bot FAQ)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))] if ordered else 0.0


def populate(url: str, *, people: int, shops: int) -> list[int]:
    """People, shops (two members each, grouping off), joined a day ago; their Telegram ids."""
    joined = datetime.now(UTC) - timedelta(days=1)
    ids = [TELEGRAM_BASE + i for i in range(people)]
    with psycopg.connect(scratch.libpq_url(url)) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO people (telegram_id, first_name, language) VALUES (%s, %s, 'en')",
            [(t, f"P{t}") for t in ids],
        )
        cur.executemany(
            "INSERT INTO shops (marketplace, name, status, notify_from, currency, language)"
            " VALUES ('wb', %s, 'active', %s, 'RUB', 'en')",
            [(f"Shop {i}", joined) for i in range(shops)],
        )
        cur.execute(
            "INSERT INTO memberships (shop_id, person_id, role, created_at) "
            "SELECT s.id, p.id, CASE WHEN (p.id - 1) / %(per)s * %(per)s = p.id - 1 THEN 'owner' ELSE 'member' END, "
            "%(joined)s FROM people p JOIN shops s ON s.id = (p.id - 1) / %(per)s + 1",
            {"per": max(1, people // shops), "joined": joined},
        )
        cur.execute("INSERT INTO notification_settings (person_id, grouping_enabled) SELECT id, false FROM people")
    return ids


def notify(engine, shop_ids: list[int], count: int, *, tag: str) -> None:
    """`count` new-order notifications over these shops, one transaction per shop (as syncs do)."""
    per_shop: dict[int, list[Draft]] = {}
    for i in range(count):
        shop = shop_ids[i % len(shop_ids)]
        key = f"{shop}:new_order:{tag}{i}:seen"
        per_shop.setdefault(shop, []).append(Draft("new_order", key, f"{tag}{i}", {"order_id": f"{tag}{i}",
                                                                                    "amount": "100.00"}))  # fmt: skip
    for shop, drafts in per_shop.items():
        with Session(engine) as s, s.begin():
            outbox.add(s, shop_id=shop, drafts=drafts)


@contextmanager
def process(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        stop(proc)


def accepted(op: TelegramOperator) -> int:
    calls = op.stats()["calls"]
    errors = sum(v for k, v in calls.items() if k.startswith("sendMessage:"))
    return calls.get("sendMessage", 0) - errors


def wait_for(check, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out waiting for {what}")
        time.sleep(0.25)


def run(args: argparse.Namespace) -> int:
    scale = args.time_scale
    per_person = args.messages // args.people
    with database() as url, tempfile.TemporaryDirectory(prefix="sp-bench-bot-") as tmp:
        engine = create_engine(url)
        migrate.upgrade(engine)
        ids = populate(url, people=args.people, shops=args.shops)
        shop_ids = list(range(1, args.shops + 1))
        with session_scope(engine) as s:
            key = apikeys.create_key(s, name="bench").secret
        tg_port = free_port()
        tg_url = f"http://127.0.0.1:{tg_port}"
        logs = Path(tmp)
        telegram = [sys.executable, "-m", "sellerpulse.cli", "telegram", "serve", "--port", str(tg_port),
                    "--time-scale", str(scale)]  # fmt: skip
        with (
            served_api(url, Path(tmp), workers=args.api_workers, port=free_port()) as api,
            process(telegram, dict(os.environ), logs / "telegram.log"),
        ):
            op = TelegramOperator(tg_url)
            wait_for(lambda: _up(tg_url), timeout=60, what="the stand-in")
            op.add_users([{"id": t} for t in ids])
            env = {
                **os.environ,
                "SELLERPULSE_API_URL": api.url,
                "SELLERPULSE_API_KEY": key,
                "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN,
                "TELEGRAM_API_URL": tg_url,
                "TELEGRAM_TIME_SCALE": str(scale),
                "BOT_METRICS_SECONDS": "10",
                "SELLERPULSE_LOG_LEVEL": "INFO",
            }
            with process([sys.executable, "-m", "sellerpulse.cli", "bot"], env, logs / "bot.log"):
                wait_for(lambda: "delivery started" in (logs / "bot.log").read_text(), timeout=60, what="the bot")
                print(f"bench: {args.people} people, {args.shops} shops, burst of {args.messages} messages, "
                      f"time scale {scale:g}", flush=True)  # fmt: skip
                started = time.time()
                notify(engine, shop_ids, args.messages // 2, tag="b")
                committed = time.time()
                wait_for(lambda: accepted(op) >= args.messages, timeout=args.messages / GLOBAL_LIMIT / scale * 5 + 120,
                         what="the burst")  # fmt: skip
                chats = op.chats()
                burst = [e for entries in chats.values() for e in entries if e["from"] == "bot"]
                done = max(e["accepted_at"] for e in burst)
                took = done - committed
                bound = args.messages / GLOBAL_LIMIT / scale
                per_chat = Counter(len([e for e in v if e["from"] == "bot"]) for v in chats.values())
                # A notification goes to both members of its shop: a duplicate is a text twice in one chat.
                twice = sum(n - 1 for v in chats.values() for n in Counter(e["text"] for e in v).values())
                refused = op.stats()["refused_429"]
                first = done - started
                print(f"burst: written in {committed - started:.1f} s; delivered {took:.1f} s after the last write, "
                      f"{first:.1f} s after the first; lower bound {bound:.1f} s (= {args.messages} / 30/s / "
                      f"{scale:g}); ratio {took / bound:.2f} (from the first write: {first / bound:.2f})")  # fmt: skip
                print(f"burst: messages per chat {dict(per_chat)} (expected {{{per_person}: {args.people}}}); "
                      f"duplicates {twice}; 429s {refused}")  # fmt: skip

                lags = steady(engine, op, shop_ids, args, scale)
                print(f"steady: {len(lags)} messages at {args.steady_load:.0%} of the limit over "
                      f"{args.steady_seconds:g} s: lag p50 {percentile(lags, 50):.2f} s, p95 "
                      f"{percentile(lags, 95):.2f} s, max {max(lags, default=0):.2f} s")  # fmt: skip
            metrics = [x for x in (logs / "bot.log").read_text().splitlines() if "delivery: sent=" in x]
            print("bot:", metrics[-1].split("INFO ")[-1] if metrics else "(no metrics line)")
        engine.dispose()
    return 0


def steady(engine, op: TelegramOperator, shop_ids: list[int], args: argparse.Namespace, scale: float) -> list[float]:
    """Notifications at a steady rate; each message's lag from its notification's creation."""
    rate = GLOBAL_LIMIT * scale * args.steady_load / 2  # notifications per second (two members each)
    before = accepted(op)
    rng = random.Random(3)
    sent = 0
    start = time.monotonic()
    while time.monotonic() - start < args.steady_seconds:
        due = int((time.monotonic() - start) * rate) - sent
        if due > 0:
            notify(engine, rng.sample(shop_ids, min(due, len(shop_ids))), due, tag=f"s{sent}-")
            sent += due
        time.sleep(0.05)
    wait_for(lambda: accepted(op) >= before + 2 * sent, timeout=120, what="the steady flow")
    with engine.connect() as conn:
        created = {
            oid: at.timestamp()
            for oid, at in conn.exec_driver_sql(
                "SELECT payload->>'order_id', created_at FROM notifications WHERE payload->>'order_id' LIKE 's%%'"
            )
        }
    lags = []
    for entries in op.chats().values():
        for e in entries:
            if e["from"] == "bot" and e["text"] and "<code>s" in e["text"]:
                oid = e["text"].split("<code>")[1].split("</code>")[0]
                lags.append(e["accepted_at"] - created[oid])
    return lags


def _up(url: str) -> bool:
    try:
        return httpx.get(url + "/", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bot", description=__doc__.split("\n\n")[0])
    parser.add_argument("--time-scale", type=float, default=10.0)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--shops", type=int, default=500)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--steady-seconds", type=float, default=60.0)
    parser.add_argument("--steady-load", type=float, default=0.5, help="fraction of the global limit")
    parser.add_argument("--api-workers", type=int, default=2)
    args = parser.parse_args(argv)
    if args.people < args.shops or args.people % args.shops or args.messages % args.people:
        parser.error("people must be a multiple of shops, and messages a multiple of people")
    return run(args)
