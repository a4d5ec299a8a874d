"""CLI tests: the real `sellerpulse` entry point in a subprocess, against the test database and
the sandbox served on a local port (as an operator's machine would reach the marketplaces).

Each run costs a Python start-up (1-2 s, more with Prefect imported): tests group their
assertions so that a handful of runs cover a point.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from sqlalchemy import Engine

from sandbox import SandboxConfig
from sandbox.cli import URL_KEYS
from sandbox.world import World

SELLERPULSE = str(Path(sys.executable).with_name("sellerpulse"))


@dataclass
class Result:
    code: int
    out: str
    err: str

    def __str__(self) -> str:  # shown when an assertion fails
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


@dataclass
class Sandbox:
    url: str
    world: World


@pytest.fixture(scope="session")
def sandbox_on_a_port() -> Iterator[Sandbox]:
    from flows.demo import sandbox_server
    from flows.prefect_server import free_port

    config = replace(SandboxConfig(rate_limits=False), auto_approve=True)
    with sandbox_server(config, free_port()) as (url, world):
        yield Sandbox(url, world)


def cli_env(sandbox: Sandbox, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The test database and data dir (its secret key), the sandbox's hosts; no Prefect server
    anywhere (PREFECT_API_URL unset, and an ephemeral one refused), Prefect's home in tmp."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "WB_TOKEN", "SELLERPULSE_DEFAULT"))}
    world = sandbox.world
    env.update(
        {
            "PREFECT_HOME": str(tmp_path / "prefect-home"),
            "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false",
            "ALLEGRO_CLIENT_ID": world.client_id,
            "ALLEGRO_CLIENT_SECRET": world.client_secret,
            "TASK_RETRY_DELAYS": "0",
            "SELLERPULSE_LOG_LEVEL": "WARNING",
            **{key: f"{sandbox.url}/{host}" for host, key in URL_KEYS.items()},
        }
    )
    env.update(extra)
    return env


@pytest.fixture
def cli(sandbox_on_a_port: Sandbox, tmp_path: Path, clean_engine: Engine):
    """cli("shops", "list", stdin=..., env={...}) -> Result."""

    def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
        proc = subprocess.run(
            [SELLERPULSE, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=cli_env(sandbox_on_a_port, tmp_path, **(env or {})),
            timeout=timeout,
            stdin=None if stdin is not None else subprocess.DEVNULL,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run


def one_line_error(result: Result) -> str:
    """A user error: exactly one line on stderr, no traceback."""
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sellerpulse: "), str(result)
    assert "Traceback" not in result.err
    return lines[0]
