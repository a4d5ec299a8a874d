"""What every CLI command shares: the checked database, shop and person lookup, secrets from
stdin, confirmations, and output as a short table or as JSON (`--json`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from sellerpulse.errors import UserError
from storage.db import get_engine
from storage.migrate import require_head
from storage.models import Person, Shop
from storage.people import get_person, register_person
from storage.shops import get_shop, shops_named


def checked_engine() -> Engine:
    """The database, refusing a schema this code does not match (exit 2, says to upgrade)."""
    engine = get_engine()
    require_head(engine)
    return engine


def resolve_shop(session: Session, ref: str) -> Shop:
    """A shop by id or by name; a name two shops share must be given as an id."""
    ref = ref.strip()
    if ref.isdigit():
        shop = get_shop(session, shop_id=int(ref))
        if shop is None:
            raise UserError(f"no shop with id {ref} (see `sellerpulse shops list`)")
        return shop
    found = shops_named(session, name=ref)
    if not found:
        raise UserError(f"no shop named {ref!r} (see `sellerpulse shops list`)")
    if len(found) > 1:
        ids = ", ".join(str(s.id) for s in found)
        raise UserError(f"{len(found)} shops are named {ref!r} (ids {ids}): give the id instead")
    return found[0]


def telegram_id(value: str) -> int:
    """argparse type: a Telegram user id is a positive integer."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a Telegram id (a positive number): {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"not a Telegram user id (must be positive): {value}")
    return number


def ensure_person(session: Session, tg_id: int) -> tuple[Person, bool]:
    """The person with this Telegram id, registered now (no profile yet) if unknown."""
    person = get_person(session, telegram_id=tg_id)
    if person is not None:
        return person, False
    return register_person(session, telegram_id=tg_id, profile={})


def read_secret(value: str | None, *, env: str, what: str, option: str = "--token") -> str:
    """`--token T`, `--token -` (stdin: keeps it out of the process list and shell history), or $ENV."""
    if value == "-":
        value = sys.stdin.readline()
    secret = (value or os.environ.get(env) or "").strip()
    if not secret:
        raise UserError(f"give the {what} with {option} VALUE, {option} - (read from stdin) or ${env}")
    return secret


def confirm(question: str, *, expected: str, yes: bool) -> None:
    """Ask for `expected` to be typed back; `--yes` skips it. Without a terminal, `--yes` is required."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise UserError(f"{question}: not confirmed (no terminal to ask on): add --yes")
    answer = input(f"{question}\nType {expected!r} to confirm: ").strip()
    if answer != expected:
        raise UserError("not confirmed: nothing was changed")


def age(moment: datetime | None, *, now: datetime | None = None) -> str:
    """'3m ago', '2h ago', '5d ago'; '-' for never."""
    if moment is None:
        return "-"
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Columns padded to their widest cell; the last column is left ragged."""
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
        print("  ".join(padded).rstrip())


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=_json_default, ensure_ascii=False))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON (for scripts) instead of a table")
