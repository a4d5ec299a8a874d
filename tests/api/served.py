"""The API as `sellerpulse api --workers N` serves it: uvicorn in a subprocess, on a free
loopback port, against a given database. For tests of what only a real server shows
(several workers, a database that goes away, concurrency)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_api(database_url: str, data_dir: Path, *, workers: int = 2, **settings: str) -> Iterator[str]:
    """Yields the server's base URL once it answers; `settings`: extra environment (API_POOL_SIZE=...)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SELLERPULSE_DATA_DIR": str(data_dir),
        "SELLERPULSE_LOG_LEVEL": "WARNING",
        **settings,
    }
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "api.log"  # a file, not a pipe nobody reads: a full pipe would block the server
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/api/v1/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"the API exited: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("the API did not become ready")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
