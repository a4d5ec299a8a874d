"""A local stand-in of the Telegram Bot API: the methods sellerpulse's bot calls, in the Bot
API's JSON shape, with its flood limits (429 + retry_after), users who block the bot (403),
and an operator API to talk as a user and read every chat's transcript.

    from sandbox.telegram import TelegramConfig, create_app
    app = create_app(TelegramConfig(token="123:abc"))   # serve it; the bot uses
    TELEGRAM_API_URL=http://127.0.0.1:PORT            # {base}/bot{token}/{method}

See sandbox/telegram/README.md.
"""

from sandbox.telegram.app import create_app
from sandbox.telegram.state import TelegramConfig, TelegramWorld

__all__ = ["TelegramConfig", "TelegramWorld", "create_app"]
