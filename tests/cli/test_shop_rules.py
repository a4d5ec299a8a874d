"""The rules behind the shop commands, tested directly (no subprocess): names, tokens, pause and
resume, reconnecting the right account, the summary artifact, the zombie automation."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from connectors.allegro.auth import TokenPair
from flows.connect import LoginRefused, store_login
from flows.summary import summary_key, sync_summary
from sellerpulse.settings import load_settings
from storage.history import history_status
from storage.models import Notification, Shop
from storage.people import register_person, remove_shop
from storage.shops import (
    CannotResume,
    create_shop,
    pause_shop,
    resume_shop,
    same_name,
    shop_with_wb_token,
)
from storage.sync_state import RunCounts, set_cursor, start_run
from tasks.context import StreamReport


def _jwt(user: str) -> str:
    body = base64.urlsafe_b64encode(json.dumps({"user_name": user}).encode()).decode().rstrip("=")
    return f"e30.{body}.sig"


def _pair(user: str) -> TokenPair:
    return TokenPair(
        access_token=SecretStr(_jwt(user)),
        refresh_token=SecretStr("r-" + user),
        expires_at=datetime.now(UTC) + timedelta(hours=12),
        expires_in=43199,
    )


def test_names_tokens_and_pausing(session: Session) -> None:
    ann, _ = register_person(session, telegram_id=1, profile={})
    bob, _ = register_person(session, telegram_id=2, profile={})
    shop = create_shop(session, marketplace="wb", name="Main", credentials={"token": "t-1"}, owner_id=ann.id)

    assert same_name(session, name="  MAIN ", person_ids=[ann.id]).id == shop.id
    assert same_name(session, name="Main", person_ids=[bob.id]) is None  # per owner, not per install
    assert same_name(session, name="Main", person_ids=[ann.id], exclude_shop_id=shop.id) is None
    assert shop_with_wb_token(session, token="t-1").id == shop.id
    assert shop_with_wb_token(session, token="t-2") is None

    assert pause_shop(session, shop=shop, reason="paused") and shop.credentials is not None
    assert resume_shop(session, shop=shop) and shop.status == "active"
    remove_shop(session, shop=shop, purge=False, reason="removed by the operator")
    with pytest.raises(CannotResume, match="set-token"):
        resume_shop(session, shop=shop)
    shop.status = "needs_reauth"
    with pytest.raises(CannotResume, match="reconnect"):
        resume_shop(session, shop=shop)


def test_a_reconnect_must_be_the_same_allegro_account(clean_engine: Engine) -> None:
    with Session(clean_engine) as s, s.begin():
        register_person(s, telegram_id=3, profile={})
    shop_id = store_login(clean_engine, pair=_pair("seller-a"), name="A", owner_telegram_id=3)
    with pytest.raises(LoginRefused, match="another Allegro account"):
        store_login(clean_engine, pair=_pair("seller-b"), name="A", shop_id=shop_id)
    with Session(clean_engine) as s, s.begin():
        pause_shop(s, shop=s.get(Shop, shop_id), reason="paused by the operator")
    assert store_login(clean_engine, pair=_pair("seller-a"), name="A", shop_id=shop_id) == shop_id
    with Session(clean_engine) as s:
        assert s.get(Shop, shop_id).status == "disabled"  # a new login does not un-pause it


def test_the_sync_summary_has_retries_cursors_and_notifications(clean_engine: Engine) -> None:
    with Session(clean_engine) as s, s.begin():
        shop = create_shop(s, marketplace="wb", name="Main Shop", credentials={"token": "t"})
        set_cursor(s, shop_id=shop.id, stream="wb_orders", value={"last_change": "2026-11-30T10:00:00+00:00"})
        shop_id = shop.id
    since = datetime.now(UTC) - timedelta(seconds=1)
    for _ in range(3):  # two retries, then the attempt that passed
        start_run(clean_engine, shop_id=shop_id, stream="wb_orders", flow_run_id="run-1")
    with Session(clean_engine) as s, s.begin():
        s.add(Notification(shop_id=shop_id, kind="new_order", dedupe_key="x-1", payload={}))
    report = StreamReport("wb_orders", counts=RunCounts(fetched=5, inserted=5))
    text = sync_summary(clean_engine, shop_id=shop_id, title="t", reports=[report], flow_run_id="run-1", since=since)
    assert "| wb_orders | success | 5 | 5 |" in text
    assert "**Retries**: wb_orders 2" in text
    assert "**Notifications created**: 1" in text
    assert '| wb_orders | `{"last_change":"2026-11-30T10:00:00+00:00"}` |' in text
    assert summary_key("sync", shop_id, "Main Shop") == f"sync-summary-main-shop-{shop_id}"
    with Session(clean_engine) as s:
        assert history_status(s, shop_ids=[shop_id]) == {shop_id: False}  # no first sync yet


def test_the_zombie_automation_and_its_settings() -> None:
    from flows.zombies import AUTOMATION_NAME, heartbeat_env, zombie_automation

    settings = load_settings(flow_heartbeat_seconds=45, zombie_after_seconds=120, sellerpulse_default_owner="")
    assert settings.sellerpulse_default_owner is None  # an empty line in .env is "not set"
    automation = zombie_automation(settings)
    assert automation.name == AUTOMATION_NAME
    trigger = automation.trigger
    assert trigger.posture == "Proactive" and trigger.within == timedelta(seconds=120)
    # From a heartbeat, or from Pending/Running (a worker that dies while the run starts has
    # sent none yet), a heartbeat or a final state is expected within the window.
    started = {"prefect.flow-run.Pending", "prefect.flow-run.Running"}
    assert trigger.after == {"prefect.flow-run.heartbeat", *started}
    assert {"prefect.flow-run.heartbeat", "prefect.flow-run.Completed", *started} <= trigger.expect
    assert automation.actions[0].state == "CRASHED"
    assert heartbeat_env(settings) == {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "45"}
    with pytest.raises(Exception, match="ZOMBIE_AFTER_SECONDS"):
        load_settings(flow_heartbeat_seconds=60, zombie_after_seconds=60)
