"""Sync control: runs started through the SyncLauncher, status scoped to the shop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from api.services import PrefectSyncLauncher
from api.services.sync import prefect_api_url
from connectors.timeutil import MSK
from connectors.wildberries.retention import oldest_statistics_day
from storage.models import SyncRun
from tests.api.conftest import Bot, person, shop

A, B = 31, 32


@pytest.fixture
def shops(db: Session) -> tuple[int, int]:
    return shop(db, owner=person(db, A)), shop(db, owner=person(db, B))


def test_start_sync_and_read_status(bot: Bot, db: Session, shops: tuple[int, int]) -> None:
    a, b = shops
    r = bot.post(f"/shops/{a}/sync", params={"telegram_id": A})
    assert r.status_code == 202, r.text
    run_id = r.json()["run_id"]
    db.add(SyncRun(shop_id=a, stream="wb_orders", status="running", flow_run_id=run_id))
    db.commit()
    status = bot.get(f"/shops/{a}/sync/{run_id}", params={"telegram_id": A}).json()
    assert status["state"] == "Scheduled" and not status["finished"]
    assert [s["stream"] for s in status["streams"]] == ["wb_orders"]
    # B cannot read A's run, not even through B's own shop.
    assert bot.get(f"/shops/{b}/sync/{run_id}", params={"telegram_id": B}).status_code == 404
    assert bot.get(f"/shops/{a}/sync/{run_id}", params={"telegram_id": B}).status_code == 404


def test_backfill_validates_dates(bot: Bot, shops: tuple[int, int]) -> None:
    a, _ = shops
    q = {"telegram_id": A}
    ok = bot.post(f"/shops/{a}/sync/backfill", params=q, json={"since": "2026-10-01", "streams": ["wb_orders"]})
    assert ok.status_code == 202 and ok.json()["kind"] == "backfill"
    assert (
        bot.post(f"/shops/{a}/sync/backfill", params=q, json={"since": "2026-10-02", "until": "2026-10-01"}).status_code
        == 422
    )
    assert bot.post(f"/shops/{a}/sync/backfill", params=q, json={"since": "yesterday"}).status_code == 422


def test_a_wb_backfill_beyond_90_days_says_what_it_will_read(bot: Bot, shops: tuple[int, int]) -> None:
    a, _ = shops
    q = {"telegram_id": A}
    today = datetime.now(UTC).astimezone(MSK).date()
    long_ago = bot.post(f"/shops/{a}/sync/backfill", params=q, json={"since": str(today - timedelta(days=200))})
    assert long_ago.status_code == 202
    [note] = long_ago.json()["notes"]
    assert "90 days" in note and str(oldest_statistics_day(datetime.now(UTC))) in note
    recent = bot.post(f"/shops/{a}/sync/backfill", params=q, json={"since": str(today - timedelta(days=30))})
    assert recent.json()["notes"] == []
    reviews_only = {"since": str(today - timedelta(days=200)), "streams": ["reviews"]}
    assert bot.post(f"/shops/{a}/sync/backfill", params=q, json=reviews_only).json()["notes"] == []


def test_disabled_shop_cannot_sync(bot: Bot, shops: tuple[int, int]) -> None:
    a, _ = shops
    bot.delete(f"/shops/{a}", params={"telegram_id": A})
    r = bot.post(f"/shops/{a}/sync", params={"telegram_id": A})
    assert r.status_code == 409 and r.json()["error"]["code"] == "shop_not_active"


def test_without_prefect_server_the_default_launcher_says_503(
    bot: Bot, app: FastAPI, shops: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    if prefect_api_url():
        pytest.skip("a Prefect server is configured in this environment")
    app.state.sync_launcher = PrefectSyncLauncher()
    a, _ = shops
    r = bot.post(f"/shops/{a}/sync", params={"telegram_id": A})
    assert r.status_code == 503 and "Prefect" in r.json()["error"]["message"]
