"""The local cluster's guarantees in the default run (issue 16), without Prefect's server: two
worker processes run sync-batch's own body (tests/flows/batch_worker.py) on the same shops of
one cycle, against the sandbox on a port with its rate limits on, sharing the rate buckets in
PostgreSQL. One is killed with SIGKILL in the middle of its batch; the next cycles sync every
shop to the marketplace's truth, each shop at most once per cycle, nothing notified twice or
lost, no run left `running`, and not one request refused for a limit.

The full form (a Prefect server, `prefect worker`s, the API, the bot; minutes, marked slow):
tests/cli/test_cluster_cli.py.
"""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import psutil
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from flows.fanout import rotated
from flows.local_server import uvicorn_thread
from sandbox import SandboxConfig, create_app
from sandbox.ratelimit import Decision, Rate, RateLimiter
from sellerpulse.processes import free_port
from storage.models import Shop, SyncRun
from storage.sync_state import database_now
from tests.cli.conftest import Sandbox, cli_env
from tests.flows.conftest import add_shops
from tests.flows.truth import assert_allegro_matches, assert_wb_matches
from tests.notify.scenario import add_owners, assert_notified_once

ROOT = Path(__file__).resolve().parents[2]
PER_MARKETPLACE = 5  # one batch each way: the victim starts a shop of its own after its first
# The workers' MARKETPLACE_RATE_SCALE and the sandbox's rate-limit scale: the ratios of every
# documented limit kept, WB statistics' and the order feed's 1 request a minute is one every 3 s
# (a worker taking a shop another synced a moment ago must wait for it: shared buckets).
SCALE = 20.0
LEASE_SECONDS = 4  # the workers' SYNC_LEASE_SECONDS: a dead worker's shops are free this long after
CONCURRENCY = 1  # shops at a time per marketplace in a batch
DEADLINE = 60.0  # seconds for any one step
# Seconds for a worker to be ready: it imports Prefect and the app (~4 s of CPU each; a busy
# machine makes it much more).
STARTUP = 180.0
T = TypeVar("T")


class RealTimeLimiter(RateLimiter):
    """The sandbox's buckets on real time, its world on a frozen clock that only the test moves:
    limits refill as the workers' scaled ones do, and no order changes while it is compared
    with what was stored (a running clock would move the truth under the comparison)."""

    def take(self, owner: str, name: str, rate: Rate, now: float, block_on_empty: float = 0.0) -> Decision:
        return super().take(owner, name, rate, time.monotonic(), block_on_empty)

    def charge(self, owner: str, name: str, rate: Rate, now: float, extra: int) -> None:
        super().charge(owner, name, rate, time.monotonic(), extra)


def _wait_for(what: str, check: Callable[[], T | None]) -> T:
    deadline = time.monotonic() + DEADLINE
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out after {DEADLINE:.0f} s waiting for {what}"
        time.sleep(0.05)  # polling the database, not waiting for a result
    return found


@dataclass
class Worker:
    proc: subprocess.Popen[str]
    lines: queue.Queue[str | None]
    log: Path  # every worker's stderr

    @property
    def holder(self) -> str:
        """Its name in sync_leases (storage.leases.holder_name): host and process."""
        return f"{socket.gethostname()}:{self.proc.pid}"

    def read(self, timeout: float = DEADLINE) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            logged = self.log.read_text()
            raise AssertionError(f"worker {self.proc.pid}: no answer in {timeout:.0f} s\n{logged}") from None
        assert line is not None, f"worker {self.proc.pid} exited with {self.proc.wait()}\n{self.log.read_text()}"
        return line

    def start_batch(self, shop_ids: list[int], since: datetime) -> None:
        """What a sync-batch flow run is given by sync-all."""
        assert self.proc.stdin is not None
        params = {"shop_ids": shop_ids, "concurrency": CONCURRENCY, "since": since.isoformat()}
        self.proc.stdin.write(json.dumps(params) + "\n")
        self.proc.stdin.flush()

    def results(self) -> dict[int, str]:
        answer: dict[str, Any] = json.loads(self.read())
        assert "error" not in answer, f"worker {self.proc.pid}: {answer['error']}"
        return {int(k): v for k, v in answer["results"].items()}


def _pump(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.strip())
    lines.put(None)


