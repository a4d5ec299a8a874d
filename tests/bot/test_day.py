"""A sandbox day delivered by the real `sellerpulse bot` process: every notification reaches
each member of each shop exactly once (the transcripts against the outbox), under a 429 storm,
with the bot killed (SIGKILL) mid-delivery and started again.

The API is served on a local port (uvicorn in a thread, real PostgreSQL), the stand-in on
another; the bot runs as a subprocess, as an operator runs it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from flows.prefect_server import free_port
from sandbox.telegram.state import DEFAULT_TOKEN
from storage import apikeys
from storage.db import session_scope
from storage.models import Membership, Person
from storage.settings_repo import update_settings
from tests.api.conftest import build_app
from tests.bot.conftest import SCALE, StandIn
from tests.connectors.sandbox_harness import make_sandbox as marketplace_sandbox
from tests.flows.conftest import add_shops, clients_for, make_sandbox
from tests.notify.scenario import add_owners, sync_all

ROOT = Path(__file__).resolve().parents[2]


async def a_day(engine: Engine) -> dict[str, int]:
    """The lively scenario's shops, an owner and a member each, a day synced every two hours."""
    app = make_sandbox(scenario="lively")
    world = app.state.world
    shops = add_shops(engine, world)
    add_owners(engine, world, shops)
    with Session(engine) as s, s.begin():
        for name, shop_id in shops.items():
            member = Person(telegram_id=950_000 + shop_id, language="ru" if name.startswith("wb") else "pl")
            s.add(member)
            s.flush()
            s.add(Membership(shop_id=shop_id, person_id=member.id, role="member"))
        # Groups close at once (nothing held for minutes); baskets are still one message.
        for (pid,) in s.execute(text("SELECT id FROM people")):
            update_settings(s, person_id=pid, values={"group_timeout": 0})
    async with clients_for(app) as clients:
        await sync_all(shops, clients)  # silent
        for _ in range(12):
            world.advance(7200)
            await sync_all(shops, clients)
    return shops


class ServedApi:
    def __init__(self, engine: Engine) -> None:
        self.app = build_app(marketplace_sandbox(scenario="tiny", auto_approve=True), engine)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServedApi:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the API did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def served(clean_engine: Engine) -> Iterator[ServedApi]:
    with ServedApi(clean_engine) as api:
        yield api


def bot_process(api: ServedApi, telegram: StandIn, key: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SELLERPULSE_API_URL": api.url,
        "SELLERPULSE_API_KEY": key,
        "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN,
        "TELEGRAM_API_URL": telegram.url,
        "TELEGRAM_TIME_SCALE": str(SCALE),
        "BOT_POLL_SECONDS": "0.2",
        "BOT_RECIPIENTS_SECONDS": "1",
    }
    out = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", "sellerpulse.cli", "bot"], cwd=ROOT, env=env, stdout=out,
                            stderr=subprocess.STDOUT)  # fmt: skip


def wait(check, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def expected(api: ServedApi, key: str, telegram_id: int) -> Counter:
    found: Counter = Counter()
    with httpx.Client(base_url=api.url + "/api/v1", headers={"X-API-Key": key}) as client:
        after = 0
        while True:
            params = {"telegram_id": telegram_id, "after": after, "limit": 200}
            page = client.get("/notifications", params=params).json()
            found.update(i["text"] for i in page["items"])
            if page["next_cursor"] == after:
                return found
            after = page["next_cursor"]


def delivered(telegram: StandIn, telegram_id: int) -> Counter:
    entries = telegram.world.transcript(telegram_id)
    return Counter(e.text for e in entries if e.sender == "bot" and e.kind in {"text", "photo"})


def recorded_sent(engine: Engine) -> int:
    with engine.connect() as c:
        return c.execute(text("SELECT count(DISTINCT (person_id, item_id)) FROM delivery_records")).scalar_one()


@pytest.mark.asyncio(loop_scope="session")
async def test_a_day_exactly_once_with_a_storm_and_a_killed_bot(
    served: ServedApi, telegram: StandIn, clean_engine: Engine, tmp_path: Path
) -> None:
    await a_day(clean_engine)
    with session_scope(clean_engine) as s:
        key = apikeys.create_key(s, name="bot").secret
        people = [tid for (tid,) in s.execute(text("SELECT telegram_id FROM people ORDER BY id"))]
    want = {t: expected(served, key, t) for t in people}
    total = sum(sum(w.values()) for w in want.values())
    assert total > 500 and all(want.values()), {t: sum(w.values()) for t, w in want.items()}
    world = telegram.world
    for t in people:
        world.user(t, started=True)
    sent_total = lambda: sum(delivered(telegram, t).total() for t in people)  # noqa: E731

    log = tmp_path / "bot.log"
    world.flood.storm(probability=0.3, seconds=3600, retry_after=1)
    first = bot_process(served, telegram, key, log)
    try:
        wait(lambda: sent_total() >= total // 3, timeout=60, what="a third delivered")
        # Freeze Telegram (every send refused), wait until every accepted message has its record,
        # and kill the bot there: mid-delivery, with pages sent but not acked.
        world.flood.storm(probability=1.0, seconds=3600, retry_after=1)
        wait(lambda: recorded_sent(clean_engine) == sent_total(), timeout=30, what="records of all sends")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    partial = sent_total()
    assert total // 3 <= partial < total

    world.flood.storm(probability=0.3, seconds=3600, retry_after=1)
    second = bot_process(served, telegram, key, log)
    try:
        wait(lambda: sent_total() >= total, timeout=90, what="everything delivered")
        wait(lambda: recorded_sent(clean_engine) == total, timeout=30, what="every record")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(20)
        world.flood.calm()
    for t in people:
        assert delivered(telegram, t) == want[t], f"person {t}"
    output = log.read_text()
    assert DEFAULT_TOKEN not in output and key not in output  # secrets never logged
    last = [line for line in output.splitlines() if "delivery: sent=" in line][-1]
    recognised = int(last.split("recognised=")[1].split()[0])
    assert recognised > 0  # the killed bot's unacked pages came again and were not sent twice
    assert second.returncode == 0


def test_a_key_the_api_refuses_stops_the_bot_in_one_line(served: ServedApi, telegram: StandIn) -> None:
    env = {**os.environ, "SELLERPULSE_API_URL": served.url, "SELLERPULSE_API_KEY": "sp_not-a-key-of-ours",
           "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN, "TELEGRAM_API_URL": telegram.url}  # fmt: skip
    run = subprocess.run([sys.executable, "-m", "sellerpulse.cli", "bot"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=90)  # fmt: skip
    assert run.returncode == 2 and "refused SELLERPULSE_API_KEY (401)" in run.stderr
    assert "Traceback" not in run.stderr and "sp_not-a-key-of-ours" not in run.stderr
