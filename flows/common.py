"""Small helpers the flows share: run names, the run id, the summary table."""

from __future__ import annotations

from datetime import timedelta

from prefect import runtime
from sqlalchemy.orm import Session

from storage.db import get_engine
from storage.models import Shop
from storage.reaping import reap, reap_dead_runs
from tasks.context import StreamReport, SyncContext


def shop_label(shop_id: int) -> tuple[str, str]:
    with Session(get_engine()) as session:
        shop = session.get(Shop, shop_id)
        return (shop.marketplace, shop.name) if shop else ("unknown", str(shop_id))


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")[:40] or "shop"


def flow_run_id() -> str | None:
    run_id = runtime.flow_run.id
    return str(run_id) if run_id else None


def summary_markdown(title: str, reports: list[StreamReport]) -> str:
    lines = [
        f"# {title}",
        "",
        "| stream | status | fetched | inserted | updated | unchanged | stale refused | requests | seconds |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in reports:
        c = r.counts
        lines.append(
            f"| {r.stream} | {r.status} | {c.fetched} | {c.inserted} | {c.updated} | {c.unchanged} | "
            f"{c.stale_refused} | {c.requests} | {r.seconds:.1f} |"
        )
    errors = [f"- **{r.stream}**: {r.error}" for r in reports if r.error]
    notes = sorted({f"- note: {r.note}" for r in reports if r.note})
    return "\n".join(lines + ([""] + errors if errors else []) + ([""] + notes if notes else []))


def reap_shop(ctx: SyncContext, session: Session | None = None) -> None:
    """Runs of this shop left `running` by a process that died are marked failed (and counted),
    in `session` (the caller's transaction) or a transaction of its own. Called once the shop's
    lease is taken (`ctx.lease`), before any run starts under it."""
    failing_after = timedelta(seconds=ctx.settings.sync_failing_after_seconds)
    if session is None:
        dead_runs = reap(ctx.engine, failing_after=failing_after, shop_id=ctx.shop.id)
    else:
        dead_runs = reap_dead_runs(session, failing_after=failing_after, shop_id=ctx.shop.id)
    for dead in dead_runs:
        ctx.log.warning("run %s (%s) of shop %s had crashed: marked failed", dead.run_id, dead.stream, ctx.shop.name)
