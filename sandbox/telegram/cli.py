"""`sellerpulse telegram ...`: the Telegram Bot API stand-in, and talking to the bot as a user.

    sellerpulse telegram serve [--port 8766] [--token T] [--time-scale X] [--no-flood-limits]
    sellerpulse telegram say "/start" [--user 1001] [--name Anna] [--lang ru] [--url URL]
    sellerpulse telegram press "Wildberries" [--user 1001] [--url URL]
    sellerpulse telegram chat [--user 1001] [--url URL]
    sellerpulse telegram block|unblock [--user 1001] [--url URL]

`serve` prints TELEGRAM_API_URL=... and TELEGRAM_BOT_TOKEN=... for the bot, then serves
until Ctrl-C. `say` and `press` act as the user and print the bot's replies.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from sandbox.telegram.state import DEFAULT_TOKEN

if TYPE_CHECKING:
    from sandbox.telegram.client import TelegramOperator

DEFAULT_PORT = 8766
DEFAULT_USER = 1001


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("telegram", help="the local Telegram Bot API stand-in; talk to the bot as a user")
    actions = parser.add_subparsers(dest="telegram_command", metavar="ACTION", required=True)
    serve = actions.add_parser("serve", help="serve the stand-in (prints the bot's settings)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument("--token", default=DEFAULT_TOKEN, help="the bot token it accepts")
    serve.add_argument("--time-scale", type=float, default=1.0, help="run its clock faster (benchmarks)")
    serve.add_argument("--no-flood-limits", action="store_true")
    serve.set_defaults(func=_serve)
    for name, helptext in (("say", "send a message as a user and print the replies"),
                           ("press", "press an inline button (by its text) and print the replies")):  # fmt: skip
        p = actions.add_parser(name, help=helptext)
        p.add_argument("text")
        _user_options(p)
        p.add_argument("--name", default=None, help="the user's first name")
        p.add_argument("--lang", default=None, help="the user's Telegram language code (ru, pl, en...)")
        p.add_argument("--wait", type=float, default=30.0, help="seconds to wait for replies")
        p.set_defaults(func=_say if name == "say" else _press)
    chat = actions.add_parser("chat", help="print a user's whole chat with the bot")
    _user_options(chat)
    chat.set_defaults(func=_chat)
    for name in ("block", "unblock"):
        p = actions.add_parser(name, help=f"the user {name}s the bot")
        _user_options(p)
        p.set_defaults(func=_block)


def _user_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--user", type=int, default=DEFAULT_USER, help=f"Telegram user id (default {DEFAULT_USER})")
    p.add_argument("--url", default=f"http://127.0.0.1:{DEFAULT_PORT}", help="the stand-in's URL")


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from sandbox.telegram.app import create_app
    from sandbox.telegram.state import TelegramConfig

    if args.time_scale <= 0:
        print("telegram: --time-scale must be > 0", file=sys.stderr)
        return 2
    config = TelegramConfig(token=args.token, time_scale=args.time_scale, flood_limits=not args.no_flood_limits)
    print(f"TELEGRAM_API_URL=http://{args.host}:{args.port}")
    print(f"TELEGRAM_BOT_TOKEN={args.token}")
    sys.stdout.flush()
    # No access log: request lines carry the bot token in their path, as Telegram's do.
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def _with_operator(args: argparse.Namespace, work: Callable[[TelegramOperator], int]) -> int:
    """Run `work` with a client of the stand-in's operator API; one line and exit 2 if it is down."""
    from sandbox.telegram.client import StandInError, TelegramOperator

    op = TelegramOperator(args.url)
    try:
        return work(op)
    except StandInError as exc:
        print(f"telegram: {exc}", file=sys.stderr)
        return 2
    finally:
        op.close()


def _say(args: argparse.Namespace) -> int:
    profile = {k: v for k, v in {"first_name": args.name, "language_code": args.lang}.items() if v}
    return _with_operator(args, lambda op: _act(op, args, lambda: op.say(args.user, args.text, **profile)))


def _press(args: argparse.Namespace) -> int:
    return _with_operator(args, lambda op: _act(op, args, lambda: op.press(args.user, args.text)))


def _act(op: TelegramOperator, args: argparse.Namespace, action: Callable[[], object]) -> int:
    """Act as the user, then print the bot's replies (exit 1 when none came)."""
    from sandbox.telegram.client import show

    after = max((m["seq"] for m in op.chat(args.user)), default=0)
    action()
    replies = op.replies(args.user, after, timeout=args.wait)
    for message in replies:
        if line := show(message):
            print(line)
    if not replies:
        print("(no reply: is the bot running against this stand-in?)", file=sys.stderr)
        return 1
    return 0


def _chat(args: argparse.Namespace) -> int:
    from sandbox.telegram.client import show

    def work(op: TelegramOperator) -> int:
        for message in op.chat(args.user):
            who = "bot " if message["from"] == "bot" else "you "
            if line := show(message):
                print(who + line.replace("\n", "\n     "))
        return 0

    return _with_operator(args, work)


def _block(args: argparse.Namespace) -> int:
    def work(op: TelegramOperator) -> int:
        op.state(args.user, "blocked" if args.telegram_command == "block" else "active")
        print(f"user {args.user} {args.telegram_command}ed the bot")
        return 0

    return _with_operator(args, work)
