"""The bot's pieces that need no Telegram: its pacing, its texts, its settings and CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.delivery import visible_length
from bot.flood import DELIVERY, INTERACTIVE, ChatPacer, GlobalBucket
from bot.settings import BotSettingsError, load_bot_settings
from bot.texts import TEXTS, language_of

ROOT = Path(__file__).resolve().parents[2]


def test_a_chat_is_paced_after_a_short_burst() -> None:
    pacer = ChatPacer(rate=1.0, burst=2)
    at = [pacer.reserve(100.0) for _ in range(4)]
    assert at == [100.0, 100.0, 101.0, 102.0]
    assert pacer.reserve(110.0) == 110.0  # an idle chat may send again at once


@pytest.mark.asyncio(loop_scope="session")
async def test_interactive_replies_go_before_queued_notifications() -> None:
    bucket = GlobalBucket(rate=50.0, burst=1.0)
    order: list[str] = []

    async def take(name: str, priority: int) -> None:
        await bucket.acquire(priority)
        order.append(name)

    await bucket.acquire(DELIVERY)  # the only token: everything below waits
    tasks = [asyncio.create_task(take(f"n{i}", DELIVERY)) for i in range(3)]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(take("reply", INTERACTIVE)))
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order[0] == "reply" and order[1:] == ["n0", "n1", "n2"]


@pytest.mark.asyncio(loop_scope="session")
async def test_a_429_holds_every_send() -> None:
    bucket = GlobalBucket(rate=1000.0, burst=10.0)
    bucket.hold(0.3)
    started = time.monotonic()
    await asyncio.wait_for(bucket.acquire(INTERACTIVE), 5)
    assert time.monotonic() - started >= 0.25


def test_every_language_has_every_text_with_the_same_fields() -> None:
    import string

    fields = {k: {f for _, f, _, _ in string.Formatter().parse(v) if f} for k, v in TEXTS["en"].items()}
    for lang, table in TEXTS.items():
        assert set(table) == set(fields), lang
        for key, text in table.items():
            assert {f for _, f, _, _ in string.Formatter().parse(text) if f} == fields[key], (lang, key)
    assert language_of({"language": "pl"}, "ru") == "pl"
    assert language_of({"language": None}, "ru-RU") == "ru"
    assert language_of(None, "de") == "en"


def test_caption_length_counts_what_telegram_shows() -> None:
    assert visible_length("<b>Tom &amp; Jerry</b>") == len("Tom & Jerry")


def test_settings_name_what_is_wrong_and_never_the_secret() -> None:
    with pytest.raises(BotSettingsError) as err:
        load_bot_settings(_env_file=None, sellerpulse_api_key="k", telegram_bot_token="not-a-token-SECRET")
    assert "TELEGRAM_BOT_TOKEN" in str(err.value) and "SECRET" not in str(err.value)
    with pytest.raises(BotSettingsError, match="TELEGRAM_API_URL"):
        load_bot_settings(_env_file=None, sellerpulse_api_key="k", telegram_bot_token="1:a", telegram_api_url="ftp://x")
    ok = load_bot_settings(_env_file=None, sellerpulse_api_key="k", telegram_bot_token="1:a",
                           sellerpulse_api_url="http://api:8000/")  # fmt: skip
    assert ok.api_base == "http://api:8000/api/v1" and ok.telegram_api_url == "https://api.telegram.org"


def test_the_bot_command_refuses_missing_settings_in_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "SELLERPULSE_API"))}
    run = subprocess.run([sys.executable, "-m", "sellerpulse.cli", "bot"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "SELLERPULSE_API_KEY" in run.stderr and "TELEGRAM_BOT_TOKEN" in run.stderr


def test_a_token_telegram_refuses_is_one_line_and_exit_2() -> None:
    from sandbox.telegram import TelegramConfig
    from tests.bot.conftest import StandIn

    with StandIn(TelegramConfig()) as telegram:
        env = {**os.environ, "SELLERPULSE_API_KEY": "sp_x", "TELEGRAM_BOT_TOKEN": "999:not-this-bot",
               "TELEGRAM_API_URL": telegram.url}  # fmt: skip
        run = subprocess.run([sys.executable, "-m", "sellerpulse.cli", "bot"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 2 and "refused TELEGRAM_BOT_TOKEN (401" in run.stderr
    assert "Traceback" not in run.stderr and "Unclosed" not in run.stderr and "not-this-bot" not in run.stderr
