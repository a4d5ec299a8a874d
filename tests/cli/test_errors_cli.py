"""User errors are one line on stderr with exit 2 (usage) or 1 (failure), checked before anything
starts; SIGTERM stops a command as cleanly as Ctrl-C (issue 13, point 4)."""

from __future__ import annotations

import signal
import subprocess
import time

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from storage.models import Shop
from storage.people import register_person
from storage.shops import create_shop
from tests.cli.conftest import SELLERPULSE, cli_env, one_line_error

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/nowhere"


def test_bad_input_and_an_unreachable_database_are_one_line(cli, clean_engine: Engine) -> None:
    down = cli("shops", "list", env={"DATABASE_URL": UNREACHABLE})
    line = one_line_error(down)
    assert down.code == 1 and "cannot reach the database" in line and "127.0.0.1:1" in line

    # Refused from the arguments alone: the (unreachable) database is never asked.
    dates = cli(
        "backfill", "--shop", "x", "--since", "2026-02-01", "--until", "2026-01-01", env={"DATABASE_URL": UNREACHABLE}
    )
    assert dates.code == 2 and "--since 2026-02-01 is after --until 2026-01-01" in one_line_error(dates)

    with Session(clean_engine) as s, s.begin():
        owner, _ = register_person(s, telegram_id=5, profile={})
        create_shop(s, marketplace="wb", name="Main 100%", credentials={"token": "t"}, owner_id=owner.id)
    like = cli("db", "query", "select name from shops where name like 'Main 100%'")
    assert like.code == 0, like
    assert like.out.splitlines() == ["name", "Main 100%"]

    bad_sql = cli("db", "query", "selec name from shops")
    assert bad_sql.code == 1 and 'syntax error at or near "selec"' in one_line_error(bad_sql)
    write = cli("db", "query", "delete from shops")
    assert write.code == 1 and "read-only transaction" in one_line_error(write)
    with Session(clean_engine) as s:
        assert s.scalar(select(Shop.name)) == "Main 100%"


def test_sigterm_stops_a_waiting_command_cleanly(sandbox_on_a_port, tmp_path, clean_engine: Engine) -> None:
    """connect-allegro waits for the person to approve the code (the poll sleeps its interval):
    SIGTERM then ends it like Ctrl-C: exit 143, one line, nothing stored, no asyncio noise."""
    proc = subprocess.Popen(
        [SELLERPULSE, "shops", "connect-allegro", "--name", "AL", "--owner", "9"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(sandbox_on_a_port, tmp_path),
    )
    try:
        seen = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            seen.append(line)
            if "waiting for approval" in line or not line:
                break
        assert "waiting for approval" in seen[-1], "".join(seen)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert err.strip() == "sellerpulse: stopped (SIGTERM)"
    with Session(clean_engine) as s:
        assert s.scalars(select(Shop)).all() == []
