"""Where a sync-batch run's start-up time goes, from a real run's records.

Per run: the Prefect server's states (Scheduled, Pending, Running; flow_run_state) and the
marks the run logs once its first stream begins (flows.startup: process start, imports, the
flow's own set-up), lined up on one clock (the machine's: server and runs share it here).
"""

from __future__ import annotations

import statistics
from collections import defaultdict

from sqlalchemy import create_engine, text

# Start-up phases of a sync-batch run, in order: (name, from mark, to mark). The marks are the
# Prefect server's states (scheduled, pending, running) and the flow's own (flows.startup).
PHASES = [
    ("queued (until a worker takes it)", "scheduled", "pending"),
    ("worker starts the process", "pending", "process"),
    ("interpreter, Prefect, flow run from the API", "process", "flows_import"),
    ("  of which: until the pull step (interpreter, Prefect's imports, API reads)", "process", "pull_step"),
    ("  of which: the pull step", "pull_step", "pulled"),
    ("  of which: Prefect until our first import", "pulled", "flows_import"),
    ("imports of the flows' code", "flows_import", "flows_loaded"),
    ("flow engine until Running", "flows_loaded", "running"),
    ("engine until the flow's body", "running", "flow_body"),
    ("schema check", "flow_body", "schema_checked"),
    ("shops' marketplaces looked up", "schema_checked", "shops_looked_up"),
    ("first shop's lease", "shops_looked_up", "first_lease"),
    ("first shop's set-up until its first stream", "first_lease", "first_stream"),
]


def startup_phases(prefect_url: str) -> tuple[dict[str, float], int]:
    """Median seconds per start-up phase over the sync-batch runs that logged their phases
    (flows.startup), and how many did."""
    from flows.startup import PREFIX, parse

    prefect = create_engine(prefect_url)
    with prefect.connect() as conn:
        states = conn.execute(
            text(
                "SELECT s.flow_run_id::text, lower(s.type::text), min(s.timestamp) FROM flow_run_state s "
                "JOIN flow_run f ON f.id = s.flow_run_id WHERE f.name LIKE 'sync-batch-%' "
                "AND s.type IN ('SCHEDULED', 'PENDING', 'RUNNING') GROUP BY 1, 2"
            )
        ).all()
        # Prefect's own lines in the run's log: when the pull step began and ended.
        prefect_lines = conn.execute(
            text(
                "SELECT flow_run_id::text, min(timestamp) FILTER (WHERE message LIKE 'Running % pull step%'), "
                "min(timestamp) FILTER (WHERE message LIKE 'All deployment steps completed%') FROM log "
                "WHERE flow_run_id IS NOT NULL GROUP BY 1"
            )
        ).all()
        logged = conn.execute(
            text("SELECT flow_run_id::text, message FROM log WHERE message LIKE :p"), {"p": f"{PREFIX}:%"}
        ).all()
    prefect.dispose()
    marks: dict[str, dict[str, float]] = defaultdict(dict)
    for run_id, kind, at in states:
        marks[run_id][kind] = at.timestamp()
    for run_id, pull, pulled in prefect_lines:
        if run_id in marks and pull is not None and pulled is not None:
            marks[run_id].update(pull_step=pull.timestamp(), pulled=pulled.timestamp())
    per_phase: dict[str, list[float]] = defaultdict(list)
    counted = 0
    for run_id, message in logged:
        if run_id not in marks:  # another flow's run (read-wb-feeds logs its phases too)
            continue
        counted += 1
        run = {**marks.get(run_id, {}), **parse(message)}
        for name, a, b in PHASES:
            if a in run and b in run:
                per_phase[name].append(run[b] - run[a])
        if "pending" in run and "first_stream" in run:
            per_phase["Pending to first stream"].append(run["first_stream"] - run["pending"])
    return {k: statistics.median(v) for k, v in per_phase.items()}, counted
