"""deployments/: what no Docker engine here can run is at least held to what it must do
(issue 16): the Prefect database is created, nothing is installed at start (no network), dev
packages stay out, settings come from one file, the workers' heartbeat is the automation's."""

from __future__ import annotations

from pathlib import Path

import yaml

DEPLOYMENTS = Path(__file__).resolve().parents[2] / "deployments"


def _compose() -> dict:
    return yaml.safe_load((DEPLOYMENTS / "docker-compose.yml").read_text())


def test_the_image_installs_without_dev_packages_and_starts_without_installing() -> None:
    dockerfile = (DEPLOYMENTS / "Dockerfile").read_text()
    syncs = [line for line in dockerfile.splitlines() if "uv sync" in line]
    assert syncs and all("--frozen" in line and "--no-dev" in line for line in syncs)
    assert "UV_NO_SYNC=1" in dockerfile and "/app/.venv/bin:$PATH" in dockerfile
    for name, service in _compose()["services"].items():
        command = service.get("command", "")
        assert "uv " not in command and "pip " not in command, f"{name} would install at start: {command}"


def test_prefect_gets_its_own_database_on_the_first_start() -> None:
    services = _compose()["services"]
    init = [v for v in services["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in v]
    assert init and init[0].split(":")[0] == "./initdb"
    sql = "".join(p.read_text() for p in (DEPLOYMENTS / "initdb").glob("*.sql"))
    assert "CREATE DATABASE prefect" in sql
    assert services["prefect"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"].endswith("/prefect")


def test_settings_come_from_one_file_and_runs_beat_as_the_automation_expects() -> None:
    services = _compose()["services"]
    files = {name: s.get("env_file") for name, s in services.items() if s.get("image") == "sellerpulse:local"}
    assert set(files.values()) <= {".env", None} and ".env" in files.values()  # deployments/.env
    worker = services["worker"]
    assert worker["environment"]["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "${FLOW_HEARTBEAT_SECONDS:-60}"
    setup = services["setup"]["command"]
    assert "sellerpulse db upgrade" in setup and "sellerpulse prefect-setup" in setup and "deploy --all" in setup
    assert worker["depends_on"]["setup"]["condition"] == "service_completed_successfully"
