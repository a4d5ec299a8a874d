"""`sellerpulse cluster` (deployments/local-cluster): the production topology as processes on one
machine, the same parts as deployments/docker-compose.yml.

- PostgreSQL: the one DATABASE_URL names (e.g. the system one at 127.0.0.1:5432); sellerpulse's
  schema is upgraded, and Prefect gets a database of its own on the same server (created if
  missing, `<database>_prefect` unless --prefect-database names another).
- A Prefect server on that database; the work pool with one queue per marketplace and the
  zombie-run automation (`sellerpulse prefect-setup`); the deployments of prefect.yaml
  (`prefect deploy --all`, as a worker install does), sync-all every SYNC_INTERVAL_SECONDS.
- N `prefect worker`s on the pool; the API with 2 worker processes; the Telegram Bot API
  stand-in (`sellerpulse telegram serve`) and the bot against it and the API.

Every part is a process in a process group of its own (a worker's flow runs are in its group),
its output in `<data dir>/cluster/logs/`. Where each listens and each group's id are written to
`<data dir>/cluster/state.json` once all are up (a test kills a worker by it), the pids to
`state.pids` as they start; each part is SIGKILLed by the kernel if the cluster process dies.
Ctrl-C or SIGTERM stops every group it started, in reverse order: SIGTERM, then SIGKILL for what is still there after
STOP_SECONDS. A part that dies meanwhile is reported and not restarted (a worker's runs are the
zombie automation's business, its shops the next cycle's).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from flows.prefect_server import free_port
from flows.zombies import heartbeat_env
from sellerpulse.errors import UserError
from sellerpulse.settings import Settings

ROOT = Path(__file__).resolve().parent.parent  # the checkout: prefect.yaml, the flows' code
STOP_SECONDS = 20.0
READY_SECONDS = 120.0
TELEGRAM_TOKEN = "123456789:cluster-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


@dataclass
class Part:
    name: str
    pid: int
    url: str | None = None
    log: str = ""


@dataclass
class State:
    prefect_api: str
    api: str
    telegram: str
    database: str
    prefect_database: str
    parts: list[Part] = field(default_factory=list)

    def workers(self) -> list[Part]:
        return [p for p in self.parts if p.name.startswith("worker-")]


def read_state(path: Path) -> State:
    raw = json.loads(path.read_text())
    return State(**{**raw, "parts": [Part(**p) for p in raw["parts"]]})


# --- PostgreSQL ---------------------------------------------------------------------------------


def libpq_url(settings: Settings) -> str:
    if settings.database_url is None:
        raise UserError(
            "set DATABASE_URL to a PostgreSQL server (e.g. postgresql://postgres@127.0.0.1:5432/sellerpulse)"
        )
    return make_url(settings.database_url.get_secret_value()).set(drivername="postgresql").render_as_string(False)


def ensure_database(url: str, name: str) -> str:
    """Create database `name` on the server of `url` if missing; its asyncpg URL (for Prefect)."""
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_url(url).set(drivername="postgresql+asyncpg", database=name).render_as_string(False)


# --- processes ----------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the cluster process dies, however it dies
    (Linux; elsewhere only an orderly stop stops the parts)."""
    os.setsid()  # a process group of its own: its children (a worker's flow runs) go with it
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Group:
    """The processes started so far, each in a process group of its own; stopped in reverse
    order. `pids` (a file) lists them as they start, for whoever must clean up after a crash."""

    def __init__(self, logs: Path, pids: Path | None = None) -> None:
        self.logs = logs
        self.pids = pids
        self.procs: list[tuple[Part, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str], *, url: str | None = None) -> Part:
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )  # fmt: skip
        part = Part(name, proc.pid, url, str(log))
        self.procs.append((part, proc))
        if self.pids is not None:
            self.pids.write_text("".join(f"{p.pid}\n" for p, _ in self.procs))
        return part

    def exited(self) -> list[tuple[Part, int]]:
        return [(part, proc.returncode) for part, proc in self.procs if proc.poll() is not None]

    def stop(self) -> None:
        for _part, proc in reversed(self.procs):
            _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for _part, proc in reversed(self.procs):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            _signal_group(proc.pid, signal.SIGKILL)  # its group: flow runs the worker started too
            proc.wait()


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _wait_http(url: str, proc_check: Any, what: str) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        proc_check()
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise UserError(f"the {what} did not answer at {url} within {READY_SECONDS:.0f} s")