@contextmanager
def workers(count: int, env: dict[str, str], log: Path) -> Iterator[list[Worker]]:
    """`count` worker processes, started together and ready (imported); stopped at the end."""
    started: list[Worker] = []
    try:
        with log.open("a") as err:
            for _ in range(count):
                proc = subprocess.Popen(
                    [sys.executable, "-m", "tests.flows.batch_worker"],
                    cwd=ROOT, env=env, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                )  # fmt: skip
                worker = Worker(proc, queue.Queue(), log)
                threading.Thread(target=_pump, args=(proc.stdout, worker.lines), daemon=True).start()
                started.append(worker)
        for worker in started:
            assert worker.read(STARTUP) == "ready", log.read_text()
        yield started
    finally:
        for worker in started:  # stdin closed: a worker's loop ends; one that does not is killed
            if worker.proc.stdin is not None:
                worker.proc.stdin.close()
            try:
                worker.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait(timeout=30)


def _parts(shops: dict[str, int], part: int, parts: int) -> list[int]:
    """A batch of each marketplace as sync-all makes it: every shop, from a different place."""
    by_market = [sorted(i for n, i in shops.items() if n.startswith(m)) for m in ("wb", "allegro")]
    return [i for ids in by_market for i in rotated(ids, part, parts)]


class MidBatch:
    """Polled: true (the runs in flight) once `holder` has finished a shop's first sync under a
    lease of its own and is running another shop's: the middle of its batch. A lease names its
    holder only while held: the tokens it was seen with are kept."""

    def __init__(self, engine: Engine, holder: str) -> None:
        self.engine, self.holder, self.tokens = engine, holder, set[int]()

    def __call__(self) -> list[int]:
        with self.engine.connect() as conn:
            held = conn.execute(
                text(
                    "SELECT l.token, r.id FROM sync_leases l LEFT JOIN sync_runs r "
                    "ON r.lease_token = l.token AND r.status = 'running' "
                    "WHERE l.holder = :holder AND l.expires_at > clock_timestamp()"
                ),
                {"holder": self.holder},
            ).all()
            self.tokens |= {token for token, _ in held}
            released = list(self.tokens - {token for token, _ in held})
            finished = conn.execute(
                text(
                    "SELECT count(*) FROM sync_runs r JOIN shops s ON s.id = r.shop_id "
                    "WHERE r.lease_token = ANY(:tokens) AND s.notify_from IS NOT NULL"
                ),
                {"tokens": released},
            ).scalar()
        running = [run for _, run in held if run is not None]
        return running if finished else []


def _kill_mid_batch(engine: Engine, worker: Worker) -> list[int]:
    """SIGKILL once `worker` is in the middle of its batch (MidBatch); the runs it was running.
    It is stopped (SIGSTOP) and looked at again before the kill: a run found `running` may
    finish in the moment between a look and a kill, never while the process is stopped."""
    mid, pid = MidBatch(engine, worker.holder), worker.proc.pid
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if mid():
            worker.proc.send_signal(signal.SIGSTOP)
            _wait_for("the worker to stop", lambda: psutil.Process(pid).status() == psutil.STATUS_STOPPED)
            if running := mid():
                worker.proc.send_signal(signal.SIGKILL)  # a machine dying: nothing released, nothing finished
                assert worker.proc.wait(timeout=30) == -signal.SIGKILL
                return running
            worker.proc.send_signal(signal.SIGCONT)
        time.sleep(0.05)  # polling the database, not waiting for a result
    raise AssertionError(f"timed out after {DEADLINE:.0f} s waiting for the worker in the middle of its batch")


def _holds_a_lease(engine: Engine, holder: str) -> bool:
    with engine.connect() as conn:
        query = "SELECT count(*) FROM sync_leases WHERE holder = :holder AND expires_at > clock_timestamp()"
        return bool(conn.execute(text(query), {"holder": holder}).scalar())


def _runs_per_stream(engine: Engine, start: datetime, end: datetime) -> dict[tuple[int, str], list[str]]:
    """(shop, stream) -> the statuses of its sync runs started in [start, end)."""
    with Session(engine) as s:
        rows = s.execute(
            select(SyncRun.shop_id, SyncRun.stream, SyncRun.status)
            .where(SyncRun.kind == "sync", SyncRun.started_at >= start, SyncRun.started_at < end)
            .order_by(SyncRun.id)
        ).all()
    out: dict[tuple[int, str], list[str]] = {}
    for shop, stream, status in rows:
        out.setdefault((shop, stream), []).append(status)
    return out


def _first_syncs_done(engine: Engine) -> int:
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(Shop).where(Shop.notify_from.is_not(None))) or 0


