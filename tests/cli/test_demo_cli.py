"""`sellerpulse demo` in its own data dir, never a real install's; it starts the bot API, prints a
database URL psql takes, and no process it starts has Prefect's telemetry on (issue 13, point 8;
issue 11, part 6). One real demo: it starts a Prefect server, so this test takes a while."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from flows import demo_bot
from flows.prefect_server import free_port
from storage.models import Shop
from tests.cli.conftest import SELLERPULSE

pytestmark = pytest.mark.flows

READY = "Ctrl-C stops everything."


def _read_until_ready(proc: subprocess.Popen[str], deadline: float) -> str:
    out = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            break
        out.append(line)
        if READY in line:
            return "".join(out)
    raise AssertionError("the demo did not get ready:\n" + "".join(out))


def _telemetry_of(pid: int) -> tuple[str | None, str | None]:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    env = dict(item.decode(errors="replace").partition("=")[::2] for item in environ if b"=" in item)
    analytics = env.get("PREFECT_SERVER_ANALYTICS_ENABLED")
    return env.get("DO_NOT_TRACK"), analytics.lower() if analytics else None


def test_the_demo_keeps_to_its_own_data_dir(tmp_path: Path, clean_engine: Engine, database_url: str) -> None:
    real = tmp_path / "real-install"
    real.mkdir()
    (real / "secret.key").write_text("the real install's key")
    demo_dir = tmp_path / "demo"
    demo_dir.mkdir()
    (demo_dir / "left-over").write_text("from an older demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DO_NOT_TRACK"))}
    env.update(
        {
            # A real install: its data dir, its database (the test database), its Prefect server.
            "SELLERPULSE_DATA_DIR": str(real),
            "DATABASE_URL": database_url,
            "PREFECT_API_URL": "http://127.0.0.1:9/api",
            "SYNC_INTERVAL_SECONDS": "3600",
        }
    )
    api_port = free_port()
    args = ["demo", "--data-dir", str(demo_dir), "--reset", "--speed", "0", "--scenario", "tiny"]
    args += ["--api-port", str(api_port), "--prefect-port", str(free_port()), "--sandbox-port", str(free_port())]
    proc = subprocess.Popen(
        [SELLERPULSE, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        printed = _read_until_ready(proc, time.monotonic() + 240)
        assert f"Data dir        {demo_dir}" in printed
        assert not (demo_dir / "left-over").exists()  # --reset

        # The bot API, with the key printed for the bot, and its docs.
        api = f"http://127.0.0.1:{api_port}"
        assert f"Bot API         {api}/docs" in printed
        key = re.search(r"X-API-Key: (\S+);", printed).group(1)
        # A generous timeout: on a loaded machine the API's first answer (a cold worker) took over
        # httpx's default 5 s; what is checked is the answer, not how fast it came.
        shops = httpx.get(
            f"{api}/api/v1/shops", params={"telegram_id": demo_bot.DEMO_USER}, headers={"X-API-Key": key}, timeout=30
        )
        assert shops.status_code == 200, shops.text
        assert sorted(s["name"] for s in shops.json()["items"]) == ["allegro1", "wb1"]  # the demo owner's
        assert httpx.get(f"{api}/docs-assets/swagger-ui-bundle.js", timeout=30).status_code == 200

        # The bot runs against the Telegram stand-in, for the demo owner.
        assert "Telegram bot    the stand-in at http://127.0.0.1:" in printed
        assert "delivery started" in (demo_dir / "demo-bot.log").read_text()

        # The database URL as psql takes it (psycopg parses it with the same libpq).
        url = re.search(r'psql "([^"]+)"', printed).group(1)
        assert "+psycopg" not in url
        with psycopg.connect(url) as conn:
            assert conn.execute("select count(*) from shops").fetchone() == (2,)

        # Telemetry off in every process it started (the Prefect server among them).
        children = psutil.Process(proc.pid).children(recursive=True)
        assert any("prefect" in " ".join(c.cmdline()) and "server" in c.cmdline() for c in children)
        assert {_telemetry_of(c.pid) for c in children} == {("1", "false")}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    # The real install: its data dir as it was, its database without demo shops.
    assert sorted(p.name for p in real.iterdir()) == ["secret.key"]
    with Session(clean_engine) as s:
        assert s.scalars(select(Shop)).all() == []
    assert (demo_dir / "postgres").is_dir() and (demo_dir / "prefect").is_dir()