def _wait_log(part: Part, text: str, proc_check: Any) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while text not in Path(part.log).read_text(errors="replace"):
        proc_check()
        if time.monotonic() > deadline:
            raise UserError(f"the {part.name} did not start within {READY_SECONDS:.0f} s; see {part.log}")
        time.sleep(0.3)


def _checker(group: Group) -> Any:
    def check() -> None:
        for part, code in group.exited():
            raise UserError(f"the {part.name} exited at start-up (code {code}); see {part.log}")

    return check


# --- the topology -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ports:
    prefect: int
    api: int
    telegram: int


def _bot_key() -> str:
    """A fresh API key for this cluster's bot (the old ones stay until revoked)."""
    from storage.apikeys import create_key
    from storage.db import session_scope

    with session_scope() as session:
        return create_key(session, name=f"cluster bot {time.strftime('%Y-%m-%d %H:%M:%S')}").secret


def _in_prefect(api_url: str, work: Any) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        asyncio.run(work())


def _setup_prefect(settings: Settings, api_url: str) -> None:
    """`sellerpulse prefect-setup`: the pool, its queues per marketplace, the zombie automation."""
    from flows.pool import ensure_work_pool
    from flows.zombies import ensure_zombie_automation

    async def setup() -> None:
        await ensure_work_pool(settings)
        await ensure_zombie_automation(settings)

    _in_prefect(api_url, setup)


