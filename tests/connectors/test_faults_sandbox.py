"""Faults on: truncated bodies, resets, 5xx and 429 storms end in the same data; no
secret ever reaches a log line or an exception."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from connectors import errors
from connectors.http import Timeouts
from tests.connectors.sandbox_harness import make_sandbox

SINCE = datetime(2026, 11, 1, tzinfo=UTC)
WB_FAULTS = "wb-statistics:truncate=0.25,reset=0.2,5xx=0.1,429=0.1;wb-feedbacks:truncate=0.3,reset=0.2"


async def test_truncated_json_and_resets_are_retried_to_the_same_data() -> None:
    sb = make_sandbox(scenario="tiny:wb_orders=200", rate_limits=False, wb_row_cap=23, faults=WB_FAULTS)
    async with sb.wb() as wb:
        orders = {o.srid: o async for p in wb.iter_orders(sb.wb_token(), SINCE) for o in p.items}
        reviews = {r.id async for p in wb.iter_feedbacks(sb.wb_token(), take=7) for r in p.items}
        reviews |= {r.id async for p in wb.iter_feedback_archive(sb.wb_token(), take=7) for r in p.items}
    assert set(orders) == set(sb.world.wb_orders("wb1"))
    assert reviews == set(sb.world.wb_reviews("wb1"))
    faults = {r.fault for r in sb.requests("wb-statistics")} | {r.fault for r in sb.requests("wb-feedbacks")}
    assert {"truncate", "reset", "5xx", "429"} <= faults


async def test_read_timeouts_are_retried() -> None:
    sb = make_sandbox(scenario="tiny", rate_limits=False, faults="wb-content:timeout=0.4,slow=0.3", slow_seconds=0.05)
    async with sb.wb(timeouts=Timeouts(connect=1, read=0.2)) as wb:
        cards = [c async for p in wb.iter_cards(sb.wb_token(), limit=1) for c in p.items]
    assert len(cards) == len(sb.world.wb["wb1"].products)
    assert "timeout" in {r.fault for r in sb.requests("wb-content")}


async def test_retries_give_up_with_a_transient_error_not_a_credentials_one() -> None:
    sb = make_sandbox(scenario="tiny", rate_limits=False, faults="wb-statistics:5xx=1")
    async with sb.wb() as wb:
        with pytest.raises(errors.ServerError) as info:
            [p async for p in wb.iter_orders(sb.wb_token(), SINCE)]
    assert isinstance(info.value, errors.TransientError)
    assert len(sb.requests("wb-statistics")) == 8  # the configured cap, then stop


async def test_no_secret_in_logs_or_exceptions(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sb = make_sandbox(
        scenario="tiny",
        rate_limits=False,
        faults="wb-statistics:truncate=0.3,reset=0.3,5xx=0.2;allegro-auth:reset=0.3,5xx=0.3",
    )
    wb_token = sb.wb_token()
    wrong_category = sb.world.mint_wb_token("wb1", ["content"])
    pair = sb.allegro_pair()
    secrets = [wb_token, wrong_category, pair.access_token, pair.refresh_token, sb.world.client_secret]
    raised: list[BaseException] = []
    async with sb.wb() as wb, sb.auth() as auth, sb.allegro() as api:
        [p async for p in wb.iter_orders(wb_token, SINCE)]
        try:
            [p async for p in wb.iter_orders(wrong_category, SINCE)]
        except errors.CredentialsRejected as exc:
            raised.append(exc)
        fresh = await auth.refresh(pair.refresh_token)
        secrets += [fresh.access_token.get_secret_value(), fresh.refresh_token.get_secret_value()]
        for attempt in (lambda: auth.refresh(pair.refresh_token), lambda: api.event_stats(pair.access_token)):
            sb.world.advance(61)
            try:
                await attempt()
            except errors.ConnectorError as exc:
                raised.append(exc)
        device = await auth.start_device_flow()
        secrets.append(device.device_code.get_secret_value())
        texts = [repr(fresh), repr(device), str(fresh)]
    assert len(raised) == 3 and "retry" in caplog.text
    assert "'Authorization': '[redacted]'" in caplog.text  # headers are logged, secrets are not
    for exc in raised:
        chain: BaseException | None = exc
        while chain is not None:
            texts += [str(chain), repr(chain)]
            chain = chain.__cause__ or chain.__context__
    texts.append(caplog.text)
    leaks = [s for s in secrets for t in texts if s in t]
    assert leaks == []
