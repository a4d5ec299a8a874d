"""Realistic serving: per-request latency per host, and held requests never hold up others."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import httpx
import pytest

from sandbox.latency import LatencySpecError, parse_latency
from tests.sandbox.conftest import ALLEGRO_ACCEPT, allegro_headers, client_for, served_sandbox

LISTING = "/allegro-api/order/checkout-forms"


def test_parse_latency_per_host_and_everywhere() -> None:
    assert parse_latency(None) == {} and parse_latency(" ") == {}
    assert parse_latency("allegro-api=150, wb-statistics=400") == {"allegro-api": 150.0, "wb-statistics": 400.0}
    assert parse_latency("*=80") == {"*": 80.0}


@pytest.mark.parametrize("spec", ["allegro-api", "nohost=10", "allegro-api=fast", "allegro-api=-1", "*=600000"])
def test_bad_latency_specs(spec: str) -> None:
    with pytest.raises(LatencySpecError):
        parse_latency(spec)


async def test_latency_holds_requests_concurrently_and_is_switched_by_the_operator(make_app) -> None:
    app = make_app(scenario="tiny")
    world = app.state.world
    async with client_for(app) as c:
        assert (await c.get("/_sandbox/latency")).json()["spec"] == ""  # off by default
        bad = await c.put("/_sandbox/latency", json={"spec": "allegro-api=soon"})
        assert bad.status_code == 400 and "not a number" in bad.json()["error"]
        put = await c.put("/_sandbox/latency", json={"spec": "allegro-api=400"})
        assert put.status_code == 200 and put.json()["ms"] == {"allegro-api": 400.0}
        headers = allegro_headers(world)
        pages = await asyncio.gather(
            *(c.get(LISTING, params={"offset": str(o), "limit": "10"}, headers=headers) for o in range(0, 60, 10))
        )
        assert [p.status_code for p in pages] == [200] * 6
        # All six were held at once: one request's wait did not delay the next one's start.
        report = (await c.get("/_sandbox/latency")).json()
        assert report["peak_held"] == 6 and report["held"] == 0
        # Other hosts are not delayed; an empty spec switches it off.
        assert (await c.put("/_sandbox/latency", json={"spec": ""})).json()["ms"] == {}
        assert (await c.get("/_sandbox/info")).json()["latency"] == ""


def test_cli_serves_with_latency_over_a_socket() -> None:
    """The real entry point: `--latency` is applied, and concurrent requests are held together."""
    options = ("--scenario", "tiny", "--speed", "0", "--latency", "allegro-api=500", "--no-rate-limits")
    with served_sandbox(*options, until="ALLEGRO_ACCESS_TOKEN_ALLEGRO1") as (env, base):
        headers = {
            "Authorization": f"Bearer {env['ALLEGRO_ACCESS_TOKEN_ALLEGRO1']}",
            "Accept": ALLEGRO_ACCEPT,
        }

        async def fetch_four() -> list[int]:
            async with httpx.AsyncClient(base_url=env["ALLEGRO_API_URL"], headers=headers, timeout=30) as c:
                answers = await asyncio.gather(
                    *(c.get("/order/checkout-forms", params={"offset": str(o), "limit": "5"}) for o in (0, 5, 10, 15))
                )
            return [a.status_code for a in answers]

        assert asyncio.run(fetch_four()) == [200] * 4
        report = httpx.get(base + "/_sandbox/latency").json()
        assert report["ms"] == {"allegro-api": 500.0} and report["peak_held"] == 4
        bad = subprocess.run(
            [sys.executable, "-m", "sandbox", "--latency", "allegro-api=x"], capture_output=True, text=True, timeout=60
        )
        assert bad.returncode == 2 and "not a number" in bad.stderr and "Traceback" not in bad.stderr
