"""The bot's settings: one pydantic-settings class, read from the environment and `.env`.

Its own class (not sellerpulse.settings.Settings): the bot is a separate process that needs
none of the pipeline's settings, and its required secrets must not be required by the rest.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sellerpulse.errors import UserError

API_PREFIX = "/api/v1"


class BotSettingsError(UserError):
    """A bot setting is missing or malformed; the message names it, never its value."""


def _base_url(value: str) -> str:
    value = value.strip()
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/")


class BotSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # The API's root, e.g. http://127.0.0.1:8000; the bot adds /api/v1.
    sellerpulse_api_url: str = "http://127.0.0.1:8000"
    sellerpulse_api_key: SecretStr
    telegram_bot_token: SecretStr
    # The Bot API root as aiogram's TelegramAPIServer.from_base takes it.
    telegram_api_url: str = "https://api.telegram.org"
    sellerpulse_log_level: str = "INFO"

    # Delivery: Telegram's documented limits (Bot FAQ); lower them if Telegram answers 429 often.
    bot_global_rate: float = Field(default=30.0, gt=0, le=1000)  # messages per second, all chats
    bot_chat_rate: float = Field(default=1.0, gt=0, le=100)  # per private chat
    bot_group_per_minute: float = Field(default=20.0, gt=0, le=1000)
    bot_poll_seconds: float = Field(default=1.0, gt=0, le=60)  # between delivery polls
    bot_poll_batch: int = Field(default=200, ge=1, le=200)  # people per batch poll
    bot_page_limit: int = Field(default=20, ge=1, le=200)  # messages per person per poll
    bot_senders: int = Field(default=64, ge=1, le=1000)  # people delivered to at once
    # Requests to the API at once: more only queue inside it (its workers' pools are 8 each).
    bot_api_connections: int = Field(default=8, ge=1, le=100)
    bot_recipients_seconds: float = Field(default=15.0, gt=0, le=3600)  # re-read who to deliver to
    bot_metrics_seconds: float = Field(default=60.0, gt=0)  # a metrics line in the log this often
    bot_login_poll_seconds: float = Field(default=3.0, gt=0, le=60)  # Allegro device login status
    # Only for a time-scaled stand-in (benchmarks): its clock runs this much faster, so every
    # rate above is multiplied and every retry_after divided by it. 1 against the real Telegram.
    telegram_time_scale: float = Field(default=1.0, gt=0, le=1000)

    @field_validator("sellerpulse_api_url", "telegram_api_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _base_url(value)

    @field_validator("telegram_bot_token")
    @classmethod
    def _check_token(cls, value: SecretStr) -> SecretStr:
        left, sep, right = value.get_secret_value().strip().partition(":")
        if not sep or not left.isdigit() or not right or any(c.isspace() for c in right):
            raise ValueError("must look like 123456:ABC... (as @BotFather gives it)")
        return SecretStr(value.get_secret_value().strip())

    @property
    def api_base(self) -> str:
        return self.sellerpulse_api_url + API_PREFIX


def load_bot_settings(**overrides: object) -> BotSettings:
    """Settings, or one line per bad setting (never its value: they are secrets)."""
    try:
        return BotSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()]
        raise BotSettingsError("invalid bot settings:\n  " + "\n  ".join(lines)) from None


@lru_cache(maxsize=1)
def get_bot_settings() -> BotSettings:
    return load_bot_settings()
