"""Stopping a child process we started: SIGTERM, a grace period, then SIGKILL."""

from __future__ import annotations

import subprocess
from typing import Any


def stop(process: subprocess.Popen[Any], *, grace: float = 30.0) -> None:
    """Ask `process` to stop (SIGTERM), wait up to `grace` seconds, then kill it and reap it, so
    nothing we started outlives us and no zombie is left behind."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