def test_two_workers_share_a_cycles_shops_and_a_killed_one_loses_and_duplicates_nothing(
    tmp_path: Path, clean_engine: Engine
) -> None:
    # Frozen at the workers' wall clock (their "now" is the shops' notify_from); moved by the test.
    start = datetime.now(UTC).replace(microsecond=0)
    scenario = f"fleet:wb_shops={PER_MARKETPLACE},allegro_shops={PER_MARKETPLACE}"
    app = create_app(replace(SandboxConfig(), scenario=scenario, start=start, rate_limit_scale=SCALE))
    world = app.state.world
    world.limiter = RealTimeLimiter(enabled=True, scale=SCALE)
    with uvicorn_thread(app, free_port(), "sandbox") as url:
        shops = add_shops(clean_engine, world)
        add_owners(clean_engine, world, shops)
        ids = sorted(shops.values())
        env = cli_env(
            Sandbox(url, world), tmp_path, MARKETPLACE_RATE_SCALE=str(SCALE), SYNC_LEASE_SECONDS=str(LEASE_SECONDS)
        )
        # The third comes in for the last cycle (a restarted worker); started with the others so
        # the imports overlap.
        with workers(3, env, tmp_path / "workers.log") as (survivor, victim, late):
            # Cycle 1: both workers on every shop; the victim dies in the middle of a shop's sync.
            cycle1 = database_now(clean_engine)
            survivor.start_batch(_parts(shops, 0, 2), cycle1)
            victim.start_batch(_parts(shops, 1, 2), cycle1)
            in_flight = _kill_mid_batch(clean_engine, victim)
            first = survivor.results()
            assert "failed" not in first.values(), first
            # Its shops are free once their leases expire (SYNC_LEASE_SECONDS), unrenewed.
            _wait_for("the dead worker's leases to expire", lambda: not _holds_a_lease(clean_engine, victim.holder))

            # Cycle 2: the survivor syncs every shop, the dead worker's too (their first full sync).
            cycle2 = database_now(clean_engine)
            survivor.start_batch(_parts(shops, 0, 1), cycle2)
            assert survivor.results() == {i: "ok" for i in ids}
            assert _first_syncs_done(clean_engine) == len(ids)

            # Live activity (orders, sales, reviews, stock), then cycle 3 on two workers again.
            world.advance(4 * 3600)
            cycle3 = database_now(clean_engine)
            survivor.start_batch(_parts(shops, 0, 2), cycle3)
            late.start_batch(_parts(shops, 1, 2), cycle3)
            third = [survivor.results(), late.results()]
            assert {i: sorted(r[i] for r in third) for i in ids} == {i: ["ok", "skipped"] for i in ids}
        end = database_now(clean_engine)

    # Each shop synced at most once per cycle across the workers (the lease and `since` check);
    # in the cycles after the kill, every stream of every shop once, successfully.
    killed_cycle = _runs_per_stream(clean_engine, cycle1, cycle2)
    assert all(len(s) == 1 for s in killed_cycle.values()), killed_cycle
    for begin, until in ((cycle2, cycle3), (cycle3, end)):
        runs = _runs_per_stream(clean_engine, begin, until)
        assert {shop for shop, _ in runs} == set(ids)
        assert all(s == ["success"] for s in runs.values()), runs
    # What the victim was running was reaped (marked failed, crashed) when its shop was next
    # synced; nothing from before the kill, nor since, is left `running`.
    with Session(clean_engine) as s:
        reaped = s.execute(select(SyncRun.status, SyncRun.error).where(SyncRun.id.in_(in_flight))).all()
        stale = s.scalar(select(func.count()).select_from(SyncRun).where(SyncRun.status == "running"))
    assert len(reaped) == len(in_flight) and all(st == "failed" and e.startswith("crashed:") for st, e in reaped)
    assert stale == 0

    for name, shop_id in shops.items():
        (assert_wb_matches if name.startswith("wb") else assert_allegro_matches)(clean_engine, world, name, shop_id)
    assert_notified_once(clean_engine, world, shops)
    # The workers kept every limit together: the sandbox refused nothing (limit refusals only;
    # no faults are injected, so no 429 at all).
    assert world.limiter.refused() == {}
    assert not [r for r in world.log.entries() if r.status == 429]
    # Through buckets in PostgreSQL: one row per WB token and category, whichever worker sent.
    with clean_engine.connect() as conn:
        rows = conn.execute(text("SELECT category, count(*) FROM rate_buckets WHERE category LIKE 'wb%' GROUP BY 1"))
        per_category = dict(rows.tuples().all())
    assert per_category and set(per_category.values()) == {PER_MARKETPLACE}, per_category
