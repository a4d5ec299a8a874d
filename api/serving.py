"""The API as `sellerpulse api --workers N` serves it, in a subprocess: uvicorn on a loopback
port against a given database, yielded once it answers `/health/ready`.

One start-and-wait loop for everything that needs a real server (several workers, a database
that goes away, load): the API's tests (tests/api) and its benchmark (benchmarks/api).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from sellerpulse.processes import free_port, stop

READY_PATH = "/api/v1/health/ready"
# Two workers importing the app on a loaded 2-core machine took over a minute (the full suite).
READY_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class Served:
    url: str  # http://127.0.0.1:PORT
    pid: int  # uvicorn's main process (its workers are its children)
    log: Path  # the server's stdout and stderr


@contextmanager
def served_api(
    database_url: str,
    data_dir: Path,
    *,
    workers: int = 2,
    port: int | None = None,
    env: Mapping[str, str] = {},
    factory: str = "api.app:create_app",
) -> Iterator[Served]:
    """uvicorn serving `factory` (the app's; benchmarks.api.tail serves it wrapped in a timer)
    until the block ends; `env`: extra environment (settings such as API_POOL_SIZE). Raises
    RuntimeError, with the log's tail, when the server exits or does not become ready in time."""
    environ = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SELLERPULSE_DATA_DIR": str(data_dir),
        "SELLERPULSE_LOG_LEVEL": "WARNING",
        **env,
    }
    port = port or free_port()
    cmd = [sys.executable, "-m", "uvicorn", factory, "--factory", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "api.log"  # a file, not a pipe nobody reads: a full pipe would block the server
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=environ, stdout=out, stderr=subprocess.STDOUT)
    served = Served(url=f"http://127.0.0.1:{port}", pid=proc.pid, log=log)
    try:
        _wait_ready(proc, served)
        yield served
    finally:
        stop(proc)


def _wait_ready(proc: subprocess.Popen[bytes], served: Served) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        try:
            if httpx.get(served.url + READY_PATH, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited: {served.log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the API did not become ready: {served.log.read_text()[-2000:]}")
        time.sleep(0.1)
