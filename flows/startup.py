"""Where a flow-run process's start-up time goes: wall-clock marks, logged once per batch run.

A worker starts each sync-batch run as a process of its own (`python -m prefect.engine`).
Before the first shop is synced that process starts an interpreter, imports Prefect, reads
its flow run from the API, imports the flows' code, lets the flow engine set the run up, and
does the flow's own set-up. This module is imported first by the flows' code, so its import
time divides "before our code" from "our imports"; the flow then marks the later phases, and
`line()` is the one log line that says where the seconds went (benchmarks/scale reads it from
the run's log; an operator sees it in the UI).
"""

from __future__ import annotations

import time

import psutil

# When the flows' code began to be imported (everything before: interpreter, Prefect, engine).
IMPORTED_AT = time.time()
PREFIX = "start-up phases"

_marks: dict[str, float] = {}


def mark(name: str) -> None:
    """The first time `name` happens in this process (later calls keep the first)."""
    _marks.setdefault(name, time.time())


def process_started_at() -> float:
    return psutil.Process().create_time()


def phases() -> dict[str, float]:
    """Epoch seconds of each mark so far, in the order they happened, the process's start first."""
    found = {"process": process_started_at(), "flows_import": IMPORTED_AT, **_marks}
    return dict(sorted(found.items(), key=lambda kv: kv[1]))


def line() -> str:
    """`start-up phases: process=<epoch> flows_import=+1.23 ...`: each mark's seconds after the
    process started (the absolute start lets a reader line it up with the server's states)."""
    marks = phases()
    start = marks.pop("process")
    rest = " ".join(f"{k}=+{v - start:.2f}" for k, v in marks.items())
    return f"{PREFIX}: process={start:.3f} {rest}"


def parse(message: str) -> dict[str, float]:
    """The inverse of `line()`: epoch seconds per mark."""
    body = message.split(":", 1)[1].split()
    start = float(body[0].split("=", 1)[1])
    out = {"process": start}
    for item in body[1:]:
        name, value = item.split("=", 1)
        out[name] = start + float(value)
    return out
