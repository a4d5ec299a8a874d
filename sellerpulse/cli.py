"""The `sellerpulse` command.

Each area registers its own sub-commands (`register(subparsers)`); a handler takes the parsed
arguments and returns the exit code. Every error a user can fix prints one line on stderr,
never a traceback (`-v` shows it), and exits:

- 0 done; 1 something failed (a sync, the marketplace refused, the database is unreachable);
- 2 usage: a bad argument or setting, an unknown shop, a name taken, a schema not at head;
- 130 interrupted (Ctrl-C), 143 stopped by SIGTERM, after cleaning up as Ctrl-C does.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType

from sellerpulse import __version__
from sellerpulse.errors import UserError
from sellerpulse.settings import generate_secret_key, get_settings

log = logging.getLogger("sellerpulse")

# Modules with a `register(subparsers)` function, added in this order to `--help`.
COMMAND_MODULES = (
    "sellerpulse.cli_db",
    "sellerpulse.cli_shops",
    "sellerpulse.cli_people",
    "sandbox.cli",
    "flows.cli",
    "api.cli",
    "bot.cli",
    "sandbox.telegram.cli",
)


def _secret_key(args: argparse.Namespace) -> int:
    if args.action == "generate":
        print(generate_secret_key())
        return 0
    from storage.credentials import rotate_all_credentials
    from storage.db import get_engine

    count = rotate_all_credentials(get_engine(), get_settings())
    print(f"re-encrypted credentials of {count} shop(s) with the current key")
    return 0


def _register_core(sub: argparse._SubParsersAction) -> None:
    key = sub.add_parser("secret-key", help="generate a secret key, or re-encrypt credentials after a key change")
    key.add_argument("action", choices=["generate", "rotate"], nargs="?", default="generate")
    key.set_defaults(func=_secret_key)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sellerpulse",
        description="Backs up Allegro and Wildberries orders and turns shop events into Telegram notifications.",
    )
    parser.add_argument("--version", action="version", version=f"sellerpulse {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _register_core(sub)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # Only a missing area itself is tolerated (a slimmed install); a broken import inside it is a bug.
            if exc.name is None or not name.startswith(exc.name):
                raise
            continue
        module.register(sub)
    return parser


class _Stop:
    """Which signal stopped the command (SIGTERM is turned into the same clean stop as Ctrl-C)."""

    signal: int | None = None


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _Stop.signal = signum
    # Whatever handles Ctrl-C now (asyncio.run's handler cancels the main task; otherwise Python's
    # raises KeyboardInterrupt) handles this too, so `finally` blocks and context managers run.
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


def _known_failure(exc: BaseException) -> str | None:
    """One line for the failures a user can act on; None for a bug (shown with its traceback)."""
    from sqlalchemy.exc import DBAPIError

    from connectors import errors
    from sellerpulse.crypto import DecryptionError

    if isinstance(exc, DBAPIError):
        first = (str(exc.orig or exc).strip().splitlines() or [type(exc).__name__])[0]
        if exc.connection_invalidated or "connection" in first.lower():
            return f"cannot reach the database ({_database()}): {first}"
        return f"database error: {first}"
    if isinstance(exc, DecryptionError):
        return str(exc)
    if isinstance(exc, errors.AccessDenied):
        return "the Allegro login was refused: nothing was stored"
    if isinstance(exc, errors.DeviceFlowError):
        return "the Allegro code expired before it was approved: run the command again"
    if isinstance(exc, errors.ConnectorError):
        return f"the marketplace call failed ({type(exc).__name__}): {exc}"
    return None


def _database() -> str:
    from sqlalchemy.engine import make_url

    url = get_settings().sqlalchemy_url
    return "embedded" if url is None else make_url(url).render_as_string(hide_password=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if handler is None:
        parser.print_help()
        return 0
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        settings = get_settings()
        logging.basicConfig(
            level="DEBUG" if args.verbose else settings.sellerpulse_log_level,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        # One line per HTTP request drowns what matters; connectors log retries and failures themselves.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        return handler(args)
    except UserError as exc:
        print(f"sellerpulse: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        if _Stop.signal == signal.SIGTERM:
            print("sellerpulse: stopped (SIGTERM)", file=sys.stderr)
            return 128 + signal.SIGTERM
        print("sellerpulse: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        message = _known_failure(exc)
        if message is None or args.verbose:
            raise
        print(f"sellerpulse: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
