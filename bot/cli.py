"""`sellerpulse bot`: run the Telegram bot (long polling and notification delivery)."""

from __future__ import annotations

import argparse
import logging


def _run(args: argparse.Namespace) -> int:
    from aiogram.exceptions import TelegramUnauthorizedError

    from bot.api import ApiError
    from bot.app import run
    from bot.settings import get_bot_settings
    from sellerpulse.errors import UserError

    settings = get_bot_settings()
    # aiogram logs every handled update at INFO: ours say what matters.
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
    try:
        return run(settings)
    except TelegramUnauthorizedError:
        raise UserError("Telegram refused TELEGRAM_BOT_TOKEN (401 Unauthorized): check it with @BotFather") from None
    except ApiError as exc:
        if exc.status != 401:
            raise
        message = "the API refused SELLERPULSE_API_KEY (401): make one with `sellerpulse api-keys create`"
        raise UserError(message) from None


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "bot",
        help="run the Telegram bot (needs SELLERPULSE_API_URL, SELLERPULSE_API_KEY, TELEGRAM_BOT_TOKEN)",
        description="Long-polls Telegram for messages and delivers notifications from the API. "
        "TELEGRAM_API_URL points it at another Bot API server (e.g. `sellerpulse telegram serve`).",
    )
    parser.set_defaults(func=_run)
