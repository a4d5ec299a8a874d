"""Where the CPU went during a load run (Linux /proc; no figures elsewhere).

On a small machine the load generator, the API and PostgreSQL share the cores, and anything
else running steals from them: requests/s and latencies alone cannot tell a slower poll from
a busier machine. CPU per request can, mostly; and the CPU taken by other processes during
the run says how much to trust the latencies.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (0 once it is gone)."""
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def children(pid: int) -> list[int]:
    """Direct child processes (uvicorn's workers)."""
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
    return found


def machine_busy() -> float:
    """CPU seconds the whole machine has spent not idle."""
    values = [int(x) for x in (PROC / "stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / TICK  # all but idle and iowait


def generator_cpu() -> float:
    """This process (the httpx generator, or waiting for wrk) and its waited-for children (wrk)."""
    own, waited = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + waited.ru_utime + waited.ru_stime


@dataclass(frozen=True)
class CpuUse:
    api: float  # CPU seconds of the API's processes
    postgres: float | None  # of the PostgreSQL backends serving them (None: not on this machine)
    generator: float  # of the load generator (wrk, or this process's httpx client)
    others: float  # of everything else on the machine
    seconds: float  # wall time of the measurement


class CpuMeter:
    """The CPU of `api_pids`, of `backend_pids()` (PostgreSQL backends on this machine, asked
    again at the end so connections opened during the run count; None: the server is
    elsewhere), of the generator and of the whole machine, across a `with` block."""

    def __init__(self, api_pids: Iterable[int], backend_pids: Callable[[], list[int]] | None) -> None:
        self.api_pids = list(api_pids)
        self.backend_pids = backend_pids
        self.use: CpuUse | None = None  # stays None without /proc

    def __enter__(self) -> CpuMeter:
        if PROC.joinpath("stat").exists():
            self._backends = {pid: process_cpu(pid) for pid in self._backend_pids()}
            self._api = sum(process_cpu(pid) for pid in self.api_pids)
            self._generator = generator_cpu()
            self._busy = machine_busy()
            self._t0 = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        if not hasattr(self, "_t0"):
            return
        backends = set(self._backends) | set(self._backend_pids())
        pg = sum(max(0.0, process_cpu(pid) - self._backends.get(pid, 0.0)) for pid in backends)
        api = sum(process_cpu(pid) for pid in self.api_pids) - self._api
        generator = generator_cpu() - self._generator
        others = machine_busy() - self._busy - api - pg - generator
        postgres = pg if self.backend_pids is not None else None
        self.use = CpuUse(api, postgres, generator, max(0.0, others), time.monotonic() - self._t0)

    def _backend_pids(self) -> list[int]:
        return self.backend_pids() if self.backend_pids is not None else []
