"""The demo's own corner, set up before Prefect is imported (Prefect reads its home and API URL then).

A demo never touches a real install: it has its own data dir (embedded PostgreSQL, secret key,
Prefect home), and whatever the environment or `.env` says about the real install (its
DATABASE_URL, PREFECT_API_URL, secret key, production mode) is overridden for this process and
every process it starts.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sellerpulse.errors import UserError
from sellerpulse.settings import _local_secret_key, get_settings

DEMO_DIR_NAME = "sellerpulse-demo"


def default_demo_dir() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / DEMO_DIR_NAME


def _in_use(data_dir: Path) -> bool:
    """A demo (or anything) still runs on this dir: its embedded PostgreSQL is up."""
    pid_file = data_dir / "postgres" / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def prepare_demo_environment(data_dir: str | None, *, reset: bool) -> Path:
    """Point this process (and its children) at the demo's own data dir; `reset` empties it first."""
    path = Path(data_dir).expanduser().resolve() if data_dir else default_demo_dir()
    real = get_settings().sellerpulse_data_dir.expanduser().resolve()
    if path == real:
        raise UserError(f"the demo's data dir cannot be the install's own ({real}): pick another --data-dir")
    if reset and path.exists():
        if _in_use(path):
            raise UserError(f"a demo is still running on {path}: stop it before --reset")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        {
            "SELLERPULSE_DATA_DIR": str(path),
            "SELLERPULSE_ENV": "local",
            "DATABASE_URL": "",  # empty, not unset: beats a DATABASE_URL in .env
            "SELLERPULSE_SECRET_KEY": _local_secret_key(path),
            "SELLERPULSE_OLD_SECRET_KEYS": "",
            "PREFECT_HOME": str(path / "prefect"),
            "PREFECT_PROFILES_PATH": str(path / "prefect" / "profiles.toml"),
            # Empty, not unset: also beats a PREFECT_API_URL in .env (the demo starts its own server).
            "PREFECT_API_URL": "",
            "PREFECT_API_KEY": "",
        }
    )
    os.environ.pop("PREFECT_PROFILE", None)
    _forget_cached_settings()
    return path


def _forget_cached_settings() -> None:
    from storage import db

    for cached in (get_settings, db.get_target, db.get_engine, db.get_sessionmaker):
        cached.cache_clear()
