"""`sellerpulse sync / refresh-tokens / shops list`: honest exit codes and output, no Prefect
server per command, freshness at a glance (issue 13, points 5-7)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from storage import leases
from storage.models import Shop
from storage.people import register_person
from storage.shops import create_shop


def _shops(engine: Engine, world) -> dict[str, int]:
    pair = world.allegro_pair("allegro1")
    with Session(engine) as s, s.begin():
        owner, _ = register_person(s, telegram_id=77, profile={"username": "ann"})
        ids = {
            "allegro": create_shop(
                s,
                marketplace="allegro",
                name="AL",
                credentials={"access_token": pair.access_token, "refresh_token": pair.refresh_token},
                token_expires_at=datetime.fromtimestamp(pair.access_expires, UTC),
                owner_id=owner.id,
            ).id,
            "rejected": create_shop(
                s, marketplace="wb", name="Bad", credentials={"token": "nope"}, owner_id=owner.id
            ).id,
            "busy": create_shop(s, marketplace="wb", name="Busy", credentials={"token": "x"}, owner_id=owner.id).id,
        }
    return ids


def test_sync_reports_each_stream_and_fails_when_a_shop_fails(
    cli, clean_engine: Engine, sandbox_on_a_port, tmp_path: Path
) -> None:
    ids = _shops(clean_engine, sandbox_on_a_port.world)

    # Another process syncs "Busy" meanwhile: this run skips it, and says so.
    busy = leases.take(clean_engine, shop_id=ids["busy"], kind="sync", seconds=600)
    assert busy is not None
    try:
        first = cli("sync", "--json")
    finally:
        leases.release(clean_engine, busy)
    assert first.code == 1, first  # "Bad"'s token is refused
    result = json.loads(first.out)
    by_shop = {s["shop"]: s for s in result["shops"]}
    assert result["ok"] is False and result["flow_run_id"] is None  # in this process, no Prefect run
    assert by_shop["AL"]["status"] == "success"
    allegro_streams = ["allegro_offers", "allegro_orders", "allegro_history", "allegro_returns"]
    assert [s["stream"] for s in by_shop["AL"]["streams"]] == allegro_streams
    assert sum(s["counts"]["inserted"] for s in by_shop["AL"]["streams"]) > 0
    assert by_shop["Bad"]["status"] == "failed" and "CredentialsRejected" in by_shop["Bad"]["streams"][0]["error"]
    assert by_shop["Busy"] == {
        "shop_id": ids["busy"],
        "shop": "Busy",
        "status": "skipped",
        "reason": "another sync of this shop is running",
        "streams": [],
    }
    # No Prefect server was started (one would have put its database in PREFECT_HOME).
    assert not (tmp_path / "prefect-home").exists() or not list((tmp_path / "prefect-home").glob("*.db"))

    again = cli("sync", "--shop", "AL")
    assert again.code == 0, again
    header, *rows = again.out.splitlines()
    assert header.split() == ["shop", "stream", "status", "fetched", "inserted", "updated", "error"]
    assert [r.split()[2:4] for r in rows if "allegro_" in r] == [[s, "success"] for s in allegro_streams]

    paused = cli("sync", "--shop", "Bad")  # marked broken by the first sync
    assert paused.code == 0 and "skipped" in paused.out and "shop is broken" in paused.out, paused

    listed = cli("shops", "list")
    assert listed.code == 0, listed
    al_line = next(line for line in listed.out.splitlines() if " AL " in line)
    assert "active" in al_line and "complete" in al_line and "77 @ann" in al_line
    assert "offers " in al_line and "orders " in al_line and " ago" in al_line
    bad_line = next(line for line in listed.out.splitlines() if " Bad " in line)
    assert "broken" in bad_line and "incomplete" in bad_line and "never" in bad_line


def test_refresh_tokens_reports_each_shop(cli, clean_engine: Engine, sandbox_on_a_port) -> None:
    ids = _shops(clean_engine, sandbox_on_a_port.world)
    with Session(clean_engine) as s, s.begin():
        soon = datetime.now(UTC) + timedelta(minutes=5)
        s.execute(update(Shop).where(Shop.id == ids["allegro"]).values(token_expires_at=soon))
    done = cli("refresh-tokens", "--json")
    assert done.code == 0, done
    assert [(o["shop"], o["status"], o["reason"]) for o in json.loads(done.out)["shops"]] == [
        ("AL", "success", "token refreshed")
    ]
    with Session(clean_engine) as s:
        assert s.get(Shop, ids["allegro"]).token_expires_at > soon
