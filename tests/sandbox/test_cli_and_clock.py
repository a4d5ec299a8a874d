"""CLI wiring, the printed settings, a real server round trip; the clock."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import httpx
import pytest

from sandbox import cli
from sandbox.clock import SandboxClock
from tests.sandbox.conftest import ALLEGRO_ACCEPT, served_sandbox


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sellerpulse")
    cli.register(p.add_subparsers(dest="command"))
    return p


def test_register_adds_sandbox_with_run_default_and_operator_commands() -> None:
    args = parser().parse_args(
        [
            "sandbox",
            "--port",
            "9001",
            "--seed",
            "5",
            "--scenario",
            "tiny",
            "--speed",
            "2",
            "--faults",
            "*:5xx=0.1",
            "--no-rate-limits",
        ]
    )
    assert args.func is cli.run and args.port == 9001 and args.seed == 5 and args.no_rate_limits and args.speed == 2.0
    a = parser().parse_args(["sandbox", "approve", "ABC DEF GHI", "--url", "http://x:1", "--shop", "allegro1"])
    assert a.func is cli.approve and a.code == "ABC DEF GHI" and a.shop == "allegro1"
    d = parser().parse_args(["sandbox", "deny", "XYZ"])
    assert d.func is cli.deny
    assert parser().parse_args(["sandbox"]).allegro_token_requests is None
    assert parser().parse_args(["sandbox", "--allegro-token-requests", "40"]).allegro_token_requests == 40


def test_a_bad_token_life_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("0", "x"):
        with pytest.raises(SystemExit) as exit_info:
            parser().parse_args(["sandbox", "--allegro-token-requests", bad])
        assert exit_info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_settings_lines_cover_every_setting() -> None:
    lines = cli.settings_lines("http://127.0.0.1:8765/", {"ALLEGRO_CLIENT_ID": "id", "WB_TOKEN_WB1": "t"})
    keys = [line.split("=", 1)[0] for line in lines]
    assert keys[:7] == [
        "ALLEGRO_AUTH_URL",
        "ALLEGRO_API_URL",
        "WB_STATISTICS_URL",
        "WB_ANALYTICS_URL",
        "WB_FEEDBACKS_URL",
        "WB_CONTENT_URL",
        "WB_MARKETPLACE_URL",
    ]
    assert "WB_STATISTICS_URL=http://127.0.0.1:8765/wb-statistics" in lines


def test_operator_command_reports_unreachable_sandbox(capsys: pytest.CaptureFixture[str]) -> None:
    args = parser().parse_args(["sandbox", "approve", "CODE", "--url", "http://127.0.0.1:9"])
    assert args.func(args) == 2
    assert "not reachable" in capsys.readouterr().err


def test_bad_fault_spec_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    args = parser().parse_args(["sandbox", "--faults", "nowhere:429=1"])
    assert args.func(args) == 2


def test_real_server_prints_settings_and_approves(tmp_path) -> None:
    options = ("--scenario", "lively", "--speed", "0", "--allegro-token-requests", "2")
    with served_sandbox(*options, until="ALLEGRO_REFRESH_TOKEN_ALLEGRO2") as (env, base):
        assert {"WB_TOKEN_WB1", "WB_TOKEN_WB2", "ALLEGRO_ACCESS_TOKEN_ALLEGRO1", "ALLEGRO_CLIENT_SECRET"} <= set(env)
        assert env["ALLEGRO_AUTH_URL"].rsplit("/", 1)[0] == base
        d = httpx.post(
            env["ALLEGRO_AUTH_URL"] + "/auth/oauth/device",
            data={"client_id": env["ALLEGRO_CLIENT_ID"]},
            auth=(env["ALLEGRO_CLIENT_ID"], env["ALLEGRO_CLIENT_SECRET"]),
        ).json()
        args = parser().parse_args(["sandbox", "approve", d["user_code"], "--url", base, "--shop", "allegro2"])
        assert args.func(args) == 0
        tok = httpx.post(
            env["ALLEGRO_AUTH_URL"] + "/auth/oauth/token",
            data={"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": d["device_code"]},
            auth=(env["ALLEGRO_CLIENT_ID"], env["ALLEGRO_CLIENT_SECRET"]),
        )
        assert tok.status_code == 200
        rows = httpx.get(
            env["WB_STATISTICS_URL"] + "/api/v1/supplier/orders",
            params={"dateFrom": "2020-01-01"},
            headers={"Authorization": env["WB_TOKEN_WB1"]},
        ).json()
        assert len(rows) > 100
        # --allegro-token-requests 2: the new access token serves two API calls, then dies.
        headers = {"Authorization": f"Bearer {tok.json()['access_token']}", "Accept": ALLEGRO_ACCEPT}
        codes = [httpx.get(env["ALLEGRO_API_URL"] + "/order/event-stats", headers=headers).status_code for _ in "abc"]
        assert codes == [200, 200, 401]


def test_clock_speed_frozen_and_advance() -> None:
    ticks = iter([100.0, 100.0, 110.0, 110.0, 110.0])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = SandboxClock(start, speed=60.0, monotonic=lambda: next(ticks))
    assert clock.now() == start
    assert clock.epoch() == start.timestamp() + 600  # 10 real s at 60x
    clock.advance(5)
    assert clock.epoch() == start.timestamp() + 605
    with pytest.raises(ValueError):
        clock.advance(-1)
    frozen = SandboxClock(start, speed=0)
    assert frozen.now() == start


def test_a_fleet_scenario_has_as_many_shops_as_asked_each_with_rows_of_its_own() -> None:
    from sandbox.scenario import load_scenario

    fleet = load_scenario("fleet:wb_shops=3,allegro_shops=2")
    assert [s.name for s in fleet.wb_shops] == ["wb1", "wb2", "wb3"]
    assert [s.name for s in fleet.allegro_shops] == ["allegro1", "allegro2"]
    assert len({s.index for s in fleet.shops}) == 5  # the index seeds a shop's rows
    assert all(s.live for s in fleet.shops)
