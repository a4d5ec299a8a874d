"""Application settings: one pydantic-settings class, read from the environment and `.env`.

Every setting is documented in `.env.example`. A bad value stops start-up with a message
that names the setting (see `load_settings`).
"""

from __future__ import annotations

import os
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sellerpulse.errors import UserError

ALLEGRO_HOSTS = {
    "production": ("https://allegro.pl", "https://api.allegro.pl"),
    "sandbox": ("https://allegro.pl.allegrosandbox.pl", "https://api.allegro.pl.allegrosandbox.pl"),
}

SECRET_KEY_FILE = "secret.key"


class Environment(StrEnum):
    local = "local"
    production = "production"


class AllegroEnv(StrEnum):
    production = "production"
    sandbox = "sandbox"


class SettingsError(UserError):
    """A setting is missing or malformed; the message names it."""


def _default_data_dir() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "sellerpulse"


BaseUrl = Annotated[str | None, Field(default=None)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    sellerpulse_env: Environment = Environment.local
    sellerpulse_data_dir: Path = Field(default_factory=_default_data_dir)
    sellerpulse_secret_key: SecretStr | None = None
    # Older keys still accepted for decryption while credentials are re-encrypted (comma separated).
    sellerpulse_old_secret_keys: SecretStr | None = None
    sellerpulse_log_level: str = "INFO"
    # Every shop reaches a person: CLI-connected shops are owned by this Telegram id unless --owner says.
    sellerpulse_default_owner: int | None = Field(default=None, gt=0)

    database_url: SecretStr | None = None

    allegro_env: AllegroEnv = AllegroEnv.production
    allegro_client_id: str = ""
    allegro_client_secret: SecretStr = SecretStr("")
    allegro_auth_url: BaseUrl
    allegro_api_url: BaseUrl

    wb_statistics_url: str = "https://statistics-api.wildberries.ru"
    wb_analytics_url: str = "https://seller-analytics-api.wildberries.ru"
    wb_feedbacks_url: str = "https://feedbacks-api.wildberries.ru"
    wb_content_url: str = "https://content-api.wildberries.ru"
    wb_marketplace_url: str = "https://marketplace-api.wildberries.ru"

    # Sync behaviour (used by the pipeline and deployments).
    sync_interval_seconds: int = Field(default=180, ge=30)
    token_refresh_interval_seconds: int = Field(default=1800, ge=60)
    token_refresh_window_seconds: int = Field(default=4 * 3600, ge=60)
    sync_concurrency: int = Field(default=4, ge=1, le=1000)
    # One sync (or backfill) of a shop at a time (storage.leases): its lease lasts this long by
    # the database's clock unless renewed (every third of it while the sync runs); a process
    # killed with -9 frees its shops this long after its last renewal.
    sync_lease_seconds: float = Field(default=60.0, ge=1.0, le=3600.0)
    # Connections of a process's database pool (and as many again in a burst): with the lease no
    # shop holds one while it syncs, so this, times the processes, is what an install needs of
    # the server's max_connections (each sync-batch run is a process of its own).
    db_pool_size: int = Field(default=10, ge=1, le=200)
    # With workers (prefect.yaml, flows.fanout): sync-all starts a run of sync-batch per this many
    # due shops, on a work queue per marketplace, within the queue's free slots; at most this
    # many runs of a marketplace at once over all workers (set on the queues by
    # `sellerpulse prefect-setup`). The runs of a cycle share its shops.
    sync_batch_size: int = Field(default=25, ge=1, le=1000)
    # A sync-batch run's shop as a task run of its own (its state and duration in the Prefect
    # UI), or, by default, in the flow run's body: its warnings and errors still go to the run's
    # log, its results to the database (`shops list`, the API), its streams are retried alike,
    # and the Prefect server records no task run, states or events for it: 0.69x the CPU per
    # shop sync, the server's 0.12x (benchmarks/scale/README.md).
    sync_shop_task_runs: bool = False
    sync_queue_limit_wb: int = Field(default=4, ge=1, le=1000)
    sync_queue_limit_allegro: int = Field(default=4, ge=1, le=1000)
    prefect_work_pool: str = Field(default="sellerpulse", min_length=1, max_length=100)
    # WB statistics refresh every 30 min: rows can show up with a lastChangeDate already passed.
    wb_lookback_minutes: int = Field(default=180, ge=0, le=24 * 60 * 7)
    # The WB order feed (real time, tasks.wb_feed): each read starts this far before the previous
    # read's snapshot, for units shown with a status time already passed (a new order's is its
    # creation, minutes before WB lists it).
    wb_feed_lookback_minutes: int = Field(default=60, ge=1, le=24 * 60)
    # `sellerpulse serve` reads the feed of every WB shop this often, besides every sync; WB
    # allows one feed request a minute per account, so not below 60.
    wb_feed_interval_seconds: int = Field(default=60, ge=60)
    # Allegro keeps order events 60 days; a cursor older than that is healed from the order listing.
    allegro_event_retention_hours: float = Field(default=60 * 24, gt=0)
    # Rows WB sends in a full statistics page (documented ~80,000); a shorter page is the last.
    wb_statistics_page_rows: int = Field(default=80_000, ge=1, le=1_000_000)
    # Answered and archived WB reviews are re-read this far back from the last read (tasks.wb_reviews).
    review_lookback_days: int = Field(default=1, ge=1, le=90)
    # Product cards (names, photos) change rarely: re-read at most this often.
    cards_refresh_seconds: int = Field(default=3600, ge=0)
    # Before the first sync, how far back to back up orders (the marketplaces keep WB 90 d, Allegro 365 d).
    initial_history_days: int = Field(default=90, ge=1, le=365)
    sync_failing_after_seconds: int = Field(default=3600, ge=60)
    # A shop whose syncs keep failing (no stream succeeded) waits min(max, base * (2**(n-1) - 1))
    # seconds after its n-th failure in a row before the scheduled sync-all tries it again
    # (storage.backoff): the first failure costs nothing, then 1, 3, 7... times the base.
    sync_backoff_base_seconds: int = Field(default=180, ge=1)
    sync_backoff_max_seconds: int = Field(default=3600, ge=1)

    # Every documented marketplace rate limit times this (scaled time against a sandbox whose
    # buckets refill as much faster: `sellerpulse sandbox --rate-limit-scale`); 1 in production.
    marketplace_rate_scale: float = Field(default=1.0, gt=0, le=10_000)

    # Seconds between a failed stream's retries (a Prefect task's retry delays), comma separated.
    task_retry_delays: str = "10,30,90"
    # A stream that gets no good answer for this long (failed attempts, back-off and task retries
    # together, e.g. a host that is down) fails, naming the URL; the other streams and shops go on.
    stream_retry_budget_seconds: float = Field(default=180.0, ge=1.0, le=24 * 3600)

    # Zombie runs: a flow run sends a heartbeat this often (Prefect's PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    # set for the runs sellerpulse serves); one silent for `zombie_after_seconds` is marked crashed.
    flow_heartbeat_seconds: int = Field(default=60, ge=30)
    zombie_after_seconds: int = Field(default=300, ge=31)

    # The API.
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    # Per worker process: database connections for requests (also how many run at once; more
    # wait, without a thread or a connection, up to the pool timeout, then answer 503).
    api_pool_size: int = Field(default=8, ge=1, le=200)
    # Extra connections for work outside requests (Allegro logins completing in the background).
    api_pool_max_overflow: int = Field(default=4, ge=0, le=200)
    api_pool_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    api_statement_timeout_ms: int = Field(default=5000, ge=100, le=600_000)
    # Request bodies larger than this are refused (413) before they are read or authenticated.
    api_max_body_bytes: int = Field(default=1_048_576, ge=16_384, le=1 << 30)
    # Failed authentications per client address and minute, counted in PostgreSQL across every
    # worker; past it, answered 429 with Retry-After (a valid key is never refused).
    api_auth_failures_per_minute: int = Field(default=30, ge=1, le=100_000)
    # Allegro device logins waiting for approval: per person (a newer one supersedes the
    # oldest; the same shop name gets the same ticket back) and over the whole install.
    allegro_pending_logins_per_person: int = Field(default=2, ge=1, le=20)
    allegro_pending_logins_max: int = Field(default=50, ge=1, le=10_000)

    @field_validator(
        "allegro_auth_url",
        "allegro_api_url",
        "wb_statistics_url",
        "wb_analytics_url",
        "wb_feedbacks_url",
        "wb_content_url",
        "wb_marketplace_url",
    )
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        raw = value.get_secret_value().strip()
        if not raw.startswith(("postgres://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError("must be a PostgreSQL URL (postgres:// or postgresql://)")
        return SecretStr(raw)

    @field_validator("sellerpulse_default_owner", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("task_retry_delays")
    @classmethod
    def _check_delays(cls, value: str) -> str:
        try:
            delays = [float(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise ValueError("must be comma-separated seconds, e.g. 10,30,90") from None
        if not delays or any(d < 0 for d in delays):
            raise ValueError("must be one or more non-negative numbers of seconds")
        return value

    @property
    def retry_delays(self) -> list[float]:
        return [float(v) for v in self.task_retry_delays.split(",") if v.strip()]

    @field_validator("sellerpulse_log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @model_validator(mode="after")
    def _check_zombie_window(self) -> Settings:
        if self.zombie_after_seconds <= self.flow_heartbeat_seconds:
            raise ValueError("ZOMBIE_AFTER_SECONDS must be longer than FLOW_HEARTBEAT_SECONDS")
        return self

    @model_validator(mode="after")
    def _fill_allegro_hosts(self) -> Settings:
        auth, api = ALLEGRO_HOSTS[self.allegro_env.value]
        self.allegro_auth_url = self.allegro_auth_url or auth
        self.allegro_api_url = self.allegro_api_url or api
        if self.sellerpulse_env is Environment.production and self.marketplace_rate_scale != 1.0:
            raise ValueError("MARKETPLACE_RATE_SCALE is for sandboxes: it must be 1 when SELLERPULSE_ENV=production")
        if self.sellerpulse_env is Environment.production and self.sellerpulse_secret_key is None:
            raise ValueError(
                "SELLERPULSE_SECRET_KEY is required when SELLERPULSE_ENV=production "
                "(generate one with `sellerpulse secret-key`)"
            )
        return self

    @property
    def sqlalchemy_url(self) -> str | None:
        """DATABASE_URL in the form SQLAlchemy wants (psycopg 3 driver), or None for embedded."""
        if self.database_url is None:
            return None
        raw = self.database_url.get_secret_value()
        for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
            if raw.startswith(prefix):
                return "postgresql+psycopg://" + raw[len(prefix) :]
        raise AssertionError("validated above")

    def secret_keys(self) -> list[str]:
        """The current key first, then the old ones; generates the local key on first use."""
        current = self.sellerpulse_secret_key
        keys = [current.get_secret_value() if current else _local_secret_key(self.sellerpulse_data_dir)]
        if self.sellerpulse_old_secret_keys:
            keys += [k.strip() for k in self.sellerpulse_old_secret_keys.get_secret_value().split(",") if k.strip()]
        return keys


def _local_secret_key(data_dir: Path) -> str:
    """Local mode: one key generated once into the data dir, readable by its owner only."""
    path = data_dir / SECRET_KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        from cryptography.fernet import Fernet

        fh.write(Fernet.generate_key().decode())
    return path.read_text().strip()


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        name = ".".join(str(p) for p in item["loc"]).upper() or "settings"
        lines.append(f"{name}: {item['msg']}")
    return "invalid settings:\n  " + "\n  ".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning validation errors into one message naming each bad setting.

    The offending value is never echoed: it may be a secret.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def generate_secret_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


__all__ = [
    "AllegroEnv",
    "Environment",
    "Settings",
    "SettingsError",
    "generate_secret_key",
    "get_settings",
    "load_settings",
]
