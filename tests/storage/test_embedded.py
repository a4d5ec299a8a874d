"""The embedded default: no DATABASE_URL, a pgserver in the data dir shared by processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _cli_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "TEST_DATABASE_URL"}}
    env["SELLERPULSE_DATA_DIR"] = str(data_dir)
    return env


def _sellerpulse(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sellerpulse.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def embedded_dir(tmp_path: Path) -> Path:
    # Short path: PostgreSQL's unix socket path is limited to ~100 bytes.
    return tmp_path


def test_db_upgrade_creates_the_embedded_database_and_processes_share_it(embedded_dir: Path) -> None:
    env = _cli_env(embedded_dir)
    up = _sellerpulse("db", "upgrade", env=env)
    out, err = up.communicate(timeout=120)
    assert up.returncode == 0, err
    assert "(embedded)" in out
    assert (embedded_dir / "postgres" / "PG_VERSION").exists()

    first = _sellerpulse("db", "status", env=env)
    second = _sellerpulse("db", "status", env=env)
    results = [p.communicate(timeout=120) + (p.returncode,) for p in (first, second)]
    for out, err, code in results:
        assert code == 0, err
        assert "the schema is up to date" in out
        assert "embedded: yes" in out
    # The last process to leave stopped the server cleanly: no stale postmaster.pid.
    assert not (embedded_dir / "postgres" / "postmaster.pid").exists()


def test_status_on_an_empty_database_says_what_to_run(embedded_dir: Path) -> None:
    status = _sellerpulse("db", "status", env=_cli_env(embedded_dir))
    out, err = status.communicate(timeout=120)
    assert status.returncode == 1, err
    assert "sellerpulse db upgrade" in out, err


def test_bad_setting_stops_start_up_naming_it(embedded_dir: Path) -> None:
    env = _cli_env(embedded_dir) | {"WB_STATISTICS_URL": "not a url"}
    proc = _sellerpulse("db", "status", env=env)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "WB_STATISTICS_URL" in err
    assert "Traceback" not in err