def _sync_every(settings: Settings, api_url: str) -> None:
    """prefect.yaml schedules sync-all every 180 s; here it is SYNC_INTERVAL_SECONDS, the first
    run FIRST_RUN_AFTER from now (as `sellerpulse serve` does)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.schedules import IntervalSchedule

    from flows.deployments import FIRST_RUN_AFTER

    interval = timedelta(seconds=settings.sync_interval_seconds)

    async def reschedule() -> None:
        async with get_client() as client:
            deployment = await client.read_deployment_by_name("sync-all/sync-all")
            anchor = datetime.now(UTC) - interval + FIRST_RUN_AFTER
            for schedule in deployment.schedules:
                await client.update_deployment_schedule(
                    deployment.id, schedule.id, schedule=IntervalSchedule(interval=interval, anchor_date=anchor)
                )

    _in_prefect(api_url, reschedule)


def start(settings: Settings, *, workers: int, ports: Ports, prefect_database: str | None, group: Group) -> State:
    from storage import migrate
    from storage.db import get_engine, get_target

    if get_target().embedded:
        raise UserError("the cluster needs a PostgreSQL server all its processes reach: set DATABASE_URL")
    db_url = libpq_url(settings)
    migrate.upgrade(get_engine())
    prefect_db = prefect_database or f"{make_url(db_url).database}_prefect"
    prefect_db_url = ensure_database(db_url, prefect_db)
    check = _checker(group)
    prefect_api = f"http://127.0.0.1:{ports.prefect}/api"
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_URL")}
    base.update(DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false", SELLERPULSE_HOME=str(ROOT))
    base.setdefault("PREFECT_HOME", str(settings.sellerpulse_data_dir / "cluster" / "prefect"))
    server_env = {**base, "PREFECT_API_DATABASE_CONNECTION_URL": prefect_db_url, "PREFECT_UI_API_URL": prefect_api}
    py = sys.executable
    parts = [
        group.start(
            "prefect-server",
            [py, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(ports.prefect)],
            server_env,
            url=prefect_api,
        )
    ]
    _wait_http(f"{prefect_api}/health", check, "Prefect server")
    env = {**base, "PREFECT_API_URL": prefect_api, **heartbeat_env(settings)}
    _setup_prefect(settings, prefect_api)
    deployed = subprocess.run(
        [py, "-m", "prefect", "--no-prompt", "deploy", "--all"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if deployed.returncode != 0:
        raise UserError(f"`prefect deploy --all` failed: {(deployed.stderr or deployed.stdout).strip()[-400:]}")
    _sync_every(settings, prefect_api)
    for i in range(1, workers + 1):
        argv = [py, "-m", "prefect", "worker", "start", "--pool", settings.prefect_work_pool, "--name", f"worker-{i}"]
        parts.append(group.start(f"worker-{i}", argv, env))
    api = f"http://127.0.0.1:{ports.api}"
    sp = [py, "-m", "sellerpulse.cli"]
    parts.append(group.start("api", [*sp, "api", "--workers", "2", "--port", str(ports.api)], env, url=api))
    telegram = f"http://127.0.0.1:{ports.telegram}"
    telegram_argv = [*sp, "telegram", "serve", "--port", str(ports.telegram), "--token", TELEGRAM_TOKEN]
    parts.append(group.start("telegram", telegram_argv, env, url=telegram))
    _wait_http(f"{api}/api/v1/health/live", check, "API")
    _wait_http(telegram, check, "Telegram stand-in")
    bot_env = {
        **env,
        "SELLERPULSE_API_URL": api,
        "SELLERPULSE_API_KEY": _bot_key(),
        "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
        "TELEGRAM_API_URL": telegram,
        "SELLERPULSE_LOG_LEVEL": "INFO",  # its "delivery started" line says it is up
    }
    parts.append(group.start("bot", [*sp, "bot"], bot_env))
    _wait_log(parts[-1], "delivery started", check)
    for part in parts[1 : 1 + workers]:
        _wait_log(part, "started!", check)
    shown = make_url(db_url).render_as_string(hide_password=True)
    return State(prefect_api, api, telegram, shown, prefect_db, parts)


def run_cluster(
    settings: Settings, *, workers: int, ports: Ports, prefect_database: str | None, state_file: Path | None
) -> int:
    stop = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    state_path = state_file or settings.sellerpulse_data_dir / "cluster" / "state.json"
    logs = settings.sellerpulse_data_dir / "cluster" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    group = Group(logs, pids=state_path.with_suffix(".pids"))
    try:
        state = start(settings, workers=workers, ports=ports, prefect_database=prefect_database, group=group)
        state_path.parent.mkdir(parents=True, exist_ok=True)
        state_path.write_text(json.dumps(asdict(state), indent=2))
        print(f"cluster up: Prefect UI {state.prefect_api.removesuffix('/api')}, API {state.api}, "
              f"Telegram stand-in {state.telegram}; {workers} worker(s); state {state_path}", flush=True)  # fmt: skip
        for part in state.parts:
            print(f"  {part.name:<15} pid {part.pid:<8} {part.url or ''}  log {part.log}", flush=True)
        print("Ctrl-C stops everything it started", flush=True)
        reported: set[int] = set()
        while not stop:
            for part, code in group.exited():
                if part.pid not in reported:
                    reported.add(part.pid)
                    print(f"{part.name} (pid {part.pid}) exited with code {code}: not restarted", flush=True)
            time.sleep(0.5)
        print("stopping", flush=True)
    finally:
        group.stop()
        state_path.unlink(missing_ok=True)
        state_path.with_suffix(".pids").unlink(missing_ok=True)
    print("stopped", flush=True)
    return 0


def wait_for_state(path: Path, proc: subprocess.Popen[Any], *, timeout: float) -> State:
    """The state a `sellerpulse cluster` process writes once every part is up."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"the cluster exited at start-up (code {proc.returncode})")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the cluster was not up within {timeout:.0f} s")
        time.sleep(0.5)
    return read_state(path)


def free_ports() -> Ports:
    return Ports(free_port(), free_port(), free_port())
