"""The embedded default: no DATABASE_URL, a pgserver in the data dir shared by processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
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
def embedded_dir() -> Iterator[Path]:
    """A data dir outside pytest's temporary root: pytest resets that root to mode 0700 whenever
    a session starts (another test run on the machine), and PostgreSQL, which pgserver runs as
    its own user when we are root, must be able to walk the path. Short, too: PostgreSQL's unix
    socket path is limited to ~100 bytes."""
    path = Path(tempfile.mkdtemp(prefix="sp-embedded-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


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


def test_an_embedded_server_that_cannot_start_is_one_line_and_exit_1(embedded_dir: Path) -> None:
    (embedded_dir / "postgres").write_text("not a directory")  # what PostgreSQL's files would be
    status = _sellerpulse("db", "status", env=_cli_env(embedded_dir))
    out, err = status.communicate(timeout=120)
    assert status.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"sellerpulse: cannot start the embedded PostgreSQL in {embedded_dir / 'postgres'}: ")
    assert lines[0].endswith("Not a directory"), lines[0]  # why, in initdb's words
