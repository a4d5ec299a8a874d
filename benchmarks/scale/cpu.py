"""CPU seconds of the cluster's processes, per part: load-insensitive figures beside the timings.

The sandbox runs in the benchmark's own process (threads of it): its CPU is that process's,
less the sampler thread's (the main thread sleeps through the window).

Every live process under the `sellerpulse cluster` process counts its own CPU and that of its
children it has already waited for (a worker's finished flow-run processes), so a flow run that
ended between two samples is not lost and none is counted twice. Each process is put under the
part it descends from: the Prefect server, the workers (with their flow runs), the rest.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import defaultdict
from pathlib import Path

import psutil


def _part(proc: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        line = " ".join(proc.cmdline())
        if "prefect server" in line or "prefect.server" in line:
            return "prefect_server"
        if "prefect worker" in line:
            return "workers"
    return "other"


def _seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def tree_cpu(root_pid: int) -> dict[str, float]:
    """CPU seconds so far per part of the cluster (its own process under "other")."""
    out: dict[str, float] = defaultdict(float)
    try:
        root = psutil.Process(root_pid)
        out["other"] += root.cpu_times().user + root.cpu_times().system
        tops = root.children()
    except psutil.Error:
        return dict(out)
    for top in tops:
        part = _part(top)
        with contextlib.suppress(psutil.Error):
            for proc in [top, *top.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    out[part] += _seconds(proc)
    return dict(out)


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after.get(k, 0.0) - before.get(k, 0.0) for k in set(before) | set(after)}


def thread_cpu(native_id: int) -> float:
    """CPU seconds of one thread of this process (utime + stime from /proc)."""
    try:
        fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sandbox_cpu(sampler: threading.Thread) -> float:
    """CPU seconds of this process so far (not its children), less the sampler thread's: the
    in-process sandbox's, while the main thread sleeps."""
    t = psutil.Process().cpu_times()
    return t.user + t.system - thread_cpu(sampler.native_id or 0)
