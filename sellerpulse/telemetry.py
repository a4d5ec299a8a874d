"""Prefect's telemetry off in every process sellerpulse starts.

Prefect sends anonymous usage events from clients (off with `DO_NOT_TRACK`, read whenever an
event would be sent) and from its server (off with `PREFECT_SERVER_ANALYTICS_ENABLED=false`,
read when the server's settings load). Both are set in `os.environ` as soon as the `sellerpulse`
package is imported, before Prefect is, so every child process (a local Prefect server, served
flow runs, the demo's parts) inherits them. A self-hosted install needs no call home, and the
sandbox machines have no internet to call anyway.
"""

from __future__ import annotations

import os

TELEMETRY_OFF = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


def disable_prefect_telemetry() -> None:
    os.environ.update(TELEMETRY_OFF)
