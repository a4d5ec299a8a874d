"""The `sellerpulse` command.

Each area registers its own sub-commands (`register(subparsers)`); a handler takes the parsed
arguments and returns the exit code. Errors the user can fix (bad settings, schema not at
head) print one clear line and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from sellerpulse import __version__
from sellerpulse.errors import UserError
from sellerpulse.settings import generate_secret_key, get_settings

log = logging.getLogger("sellerpulse")

# Modules with a `register(subparsers)` function, added in this order to `--help`.
COMMAND_MODULES = (
    "sellerpulse.cli_db",
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if handler is None:
        parser.print_help()
        return 0
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
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
