"""Child processes we start: a free port to give one, and stopping it (SIGTERM, a grace
period, then SIGKILL)."""

from __future__ import annotations

import socket
import subprocess
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, for a server we are about to start."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def stop(process: subprocess.Popen[Any], *, grace: float = 30.0) -> None:
    """Ask `process` to stop (SIGTERM), wait up to `grace` seconds, then kill it and reap it, so
    nothing we started outlives us and no zombie is left behind."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
