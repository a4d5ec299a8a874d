"""`sellerpulse people add|list`: the people shops notify (Telegram users).

The bot registers people itself when they /start it; an operator registers them here to make
them owners or members of shops before that (they get notifications once they have started it).
"""

from __future__ import annotations

import argparse
from zoneinfo import available_timezones

from sellerpulse.cli_support import add_json_flag, checked_engine, print_json, print_table, telegram_id
from sellerpulse.errors import UserError
from storage.db import session_scope
from storage.people import get_person, list_people, register_person

PROFILE_OPTIONS = ("username", "first_name", "last_name", "language", "time_zone")


def _add(args: argparse.Namespace) -> int:
    if args.time_zone is not None and args.time_zone not in available_timezones():
        raise UserError(f"unknown time zone {args.time_zone!r} (an IANA name, e.g. Europe/Warsaw)")
    profile = {name: getattr(args, name) for name in PROFILE_OPTIONS if getattr(args, name) is not None}
    with session_scope(checked_engine()) as session:
        existed = get_person(session, telegram_id=args.telegram_id) is not None
        register_person(session, telegram_id=args.telegram_id, profile=profile)
    print(f"person {args.telegram_id} {'updated' if existed else 'registered'}")
    return 0


def _list(args: argparse.Namespace) -> int:
    with session_scope(checked_engine()) as session:
        rows = list_people(session)
        found = [
            {
                "telegram_id": r.person.telegram_id,
                "username": r.person.username,
                "name": " ".join(n for n in (r.person.first_name, r.person.last_name) if n) or None,
                "time_zone": r.person.time_zone,
                "shops": [{"id": i, "name": n, "role": role} for i, n, role in r.shops],
            }
            for r in rows
        ]
    if args.json:
        print_json(found)
        return 0
    if not found:
        print("nobody yet: `sellerpulse people add TELEGRAM_ID`, or they /start the bot")
        return 0
    print_table(
        ["telegram id", "username", "name", "time zone", "shops"],
        [
            [
                p["telegram_id"],
                p["username"] or "-",
                p["name"] or "-",
                p["time_zone"],
                ", ".join(f"{s['name']} (#{s['id']}, {s['role']})" for s in p["shops"]) or "-",
            ]
            for p in found
        ],
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    people = sub.add_parser("people", help="the people shops notify: add, list")
    actions = people.add_subparsers(dest="people_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="register a person by Telegram id (or update their profile)")
    add.add_argument("telegram_id", type=telegram_id)
    add.add_argument("--username")
    add.add_argument("--first-name")
    add.add_argument("--last-name")
    add.add_argument("--language", choices=["ru", "pl", "en"])
    add.add_argument("--time-zone", help="IANA name, e.g. Europe/Warsaw (default UTC)")
    add.set_defaults(func=_add)
    ls = actions.add_parser("list", help="everyone, with the shops they belong to")
    add_json_flag(ls)
    ls.set_defaults(func=_list)
