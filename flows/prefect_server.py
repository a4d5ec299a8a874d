"""A local Prefect server for single-machine installs and the demo, unless one is configured.

`PREFECT_API_URL` set: that server is used as it is. Unset: `prefect server start` runs as
a child process (its database in the sellerpulse data dir), and is stopped on exit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

from sellerpulse.errors import UserError
from sellerpulse.processes import free_port, stop

READY_TIMEOUT = 90.0


def configured_api_url() -> str | None:
    return PREFECT_API_URL.value() or None


def _wait_ready(url: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise UserError(f"the Prefect server exited at start-up (code {process.returncode}); see the log above")
        try:
            if httpx.get(f"{url}/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise UserError(f"the Prefect server did not answer within {READY_TIMEOUT:.0f} s")


@contextmanager
def prefect_server(data_dir: Path, *, port: int | None = None) -> Iterator[str]:
    """Yield the API URL of a running Prefect server, starting a local one if none is configured."""
    existing = configured_api_url()
    if existing:
        yield existing
        return
    port = port or free_port()
    home = data_dir / "prefect"
    home.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_API_URL": url,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_ready(url, process, time.monotonic() + READY_TIMEOUT)
        with temporary_settings(updates={PREFECT_API_URL: url, PREFECT_HOME: home}):
            os.environ["PREFECT_API_URL"] = url  # for child processes (flow runs served from here)
            yield url
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        stop(process, grace=15)
